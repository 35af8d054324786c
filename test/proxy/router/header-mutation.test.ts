import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteConfiguration } from '../../../src/proxy/router/compile-route-table.js';
import { ConfigProblems } from '../../../src/proxy/router/config-problems.js';
import { compileHeaderMutation } from '../../../src/proxy/router/header-mutation.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { configWith, ctx, request } from './support.js';

type Option = envoy.config.core.v3.HeaderValueOption;

function mutate(add: Option[], remove: string[], headers: Record<string, string | string[] | undefined>, isResponse = false, context: object = ctx): Record<string, unknown> {
  const problems = new ConfigProblems();
  const m = compileHeaderMutation(add, remove, 'add', 'remove', isResponse, problems);
  assert.deepEqual(problems.details, []);
  const h = { ...headers };
  m.apply(h, context as typeof ctx);
  // Drop removed (undefined) entries for comparison.
  return Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined));
}

test('append_action semantics, append (deprecated) and keep_empty_value', () => {
  const cases: Array<[Option, Record<string, string | string[]>, Record<string, unknown>]> = [
    [{ header: { key: 'x', value: 'new' } }, { x: 'old' }, { x: ['old', 'new'] }],
    [{ header: { key: 'x', value: 'new' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }, {}, { x: 'new' }],
    [{ header: { key: 'x', value: 'new' }, append_action: 'ADD_IF_ABSENT' }, { x: 'old' }, { x: 'old' }],
    [{ header: { key: 'x', value: 'new' }, append_action: 'ADD_IF_ABSENT' }, {}, { x: 'new' }],
    [{ header: { key: 'x', value: 'new' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }, { x: ['a', 'b'] }, { x: 'new' }],
    [{ header: { key: 'x', value: 'new' }, append_action: 'OVERWRITE_IF_EXISTS' }, {}, {}],
    [{ header: { key: 'x', value: 'new' }, append_action: 'OVERWRITE_IF_EXISTS' }, { x: 'old' }, { x: 'new' }],
    [{ header: { key: 'X-Up', value: 'v' }, append: {} }, { 'x-up': 'old' }, { 'x-up': 'v' }], // append: false
    [{ header: { key: 'x', value: 'v' }, append: { value: true } }, { x: 'old' }, { x: ['old', 'v'] }],
    [{ header: { key: 'x', value: '' } }, {}, {}],
    [{ header: { key: 'x', value: '' }, keep_empty_value: true }, {}, { x: '' }],
    [{ header: { key: 'x', value: '%REQ(missing)%' } }, {}, {}],
  ];
  for (const [option, headers, expected] of cases) assert.deepEqual(mutate([option], [], headers), expected, JSON.stringify(option));
});

test('removal happens before additions; overwrites before appends; formatters see the original headers', () => {
  const result = mutate(
    [
      { header: { key: 'x-copy', value: '%REQ(x-a)%' } },
      { header: { key: 'x-a', value: 'second' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-gone', value: 'back' } },
    ],
    ['X-Gone'],
    { 'x-a': 'first', 'x-gone': 'old' },
  );
  assert.deepEqual(result, { 'x-a': 'second', 'x-copy': 'first', 'x-gone': 'back' });
});

test('substitutions', () => {
  const cases: Array<[string, string]> = [
    ['%DOWNSTREAM_REMOTE_ADDRESS%', '10.0.0.1:5555'],
    ['%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', '10.0.0.1'],
    ['%DOWNSTREAM_LOCAL_ADDRESS%', '10.0.0.2:8080'],
    ['%UPSTREAM_REMOTE_ADDRESS%', '10.0.0.3:9080'],
    ['%PROTOCOL%', 'HTTP/1.1'],
    ['%HOSTNAME%', 'pod-1'],
    ['%START_TIME%', '2024-01-02T03:04:05.678Z'],
    ['%START_TIME(%s)%', String(Math.floor(Date.UTC(2024, 0, 2, 3, 4, 5, 678) / 1000))],
    ['%START_TIME(%Y/%m/%d %H:%M:%E3S)%', '2024/01/02 03:04:05.678'],
    ['%REQ(:path)%', '/p?q'],
    ['%REQ(x-missing?User-Agent)%', 'curl'],
    ['%REQ(user-agent):2%', 'cu'],
    ['ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%; 100%% sure', 'ip=10.0.0.1; 100% sure'],
  ];
  for (const [format, expected] of cases) {
    const result = mutate([{ header: { key: 'x-out', value: format } }], [], request('/p?q', { 'user-agent': 'curl' }));
    assert.equal(result['x-out'], expected, format);
  }
  const v6 = mutate([{ header: { key: 'x', value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%' } }], [], {}, false, { ...ctx, downstreamRemoteAddress: '[::1]:80' });
  assert.equal(v6['x'], '::1');
  const resp = mutate([{ header: { key: 'x-req', value: '%REQ(x-id)% %RESP(server)%' } }], [], { server: 'up' }, true, { ...ctx, requestHeaders: { 'x-id': '7' } });
  assert.equal(resp['x-req'], '7 up');
});

test('levels: route, then virtual host, then route configuration (the last wins) unless most_specific_header_mutations_wins', () => {
  const set = (v: string): Option[] => [{ header: { key: 'x-level', value: v }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }, { header: { key: 'x-order', value: v } }];
  for (const mostSpecific of [false, true]) {
    const table = compileRouteConfiguration(
      configWith([{ match: { prefix: '/' }, route: { cluster: 'c' }, request_headers_to_add: set('route'), response_headers_to_add: set('route') }], { request_headers_to_add: set('vhost'), response_headers_to_add: set('vhost') }, {
        request_headers_to_add: set('global'),
        response_headers_to_add: set('global'),
        most_specific_header_mutations_wins: mostSpecific,
      }),
    );
    const entry = table.match(request('/'), 0)!;
    const req = request('/');
    entry.requestHeaders.apply(req, ctx);
    const resp: Record<string, string | string[] | undefined> = { ':status': '200' };
    entry.responseHeaders.apply(resp, ctx);
    const order = mostSpecific ? ['global', 'vhost', 'route'] : ['route', 'vhost', 'global'];
    assert.equal(req['x-level'], order[2]);
    assert.deepEqual(req['x-order'], order);
    assert.equal(resp['x-level'], order[2]);
  }
});
