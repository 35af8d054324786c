// CUSTOM AuthorizationPolicy → shadow RBAC + ext_authz to the meshConfig extension provider (Istio's custom-*-provider
// testdata): cluster, timeout, headers, filter_enabled_metadata, and deny configs when the provider cannot be used.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicySpec } from '../../../../src/api/index.js';
import type { ExtensionProvider } from '../../../../src/control/model/mesh-config.js';
import { securityFilterProblems, securityHttpFilters, securityNetworkFilters } from '../../../../src/control/translate/security/inbound-filters.js';
import { unpackAny } from '../../../../src/xds/codec.js';
import { EXT_AUTHZ_URL, authorizationPolicy, httpRbacOf, networkRbacOf, pushOf, service, workload, type ExtAuthz } from './security-fixture.js';

const proxy = workload();
const selector = { matchLabels: { app: 'httpbin' } };
const extAuthzService = service('my-custom-ext-authz.foo.svc.cluster.local', 'foo', [{ name: 'http', number: 9000, protocol: 'HTTP' }]);

const fullProvider: ExtensionProvider = {
  name: 'default',
  envoyExtAuthzHttp: {
    service: 'foo/my-custom-ext-authz.foo.svc.cluster.local',
    port: 9000,
    timeout: '10s',
    pathPrefix: '/check',
    failOpen: true,
    statusOnError: '403',
    includeRequestHeadersInCheck: ['x-custom-id', 'x-prefix-*', '*-suffix'],
    includeAdditionalHeadersInCheck: { 'x-header-2': 'value-2', 'x-header-1': 'value-1' },
    includeRequestBodyInCheck: { maxRequestBytes: 2048, allowPartialMessage: true, packAsBytes: true },
    headersToUpstreamOnAllow: ['Authorization', 'x-prefix-*', '*-suffix'],
    headersToDownstreamOnDeny: ['Set-cookie', 'x-prefix-*', '*-suffix'],
  },
};

// Istio's custom-simple-http-in.yaml: two CUSTOM policies on two paths, one provider.
const customPolicies = (provider = 'default'): AuthorizationPolicySpec[] => [
  { selector, action: 'CUSTOM', provider: { name: provider }, rules: [{ to: [{ operation: { paths: ['/httpbin1'] } }] }] },
  { selector, action: 'CUSTOM', provider: { name: provider }, rules: [{ to: [{ operation: { paths: ['/httpbin2'] } }] }] },
];

function build(specs: AuthorizationPolicySpec[], providers: ExtensionProvider[] = [fullProvider]) {
  const push = pushOf(specs.map((s, i) => authorizationPolicy(`httpbin-${i + 1}`, s)), { services: [extAuthzService], mesh: { extensionProviders: providers } });
  const input = { push, proxy, port: 80, isGateway: false };
  return { http: securityHttpFilters(input), tcp: securityNetworkFilters(input), problems: securityFilterProblems(input) };
}

const pathPolicy = (path: string) => ({
  permissions: [{ and_rules: { rules: [{ or_rules: { rules: [{ url_path: { path: { exact: path } } }] } }] } }],
  principals: [{ and_ids: { ids: [{ any: true }] } }],
});

