// AuthorizationPolicy → Envoy RBAC, table-driven from Istio's builder testdata (pilot/pkg/security/authz/builder/testdata):
// selection and precedence, Istio's filter order and policy names, every attribute, empty vs missing rules, TCP chains.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { securityFilterProblems, securityHttpFilters, securityNetworkFilters } from '../../../../src/control/translate/security/inbound-filters.js';
import type { AuthorizationPolicySpec } from '../../../../src/api/index.js';
import {
  authorizationPolicy,
  httpRbacOf,
  networkRbacOf,
  pushOf,
  wirePolicy,
  workload,
  type RbacPolicy,
} from './security-fixture.js';

const proxy = workload();
const selector = { matchLabels: { app: 'httpbin', version: 'v1' } };

// Envoy RBAC building blocks, as Istio writes them.
const andRules = (...rules: object[]) => ({ and_rules: { rules } });
const andIds = (...ids: object[]) => ({ and_ids: { ids } });
const or = (...rules: object[]) => ({ or_rules: { rules } });
const not = (p: object) => ({ not_rule: p });
const orIds = (...ids: object[]) => ({ or_ids: { ids } });
const notId = (p: object) => ({ not_id: p });
const re = (regex: string) => ({ safe_regex: { google_re2: {}, regex } });
const authn = (m: object) => ({ authenticated: { principal_name: m } });
const authnMeta = (key: string, m: object) => ({ metadata: { filter: 'istio_authn', path: [{ key }], value: { string_match: m } } });
const cidr = (address_prefix: string, len: number) => ({ address_prefix, prefix_len: { value: len } });
const ANY_PERMISSION = andRules({ any: true });
const ANY_PRINCIPAL = andIds({ any: true });

function httpFilters(spec: AuthorizationPolicySpec[], names?: string[]) {
  const push = pushOf(spec.map((s, i) => authorizationPolicy(names?.[i] ?? `httpbin-${i + 1}`, { selector, ...s })));
  return securityHttpFilters({ push, proxy, port: 80, isGateway: false });
}

/** The one RBAC filter of a single policy, and its one rule's Envoy policy. */
function onlyPolicy(spec: AuthorizationPolicySpec): RbacPolicy {
  const filters = httpFilters([spec]);
  assert.equal(filters.length, 1);
  const rbac = httpRbacOf(filters[0]);
  const names = Object.keys(rbac.rules?.policies ?? {});
  assert.deepEqual(names, ['ns[foo]-policy[httpbin-1]-rule[0]']);
  return rbac.rules!.policies![names[0]!]!;
}

