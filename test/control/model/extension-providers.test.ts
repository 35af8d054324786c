// meshConfig extensionProviders as Istio's mesh config YAML writes them: envoyExtAuthzHttp read, bad input reported by path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { parseExtensionProviders } from '../../../src/control/model/extension-providers.js';

test('Istio\'s envoyExtAuthzHttp provider YAML becomes MeshConfig.extensionProviders', () => {
  const yaml = `
extensionProviders:
- name: sample-ext-authz-http
  envoyExtAuthzHttp:
    service: ext-authz.foo.svc.cluster.local
    port: 8000
    timeout: 2s
    failOpen: true
    statusOnError: 503
    includeHeadersInCheck: ["x-ext-authz"]
    includeAdditionalHeadersInCheck: {x-added: v}
    headersToUpstreamOnAllow: [authorization]
- name: grpc
  envoyExtAuthzGrpc: {service: ext-authz.foo.svc.cluster.local, port: 9000}
- name: zipkin
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
`;
  const { providers, problems } = parseExtensionProviders(parse(yaml).extensionProviders);
  assert.deepEqual(problems, []);
  assert.deepEqual(providers, [
    {
      name: 'sample-ext-authz-http',
      envoyExtAuthzHttp: {
        service: 'ext-authz.foo.svc.cluster.local', port: 8000, timeout: '2s', failOpen: true, statusOnError: '503',
        includeRequestHeadersInCheck: ['x-ext-authz'], includeAdditionalHeadersInCheck: { 'x-added': 'v' }, headersToUpstreamOnAllow: ['authorization'],
      },
    },
    { name: 'grpc', envoyExtAuthzGrpc: { service: 'ext-authz.foo.svc.cluster.local', port: 9000 } },
    { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } },
  ]);
});

test('bad providers are reported with their field paths and left out', () => {
  const { providers, problems } = parseExtensionProviders([
    { name: '', envoyExtAuthzHttp: { service: 'a', port: 80 } },
    { name: 'dup', envoyExtAuthzHttp: { service: 'a', port: 80 } },
    { name: 'dup', envoyExtAuthzHttp: { service: 'a', port: 80 } },
    { name: 'bad', envoyExtAuthzHttp: { port: 70000, pathprefix: '/x', failOpen: 'yes' } },
    { name: 'two', envoyExtAuthzHttp: { service: 'a', port: 80 }, zipkin: {} },
    { name: 'odd', somethingElse: {} },
    'nope',
  ]);
  assert.deepEqual(problems, [
    'extensionProviders[0].name: extension provider name must not be empty',
    'extensionProviders[2].name: extension provider name must be unique, found duplicate: dup',
    'extensionProviders[3].envoyExtAuthzHttp.pathprefix: unknown field',
    'extensionProviders[3].envoyExtAuthzHttp.service: service must not be empty',
    'extensionProviders[3].envoyExtAuthzHttp.port: port must be in the range [1, 65535], found: 70000',
    'extensionProviders[3].envoyExtAuthzHttp.failOpen: expected true or false',
    'extensionProviders[4]: exactly one provider kind expected (envoyExtAuthzHttp, …), found envoyExtAuthzHttp, zipkin',
    'extensionProviders[5].somethingElse: unknown extension provider kind',
    'extensionProviders[6]: expected an object',
  ]);
  assert.deepEqual(providers.map((p) => p.name), ['dup'], 'only the first of a duplicated name, none of the invalid ones');
  assert.deepEqual(parseExtensionProviders({}).problems, ['extensionProviders: expected a list of providers']);
  assert.deepEqual(parseExtensionProviders(undefined), { providers: [], problems: [] });
});