describe('CUSTOM action', () => {
  test('HTTP: a shadow RBAC filter (istio-ext-authz- names, DENY) then ext_authz enabled only when it matched', () => {
    const { http } = build(customPolicies());
    assert.deepEqual(http.map((f) => f.name), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz']);
    const rbac = httpRbacOf(http[0]);
    assert.equal(rbac.rules, undefined, 'CUSTOM never enforces through RBAC');
    assert.equal(rbac.shadow_rules_stat_prefix, 'istio_ext_authz_');
    assert.equal(rbac.shadow_rules?.action, 'DENY');
    assert.deepEqual(rbac.shadow_rules?.policies, {
      'istio-ext-authz-ns[foo]-policy[httpbin-1]-rule[0]': pathPolicy('/httpbin1'),
      'istio-ext-authz-ns[foo]-policy[httpbin-2]-rule[0]': pathPolicy('/httpbin2'),
    });
  });

  test('ext_authz: Istio\'s http provider config (custom-http-provider-out2)', () => {
    const extAuthz = unpackAny<ExtAuthz>(build(customPolicies()).http[1]!.typed_config!, EXT_AUTHZ_URL);
    assert.deepEqual(extAuthz, {
      http_service: {
        server_uri: { uri: 'http://my-custom-ext-authz.foo.svc.cluster.local', cluster: 'outbound|9000||my-custom-ext-authz.foo.svc.cluster.local', timeout: { seconds: 10 } },
        path_prefix: '/check',
        authorization_request: {
          allowed_headers: { patterns: [{ exact: 'x-custom-id', ignore_case: true }, { prefix: 'x-prefix-', ignore_case: true }, { suffix: '-suffix', ignore_case: true }] },
          headers_to_add: [{ key: 'x-header-1', value: 'value-1' }, { key: 'x-header-2', value: 'value-2' }],
        },
        authorization_response: {
          allowed_upstream_headers: { patterns: [{ exact: 'Authorization', ignore_case: true }, { prefix: 'x-prefix-', ignore_case: true }, { suffix: '-suffix', ignore_case: true }] },
          allowed_client_headers: { patterns: [{ exact: 'Set-cookie', ignore_case: true }, { prefix: 'x-prefix-', ignore_case: true }, { suffix: '-suffix', ignore_case: true }] },
        },
      },
      transport_api_version: 'V3',
      failure_mode_allow: true,
      with_request_body: { max_request_bytes: 2048, allow_partial_message: true, pack_as_bytes: true },
      status_on_error: { code: 'Forbidden' },
      filter_enabled_metadata: {
        filter: 'envoy.filters.http.rbac',
        path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
        value: { string_match: { prefix: 'istio-ext-authz' } },
      },
    });
  });

  test('defaults: 600s timeout, a bare host as service, no optional sections', () => {
    const minimal: ExtensionProvider = { name: 'default', envoyExtAuthzHttp: { service: 'my-custom-ext-authz.foo.svc.cluster.local', port: 9000 } };
    const extAuthz = unpackAny<ExtAuthz>(build(customPolicies(), [minimal]).http[1]!.typed_config!, EXT_AUTHZ_URL);
    assert.deepEqual(extAuthz.http_service, {
      server_uri: { uri: 'http://my-custom-ext-authz.foo.svc.cluster.local', cluster: 'outbound|9000||my-custom-ext-authz.foo.svc.cluster.local', timeout: { seconds: 600 } },
    });
    assert.equal(extAuthz.failure_mode_allow, undefined);
    assert.equal(extAuthz.status_on_error, undefined);
  });

  test('TCP chains: an HTTP authorizer cannot judge TCP, so CUSTOM adds nothing there', () => {
    assert.deepEqual(build(customPolicies()).tcp, []);
  });

  const badCases: Array<[string, AuthorizationPolicySpec[], ExtensionProvider[], RegExp]> = [
    ['provider not in mesh config', customPolicies('missing'), [fullProvider], /available providers are \[default\] but found "missing"/],
    ['no extension providers at all', customPolicies(), [], /no extension provider is defined/],
    ['service not in the registry', customPolicies(), [{ name: 'default', envoyExtAuthzHttp: { service: 'nowhere.foo.svc.cluster.local', port: 9000 } }], /could not find service nowhere/],
    ['bad statusOnError', customPolicies(), [{ name: 'default', envoyExtAuthzHttp: { service: 'my-custom-ext-authz.foo.svc.cluster.local', port: 9000, statusOnError: '999' } }], /unsupported statusOnError 999/],
    ['bad port', customPolicies(), [{ name: 'default', envoyExtAuthzHttp: { service: 'my-custom-ext-authz.foo.svc.cluster.local', port: 0 } }], /port must be in the range/],
    ['pathPrefix without /', customPolicies(), [{ name: 'default', envoyExtAuthzHttp: { service: 'my-custom-ext-authz.foo.svc.cluster.local', port: 9000, pathPrefix: 'check' } }], /pathPrefix must begin with/],
    ['gRPC provider', customPolicies('grpc'), [{ name: 'grpc', envoyExtAuthzGrpc: { service: 'x', port: 9000 } }], /envoyExtAuthzGrpc is not supported/],
    ['two providers on one workload', [customPolicies('default')[0]!, customPolicies('other')[1]!], [fullProvider, { ...fullProvider, name: 'other' }], /only 1 provider can be used per workload/],
  ];
  for (const [name, specs, providers, reason] of badCases) {
    test(`unusable provider (${name}): the requests it would check are denied, with the reason reported`, () => {
      const { http, tcp, problems } = build(specs, providers);
      assert.deepEqual(http.map((f) => f.name), ['envoy.filters.http.rbac']);
      const rbac = httpRbacOf(http[0]);
      assert.equal(rbac.rules?.action, 'DENY');
      assert.deepEqual(Object.keys(rbac.rules?.policies ?? {}), [
        'istio-ext-authz-ns[foo]-policy[httpbin-1]-rule[0]-deny-due-to-bad-CUSTOM-action',
        'istio-ext-authz-ns[foo]-policy[httpbin-2]-rule[0]-deny-due-to-bad-CUSTOM-action',
      ]);
      assert.deepEqual(rbac.rules?.policies?.['istio-ext-authz-ns[foo]-policy[httpbin-1]-rule[0]-deny-due-to-bad-CUSTOM-action'], pathPolicy('/httpbin1'));
      // On TCP the HTTP-only path is dropped from the DENY, so the whole port is denied, as in Istio.
      assert.equal(networkRbacOf(tcp[0]).stat_prefix, 'tcp.');
      assert.ok(problems.some((p) => reason.test(p.message)), JSON.stringify(problems));
    });
  }

  test('a dry-run CUSTOM policy is left out (with a problem), not enforced', () => {
    const push = pushOf([authorizationPolicy('dry', customPolicies()[0]!, 'foo', { 'istio.io/dry-run': 'true' })], { services: [extAuthzService], mesh: { extensionProviders: [fullProvider] } });
    const input = { push, proxy, port: 80, isGateway: false };
    assert.deepEqual(securityHttpFilters(input), []);
    assert.match(securityFilterProblems(input)[0]?.message ?? '', /dry-run CUSTOM/);
  });
});