describe('AuthorizationPolicy selection and precedence', () => {
  test('root namespace applies mesh-wide, the namespace and matching selectors apply, others do not', () => {
    const push = pushOf([
      authorizationPolicy('mesh-deny', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/mesh'] } }] }] }, 'istio-system'),
      authorizationPolicy('ns-allow', { rules: [{}] }),
      authorizationPolicy('selected', { selector: { matchLabels: { app: 'httpbin' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/sel'] } }] }] }),
      authorizationPolicy('other-app', { selector: { matchLabels: { app: 'other' } }, action: 'DENY', rules: [{}] }),
      authorizationPolicy('other-ns', { action: 'DENY', rules: [{}] }, 'bar'),
      authorizationPolicy('root-selected', { selector: { matchLabels: { app: 'httpbin' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/root'] } }] }] }, 'istio-system'),
    ]);
    const filters = securityHttpFilters({ push, proxy, port: 80, isGateway: false });
    assert.deepEqual(filters.map((f) => f.name), ['envoy.filters.http.rbac', 'envoy.filters.http.rbac']);
    const deny = httpRbacOf(filters[0]);
    assert.equal(deny.rules?.action, 'DENY');
    assert.deepEqual(Object.keys(deny.rules?.policies ?? {}).sort(), [
      'ns[foo]-policy[selected]-rule[0]',
      'ns[istio-system]-policy[mesh-deny]-rule[0]',
      'ns[istio-system]-policy[root-selected]-rule[0]',
    ]);
    const allow = httpRbacOf(filters[1]);
    assert.equal(allow.rules?.action ?? 'ALLOW', 'ALLOW');
    assert.deepEqual(Object.keys(allow.rules?.policies ?? {}), ['ns[foo]-policy[ns-allow]-rule[0]']);
  });

  test('one snapshot, workloads of other labels or namespaces: each gets its own filters (built once per workload shape)', () => {
    const push = pushOf([authorizationPolicy('httpbin-only', { selector, action: 'DENY', rules: [{}] })]);
    const filtersOf = (p: typeof proxy) => securityHttpFilters({ push, proxy: p, port: 80, isGateway: false }).map((f) => f.name);
    assert.deepEqual(filtersOf(proxy), ['envoy.filters.http.rbac']);
    assert.deepEqual(filtersOf(workload({ labels: { app: 'other' } })), []);
    assert.deepEqual(filtersOf(workload({ namespace: 'bar' })), []);
    assert.deepEqual(filtersOf(workload({ id: 'sidecar~10.0.0.6~httpbin-v1-def.foo~foo.svc.cluster.local', labels: { version: 'v1', app: 'httpbin' } })), ['envoy.filters.http.rbac']);
  });

  test('no policy for the workload: no filter at all (everything allowed)', () => {
    const push = pushOf([authorizationPolicy('elsewhere', { rules: [{}] }, 'bar')]);
    assert.deepEqual(securityHttpFilters({ push, proxy, port: 80, isGateway: false }), []);
    assert.deepEqual(securityNetworkFilters({ push, proxy, port: 80, isGateway: false }), []);
  });

  test('Istio\'s order: CUSTOM (shadow rbac, ext_authz), then AUDIT (LOG), DENY, ALLOW', () => {
    const push = pushOf([
      authorizationPolicy('a-allow', { selector, rules: [{}] }),
      authorizationPolicy('b-deny', { selector, action: 'DENY', rules: [{}] }),
      authorizationPolicy('c-audit', { selector, action: 'AUDIT', rules: [{}] }),
      authorizationPolicy('d-custom', { selector, action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] }),
    ], { services: [extAuthzService], mesh: { extensionProviders: [{ name: 'authz', envoyExtAuthzHttp: { service: 'ext-authz.foo.svc.cluster.local', port: 8000 } }] } });
    const filters = securityHttpFilters({ push, proxy, port: 80, isGateway: false });
    assert.deepEqual(filters.map((f) => f.name), [
      'envoy.filters.http.rbac', 'envoy.filters.http.ext_authz', 'envoy.filters.http.rbac', 'envoy.filters.http.rbac', 'envoy.filters.http.rbac',
    ]);
    assert.deepEqual(Object.keys(httpRbacOf(filters[0]).shadow_rules?.policies ?? {}), ['istio-ext-authz-ns[foo]-policy[d-custom]-rule[0]']);
    assert.deepEqual([2, 3, 4].map((i) => httpRbacOf(filters[i]).rules?.action ?? 'ALLOW'), ['LOG', 'DENY', 'ALLOW']);
  });

  test('policy names: ns[<ns>]-policy[<name>]-rule[<index>], one per rule', () => {
    const rbac = httpRbacOf(httpFilters([{ rules: [{ to: [{ operation: { methods: ['GET'] } }] }, { to: [{ operation: { methods: ['POST'] } }] }] }])[0]);
    assert.deepEqual(Object.keys(rbac.rules?.policies ?? {}), ['ns[foo]-policy[httpbin-1]-rule[0]', 'ns[foo]-policy[httpbin-1]-rule[1]']);
  });

  test('dry-run (istio.io/dry-run annotation): shadow_rules with Istio\'s stat prefix, nothing enforced', () => {
    const push = pushOf([
      authorizationPolicy('dry', { selector, action: 'DENY', rules: [{}] }, 'foo', { 'istio.io/dry-run': 'true' }),
      authorizationPolicy('dry-allow', { selector, rules: [{ to: [{ operation: { paths: ['/x'] } }] }] }, 'foo', { 'istio.io/dry-run': 'true' }),
    ]);
    const [deny, allow] = securityHttpFilters({ push, proxy, port: 80, isGateway: false }).map(httpRbacOf);
    assert.equal(deny!.rules, undefined);
    assert.equal(deny!.shadow_rules?.action, 'DENY');
    assert.equal(deny!.shadow_rules_stat_prefix, 'istio_dry_run_deny_');
    assert.deepEqual(Object.keys(deny!.shadow_rules?.policies ?? {}), ['ns[foo]-policy[dry]-rule[0]']);
    assert.equal(allow!.rules, undefined);
    assert.equal(allow!.shadow_rules_stat_prefix, 'istio_dry_run_allow_');
  });
});

describe('empty rule vs no rules (Istio allow-empty-rule, allow-nil-rule, deny-all)', () => {
  const matchNever = { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] };

  test('ALLOW with rules: [{}] matches every request', () => {
    assert.deepEqual(onlyPolicy({ rules: [{}] }), wirePolicy({ permissions: [ANY_PERMISSION], principals: [ANY_PRINCIPAL] }));
  });

  test('ALLOW without rules matches nothing: with no other ALLOW, every request is denied', () => {
    assert.deepEqual(onlyPolicy({}), wirePolicy(matchNever));
  });

  test('DENY with rules: [{}] denies everything; DENY without rules is refused by validation (Istio: no effect)', () => {
    const rbac = httpRbacOf(httpFilters([{ action: 'DENY', rules: [{}] }])[0]);
    assert.equal(rbac.rules?.action, 'DENY');
    assert.deepEqual(rbac.rules?.policies?.['ns[foo]-policy[httpbin-1]-rule[0]'], wirePolicy({ permissions: [ANY_PERMISSION], principals: [ANY_PRINCIPAL] }));
    assert.throws(() => pushOf([authorizationPolicy('deny-nothing', { action: 'DENY' })]), /a DENY policy without rules/);
  });
});

describe('rule fields → permissions and principals (Istio allow-full-rule)', () => {
  test('from.source: principals (spiffe://), requestPrincipals (istio_authn), namespaces, ipBlocks, remoteIpBlocks and their not*', () => {
    const policy = onlyPolicy({
      rules: [{
        from: [{
          source: {
            principals: ['principal', 'principal-prefix-*', '*-suffix-principal', '*', 'cluster.local/ns/x/sa/y'],
            requestPrincipals: ['requestPrincipals', 'requestPrincipals-prefix-*', '*-suffix-requestPrincipals', '*'],
            namespaces: ['ns', 'ns-prefix-*', '*-ns-suffix', '*'],
            ipBlocks: ['1.2.3.4', '5.6.0.0/16'],
            remoteIpBlocks: ['1.2.3.4', '5.6.0.0/16'],
            notPrincipals: ['not-principal'],
            notRequestPrincipals: ['not-requestPrincipals'],
            notNamespaces: ['not-ns'],
            notIpBlocks: ['9.0.0.1', '2001:db8::/32'],
            notRemoteIpBlocks: ['9.2.0.0/16'],
          },
        }],
      }],
    });
    assert.deepEqual(policy, wirePolicy({
      permissions: [ANY_PERMISSION],
      principals: [andIds(
        orIds(
          authn({ exact: 'spiffe://principal' }),
          authn({ prefix: 'spiffe://principal-prefix-' }),
          authn(re('spiffe://.*-suffix-principal')),
          authn(re('.+')),
          authn({ exact: 'spiffe://cluster.local/ns/x/sa/y' }),
        ),
        notId(orIds(authn({ exact: 'spiffe://not-principal' }))),
        orIds(
          authnMeta('request.auth.principal', { exact: 'requestPrincipals' }),
          authnMeta('request.auth.principal', { prefix: 'requestPrincipals-prefix-' }),
          authnMeta('request.auth.principal', { suffix: '-suffix-requestPrincipals' }),
          authnMeta('request.auth.principal', re('.+')),
        ),
        notId(orIds(authnMeta('request.auth.principal', { exact: 'not-requestPrincipals' }))),
        orIds(authn(re('.*/ns/ns/.*')), authn(re('.*/ns/ns-prefix-.*/.*')), authn(re('.*/ns/.*-ns-suffix/.*')), authn(re('.*/ns/.*/.*'))),
        notId(orIds(authn(re('.*/ns/not-ns/.*')))),
        orIds({ remote_ip: cidr('1.2.3.4', 32) }, { remote_ip: cidr('5.6.0.0', 16) }),
        notId(orIds({ remote_ip: cidr('9.2.0.0', 16) })),
        orIds({ direct_remote_ip: cidr('1.2.3.4', 32) }, { direct_remote_ip: cidr('5.6.0.0', 16) }),
        notId(orIds({ direct_remote_ip: cidr('9.0.0.1', 32) }, { direct_remote_ip: cidr('2001:db8::', 32) })),
      )],
    }));
  });

  test('to.operation: hosts (case-insensitive), methods, paths (wildcards and templates), ports and their not*', () => {
    const policy = onlyPolicy({
      rules: [{
        to: [{
          operation: {
            hosts: ['exact.com', '*.suffix.com', 'prefix.*', '*'],
            notHosts: ['not-exact.com'],
            methods: ['GET', 'method-prefix-*', '*-suffix-method', '*'],
            notMethods: ['DELETE'],
            paths: ['/exact', '/prefix/*', '*/suffix', '*', '/path/template/{*}', '/{**}/path/template'],
            notPaths: ['/not-exact'],
            ports: ['80', '90'],
            notPorts: ['8000'],
          },
        }],
      }],
    });
    const authority = (m: object) => ({ header: { name: ':authority', string_match: { ...m, ignore_case: true } } });
    const methodIs = (m: object) => ({ header: { name: ':method', string_match: m } });
    const urlPath = (m: object) => ({ url_path: { path: m } });
    assert.deepEqual(policy, wirePolicy({
      permissions: [andRules(
        or(authority({ exact: 'exact.com' }), authority({ suffix: '.suffix.com' }), authority({ prefix: 'prefix.' }), { header: { name: ':authority', present_match: true } }),
        not(or(authority({ exact: 'not-exact.com' }))),
        or(methodIs({ exact: 'GET' }), methodIs({ prefix: 'method-prefix-' }), methodIs({ suffix: '-suffix-method' }), { header: { name: ':method', present_match: true } }),
        not(or(methodIs({ exact: 'DELETE' }))),
        or(
          urlPath({ exact: '/exact' }), urlPath({ prefix: '/prefix/' }), urlPath({ suffix: '/suffix' }), urlPath(re('.+')),
          urlPath(re('/path/template/[^/]+')), urlPath(re('/.*/path/template')),
        ),
        not(or(urlPath({ exact: '/not-exact' }))),
        or({ destination_port: 80 }, { destination_port: 90 }),
        not(or({ destination_port: 8000 })),
      )],
      principals: [ANY_PRINCIPAL],
    }));
  });

  test('when: every condition key Istio accepts, in Istio\'s order (permissions first in `when` order, after `to`)', () => {
    const policy = onlyPolicy({
      rules: [{
        to: [{ operation: { methods: ['GET'] } }],
        when: [
          { key: 'request.headers[X-header]', values: ['header', '*'], notValues: ['not-header'] },
          { key: 'source.ip', values: ['10.10.10.10'], notValues: ['90.10.10.10'] },
          { key: 'remote.ip', values: ['192.168.10.0/24'] },
          { key: 'source.namespace', values: ['ns'] },
          { key: 'source.principal', values: ['cluster.local/ns/a/sa/b'] },
          { key: 'request.auth.principal', values: ['https://example.com/*'] },
          { key: 'request.auth.audiences', values: ['aud'] },
          { key: 'request.auth.presenter', values: ['presenter'] },
          { key: 'request.auth.claims[iss]', values: ['iss'] },
          { key: 'request.auth.claims[nested1][nested2]', notValues: ['nested-prefix-*'] },
          { key: 'destination.ip', values: ['10.10.10.10'] },
          { key: 'destination.port', values: ['91'] },
          { key: 'connection.sni', values: ['*.suffix.com'] },
          { key: 'experimental.envoy.filters.a.b[c]', values: ['exact', '[list]'] },
        ],
      }],
    });
    const claims = (path: string[], m: object) => ({ metadata: { filter: 'istio_authn', path: path.map((key) => ({ key })), value: { list_match: { one_of: { string_match: m } } } } });
    assert.deepEqual(policy, wirePolicy({
      permissions: [andRules(
        or({ header: { name: ':method', string_match: { exact: 'GET' } } }),
        or({ destination_ip: cidr('10.10.10.10', 32) }),
        or({ destination_port: 91 }),
        or({ requested_server_name: { suffix: '.suffix.com' } }),
        or(
          { metadata: { filter: 'envoy.filters.a.b', path: [{ key: 'c' }], value: { string_match: { exact: 'exact' } } } },
          { metadata: { filter: 'envoy.filters.a.b', path: [{ key: 'c' }], value: { list_match: { one_of: { string_match: { exact: 'list' } } } } } },
        ),
      )],
      principals: [andIds(
        orIds({ header: { name: 'X-header', string_match: { exact: 'header' } } }, { header: { name: 'X-header', present_match: true } }),
        notId(orIds({ header: { name: 'X-header', string_match: { exact: 'not-header' } } })),
        orIds({ direct_remote_ip: cidr('10.10.10.10', 32) }),
        notId(orIds({ direct_remote_ip: cidr('90.10.10.10', 32) })),
        orIds({ remote_ip: cidr('192.168.10.0', 24) }),
        orIds(authn(re('.*/ns/ns/.*'))),
        orIds(authn({ exact: 'spiffe://cluster.local/ns/a/sa/b' })),
        orIds(authnMeta('request.auth.principal', { prefix: 'https://example.com/' })),
        orIds(authnMeta('request.auth.audiences', { exact: 'aud' })),
        orIds(authnMeta('request.auth.presenter', { exact: 'presenter' })),
        orIds(claims(['request.auth.claims', 'iss'], { exact: 'iss' })),
        notId(orIds(claims(['request.auth.claims', 'nested1', 'nested2'], { prefix: 'nested-prefix-' }))),
      )],
    }));
  });

  test('several from and to: one principal per source, one permission per operation (ORed by Envoy)', () => {
    const policy = onlyPolicy({ rules: [{ from: [{ source: { namespaces: ['a'] } }, { source: { namespaces: ['b'] } }], to: [{ operation: { ports: ['1'] } }, { operation: { ports: ['2'] } }] }] });
    assert.deepEqual(policy, wirePolicy({
      permissions: [andRules(or({ destination_port: 1 })), andRules(or({ destination_port: 2 }))],
      principals: [andIds(orIds(authn(re('.*/ns/a/.*')))), andIds(orIds(authn(re('.*/ns/b/.*'))))],
    }));
  });

  test('trust domain: cluster.local principals mean the mesh\'s own trust domain; others and wildcards stay', () => {
    const push = pushOf([authorizationPolicy('td', {
      selector,
      rules: [{
        from: [{ source: { principals: ['cluster.local/ns/a/sa/b', 'example.org/ns/c/sa/d', 'other.td/ns/e/sa/f', '*/ns/g/sa/h'], notPrincipals: ['cluster.local/ns/x/sa/y'] } }],
        when: [{ key: 'source.principal', values: ['cluster.local/ns/w/sa/v'] }],
      }],
    })], { mesh: { trustDomain: 'example.org' } });
    const rbac = httpRbacOf(securityHttpFilters({ push, proxy, port: 80, isGateway: false })[0]);
    assert.deepEqual(rbac.rules?.policies?.['ns[foo]-policy[td]-rule[0]']?.principals, wirePolicy({ principals: [andIds(
      orIds(
        authn({ exact: 'spiffe://example.org/ns/a/sa/b' }),
        authn({ exact: 'spiffe://example.org/ns/c/sa/d' }),
        authn({ exact: 'spiffe://other.td/ns/e/sa/f' }),
        authn(re('spiffe://.*/ns/g/sa/h')),
      ),
      notId(orIds(authn({ exact: 'spiffe://example.org/ns/x/sa/y' }))),
      orIds(authn({ exact: 'spiffe://example.org/ns/w/sa/v' })),
    )] }).principals);
  });

  test('serviceAccounts: `sa` in the policy namespace or `ns/sa`, as Istio\'s SPIFFE regex', () => {
    const policy = onlyPolicy({ rules: [{ from: [{ source: { serviceAccounts: ['my-ns/my-sa', 'sa-only'] } }] }] });
    assert.deepEqual(policy.principals, wirePolicy({ principals: [andIds(orIds(
      authn(re('spiffe://.+/ns/my-ns/(.+/|)sa/my-sa(/.+)?')),
      authn(re('spiffe://.+/ns/foo/(.+/|)sa/sa-only(/.+)?')),
    ))] }).principals);
  });
});

describe('TCP filter chains (Istio action-allow/deny-HTTP-for-TCP-filter)', () => {
  const tcp = (specs: AuthorizationPolicySpec[]) => {
    const push = pushOf(specs.map((s, i) => authorizationPolicy(`httpbin-${i + 1}`, { selector, ...s })));
    const input = { push, proxy, port: 3306, isGateway: false };
    return { filters: securityNetworkFilters(input), problems: securityFilterProblems(input) };
  };

  test('ALLOW: a rule using HTTP-only fields is dropped (allows less), the others stay; stat_prefix tcp.', () => {
    const { filters, problems } = tcp([{ rules: [{ to: [{ operation: { methods: ['GET'], ports: ['3306'] } }] }, { to: [{ operation: { ports: ['3306'] } }] }] }]);
    assert.deepEqual(filters.map((f) => f.name), ['envoy.filters.network.rbac']);
    const rbac = networkRbacOf(filters[0]);
    assert.equal(rbac.stat_prefix, 'tcp.');
    assert.deepEqual(Object.keys(rbac.rules?.policies ?? {}), ['ns[foo]-policy[httpbin-1]-rule[1]']);
    assert.ok(problems.some((p) => p.policy === 'ns[foo]-policy[httpbin-1]-rule[0]' && /"?:method"? is HTTP only/.test(p.message)), JSON.stringify(problems));
  });

  test('ALLOW whose only rule is HTTP-only: no policy left, so the RBAC filter denies every connection', () => {
    const rbac = networkRbacOf(tcp([{ rules: [{ when: [{ key: 'request.headers[x]', values: ['y'] }] }] }]).filters[0]);
    assert.ok(rbac.rules, 'rules present (ALLOW with no policy)');
    assert.deepEqual(rbac.rules?.policies ?? {}, {});
  });

  test('DENY: HTTP-only values are ignored, so the rule matches more (here: every connection to port 3306)', () => {
    const { filters, problems } = tcp([{ action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'], paths: ['/admin'], ports: ['3306'] } }], from: [{ source: { requestPrincipals: ['*'] } }] }] }]);
    assert.deepEqual(problems.map((p) => [p.code, p.policy, p.message]), [
      ['TRELLIS_AUTHZ_RULE_DEGRADED', 'ns[foo]-policy[httpbin-1]-rule[0]', 'ignored on TCP filter chain, so the rule matches more: ":method" is HTTP only'],
      ['TRELLIS_AUTHZ_RULE_DEGRADED', 'ns[foo]-policy[httpbin-1]-rule[0]', 'ignored on TCP filter chain, so the rule matches more: "path-matcher" is HTTP only'],
      ['TRELLIS_AUTHZ_RULE_DEGRADED', 'ns[foo]-policy[httpbin-1]-rule[0]', 'ignored on TCP filter chain, so the rule matches more: "request.auth.principal" is HTTP only'],
    ]);
    const rbac = networkRbacOf(filters[0]);
    assert.equal(rbac.rules?.action, 'DENY');
    assert.deepEqual(rbac.rules?.policies?.['ns[foo]-policy[httpbin-1]-rule[0]'], wirePolicy({
      permissions: [andRules(or({ destination_port: 3306 }))],
      principals: [ANY_PRINCIPAL],
    }));
  });

  test('DENY on HTTP-only fields alone denies the whole TCP port, as Istio does', () => {
    const rbac = networkRbacOf(tcp([{ action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }]).filters[0]);
    assert.deepEqual(rbac.rules?.policies?.['ns[foo]-policy[httpbin-1]-rule[0]'], wirePolicy({ permissions: [ANY_PERMISSION], principals: [ANY_PRINCIPAL] }));
  });

  test('principals, namespaces and IPs work on TCP (from the peer certificate and the connection)', () => {
    const rbac = networkRbacOf(tcp([{ rules: [{ from: [{ source: { principals: ['cluster.local/ns/a/sa/b'], ipBlocks: ['10.0.0.0/8'] } }] }] }]).filters[0]);
    assert.deepEqual(rbac.rules?.policies?.['ns[foo]-policy[httpbin-1]-rule[0]']?.principals, wirePolicy({ principals: [andIds(
      orIds(authn({ exact: 'spiffe://cluster.local/ns/a/sa/b' })),
      orIds({ direct_remote_ip: cidr('10.0.0.0', 8) }),
    )] }).principals);
  });
});

const extAuthzService = {
  hostname: 'ext-authz.foo.svc.cluster.local', namespace: 'foo', ports: [{ name: 'http', number: 8000, protocol: 'HTTP' as const }],
  resolution: 'STATIC' as const, location: 'MESH_INTERNAL' as const, addresses: [], exportTo: ['*'], source: { registry: 'memory', namespace: 'foo', name: 'ext-authz' },
};
