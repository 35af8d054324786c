// RBAC engine and matchers: every Permission and Principal kind, ALLOW/DENY/LOG with and without policies, name order, and refused config with field paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XdsValidationError } from '../../../src/common/errors.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { ConfigProblems } from '../../../src/proxy/router/config-problems.js';
import { compileRbacEngine } from '../../../src/proxy/filters/rbac/engine.js';
import { compilePermission, compilePrincipal } from '../../../src/proxy/filters/rbac/matchers.js';
import { remoteIpFromForwardedFor, peerIdentityOf, type RbacInput } from '../../../src/proxy/filters/rbac/rbac-input.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import { hasOpenssl, TestCa } from '../transport/pki.js';

type Permission = envoy.config.rbac.v3.Permission;
type Principal = envoy.config.rbac.v3.Principal;

function input(over: { headers?: HttpHeaders; remoteAddress?: string; localAddress?: string; localPort?: number; sni?: string; peer?: RbacInput['connection']['peer']; remoteIp?: string; state?: Record<string, unknown> } = {}): RbacInput {
  const remoteAddress = over.remoteAddress ?? '10.0.0.5';
  return {
    connection: {
      remoteAddress,
      localAddress: over.localAddress ?? '10.1.0.9',
      localPort: over.localPort ?? 8080,
      requestedServerName: over.sni ?? '',
      ...(over.peer ? { peer: over.peer } : {}),
    },
    headers: over.headers ?? { ':method': 'GET', ':path': '/api/v1/items?x=1', ':authority': 'shop.local' },
    remoteIp: over.remoteIp ?? remoteAddress,
    filterState: new Map(Object.entries(over.state ?? {})),
    pathWithoutQuery: undefined,
  };
}

function perm(p: Permission): (i: RbacInput) => boolean {
  const problems = new ConfigProblems();
  const f = compilePermission(p, 'p', problems);
  assert.deepEqual(problems.details, []);
  return f;
}
function princ(p: Principal): (i: RbacInput) => boolean {
  const problems = new ConfigProblems();
  const f = compilePrincipal(p, 'p', problems);
  assert.deepEqual(problems.details, []);
  return f;
}

const SPIFFE = 'spiffe://cluster.local/ns/default/sa/productpage';

test('permissions: any, header kinds, url_path without query, and/or/not', () => {
  assert.equal(perm({ any: true })(input()), true);
  assert.equal(perm({ header: { name: ':method', string_match: { exact: 'GET' } } })(input()), true);
  assert.equal(perm({ header: { name: ':method', string_match: { exact: 'POST' } } })(input()), false);
  assert.equal(perm({ header: { name: ':authority', string_match: { suffix: '.LOCAL', ignore_case: true } } })(input()), true);
  assert.equal(perm({ header: { name: 'x-user', present_match: true } })(input()), false);
  assert.equal(perm({ header: { name: 'x-user', present_match: true, invert_match: true } })(input()), true);
  assert.equal(perm({ header: { name: 'x-user', safe_regex_match: { regex: 'a[0-9]+' } } })(input({ headers: { 'x-user': 'a12' } })), true);
  assert.equal(perm({ header: { name: 'x-user', safe_regex_match: { regex: 'a[0-9]+' } } })(input({ headers: { 'x-user': 'a12b' } })), false, 'safe_regex is a full match');
  assert.equal(perm({ header: { name: 'x-user', contains_match: 'dmi' } })(input({ headers: { 'x-user': 'admin' } })), true);
  assert.equal(perm({ header: { name: 'x-user', prefix_match: 'ad' } })(input({ headers: { 'x-user': 'admin' } })), true);
  // An absent header fails a value matcher even inverted (Envoy's HeaderUtility).
  assert.equal(perm({ header: { name: 'x-user', exact_match: 'bob', invert_match: true } })(input()), false);

  assert.equal(perm({ url_path: { path: { exact: '/api/v1/items' } } })(input()), true, 'query string is not part of url_path');
  assert.equal(perm({ url_path: { path: { prefix: '/API/', ignore_case: true } } })(input()), true);
  assert.equal(perm({ url_path: { path: { prefix: '/API/' } } })(input()), false);
  assert.equal(perm({ url_path: { path: { exact: '/x' } } })(input({ headers: {} })), false, 'no :path (network RBAC) never matches');

  const getOnApi = perm({ and_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }, { url_path: { path: { prefix: '/api/' } } }] } });
  assert.equal(getOnApi(input()), true);
  assert.equal(getOnApi(input({ headers: { ':method': 'GET', ':path': '/admin' } })), false);
  const either = perm({ or_rules: { rules: [{ destination_port: 9090 }, { url_path: { path: { exact: '/admin' } } }] } });
  assert.equal(either(input()), false);
  assert.equal(either(input({ localPort: 9090 })), true);
  assert.equal(perm({ not_rule: { url_path: { path: { prefix: '/api' } } } })(input()), false);
  assert.equal(perm({ not_rule: { url_path: { path: { prefix: '/admin' } } } })(input()), true);
});

test('permissions: destination ip/port/range, SNI, metadata', () => {
  assert.equal(perm({ destination_ip: { address_prefix: '10.1.0.0', prefix_len: { value: 16 } } })(input()), true);
  assert.equal(perm({ destination_ip: { address_prefix: '10.2.0.0', prefix_len: { value: 16 } } })(input()), false);
  assert.equal(perm({ destination_ip: { address_prefix: '10.1.0.0', prefix_len: { value: 16 } } })(input({ localAddress: '::ffff:10.1.3.4' })), true, 'IPv4-mapped');
  assert.equal(perm({ destination_ip: { address_prefix: '192.0.2.1' } })(input()), true, 'absent prefix_len is 0, as in Envoy');
  assert.equal(perm({ destination_ip: { address_prefix: '::1' } })(input()), false, 'but only within the family');
  assert.equal(perm({ destination_port: 8080 })(input()), true);
  assert.equal(perm({ destination_port: 8081 })(input()), false);
  const range = perm({ destination_port_range: { start: 8000, end: 8080 } });
  assert.equal(range(input({ localPort: 8000 })), true);
  assert.equal(range(input({ localPort: 8080 })), false, 'end is exclusive');
  assert.equal(perm({ requested_server_name: { suffix: '.example.com' } })(input({ sni: 'api.example.com' })), true);
  assert.equal(perm({ requested_server_name: { suffix: '.example.com' } })(input()), false);
  assert.equal(perm({ requested_server_name: { exact: '' } })(input()), true, 'plaintext has an empty requested server name');
  const claims = { 'request.auth.principal': 'https://issuer/alice', 'request.auth.claims': { groups: ['dev', 'ops'], admin: true, level: 3, sub: 'alice' } };
  const metaPerm = perm({ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'ops' } } } } } });
  assert.equal(metaPerm(input({ state: { istio_authn: claims } })), true);
  assert.equal(metaPerm(input()), false);
});

test('metadata value matchers: string, list, bool, present, double, null, or, invert', () => {
  const state = { istio_authn: { 'request.auth.principal': 'iss/alice', 'request.auth.claims': { groups: ['dev'], admin: true, level: 3, sub: 'alice', gone: null } } };
  const m = (path: string[], value: envoy.type.matcher.v3.ValueMatcher, invert = false): boolean =>
    princ({ metadata: { filter: 'istio_authn', path: path.map((key) => ({ key })), value, invert } })(input({ state }));
  assert.equal(m(['request.auth.principal'], { string_match: { exact: 'iss/alice' } }), true);
  assert.equal(m(['request.auth.principal'], { string_match: { exact: 'iss/bob' } }), false);
  assert.equal(m(['request.auth.principal'], { string_match: { exact: 'iss/bob' } }, true), true, 'invert');
  assert.equal(m(['request.auth.claims', 'admin'], { bool_match: true }), true);
  assert.equal(m(['request.auth.claims', 'admin'], { bool_match: false }), false);
  assert.equal(m(['request.auth.claims', 'level'], { double_match: { exact: 3 } }), true);
  assert.equal(m(['request.auth.claims', 'level'], { double_match: { range: { start: 1, end: 3 } } }), false, 'range end is exclusive');
  assert.equal(m(['request.auth.claims', 'gone'], { null_match: {} }), true);
  assert.equal(m(['request.auth.claims', 'missing'], { null_match: {} }), false, 'absent is not null');
  assert.equal(m(['request.auth.claims', 'missing'], { present_match: false }), true);
  assert.equal(m(['request.auth.claims', 'sub'], { present_match: true }), true);
  assert.equal(m(['request.auth.claims', 'sub', 'deeper'], { present_match: true }), false, 'walking into a string is unset');
  // A string claim does not satisfy list_match (Envoy); Istio's extended-JWT form adds or_match with string_match.
  assert.equal(m(['request.auth.claims', 'sub'], { list_match: { one_of: { string_match: { exact: 'alice' } } } }), false);
  assert.equal(m(['request.auth.claims', 'sub'], { or_match: { value_matchers: [{ list_match: { one_of: { string_match: { exact: 'alice' } } } }, { string_match: { exact: 'alice' } }] } }), true);
  assert.equal(m(['request.auth.claims', 'groups'], { or_match: { value_matchers: [{ list_match: { one_of: { string_match: { exact: 'dev' } } } }, { string_match: { exact: 'dev' } }] } }), true);
  assert.equal(m(['request.auth.claims', 'groups'], { string_match: { exact: 'dev' } }), false, 'a list is not a string');
});

test('principals: authenticated order URI → DNS → subject; plaintext never authenticated', () => {
  const peer = { uriSans: [SPIFFE], dnsSans: ['productpage.default.svc'], subject: 'CN=productpage,O=cluster.local' };
  assert.equal(princ({ authenticated: {} })(input({ peer })), true);
  assert.equal(princ({ authenticated: {} })(input({ peer: { uriSans: [], dnsSans: [], subject: '' } })), true, 'any TLS connection without principal_name');
  assert.equal(princ({ authenticated: {} })(input()), false, 'plaintext');
  assert.equal(princ({ authenticated: { principal_name: { exact: SPIFFE } } })(input({ peer })), true);
  assert.equal(princ({ authenticated: { principal_name: { exact: 'productpage.default.svc' } } })(input({ peer })), true, 'DNS SAN');
  assert.equal(princ({ authenticated: { principal_name: { exact: 'CN=productpage,O=cluster.local' } } })(input({ peer })), true, 'subject');
  assert.equal(princ({ authenticated: { principal_name: { prefix: 'spiffe://cluster.local/ns/prod/' } } })(input({ peer })), false);
  assert.equal(princ({ authenticated: { principal_name: { exact: SPIFFE } } })(input()), false);
});

test('principals: source_ip / direct_remote_ip / remote_ip, header, url_path, filter_state, not_id, and/or', () => {
  const i = input({ remoteAddress: '127.0.0.1', remoteIp: '203.0.113.7' });
  assert.equal(princ({ source_ip: { address_prefix: '127.0.0.0', prefix_len: { value: 8 } } })(i), true);
  assert.equal(princ({ direct_remote_ip: { address_prefix: '127.0.0.1', prefix_len: { value: 32 } } })(i), true);
  assert.equal(princ({ remote_ip: { address_prefix: '127.0.0.0', prefix_len: { value: 8 } } })(i), false, 'remote_ip is the x-forwarded-for client');
  assert.equal(princ({ remote_ip: { address_prefix: '203.0.113.0', prefix_len: { value: 24 } } })(i), true);
  assert.equal(princ({ header: { name: 'x-user', string_match: { exact: 'alice' } } })(input({ headers: { 'x-user': 'alice' } })), true);
  assert.equal(princ({ url_path: { path: { exact: '/api/v1/items' } } })(input()), true);
  const fs = princ({ filter_state: { key: 'io.istio.peer_principal', string_match: { prefix: 'spiffe://' } } });
  assert.equal(fs(input({ state: { 'io.istio.peer_principal': SPIFFE } })), true);
  assert.equal(fs(input()), false);
  assert.equal(princ({ not_id: { any: true } })(input()), false);
  assert.equal(princ({ and_ids: { ids: [{ any: true }, { source_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } }] } })(input()), true);
  assert.equal(princ({ or_ids: { ids: [{ not_id: { any: true } }, { source_ip: { address_prefix: '192.168.0.0', prefix_len: { value: 16 } } }] } })(input()), false);
});

test('engine: ALLOW/DENY/LOG, empty policies, first matching policy in name order', () => {
  const problems = new ConfigProblems();
  const allowNone = compileRbacEngine({ action: 'ALLOW', policies: {} }, 'rules', problems);
  const denyNone = compileRbacEngine({ action: 'DENY' }, 'rules', problems);
  assert.deepEqual(allowNone.evaluate(input()), { allowed: false }, 'ALLOW with no policies denies all');
  assert.deepEqual(denyNone.evaluate(input()), { allowed: true }, 'DENY with no policies allows all');
  const policies = {
    'z-get': { permissions: [{ header: { name: ':method', string_match: { exact: 'GET' } } }], principals: [{ any: true }] },
    'a-api': { permissions: [{ url_path: { path: { prefix: '/api/' } } }], principals: [{ source_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } }] },
    'm-never': { permissions: [{ any: true }], principals: [{ not_id: { any: true } }] },
  };
  const allow = compileRbacEngine({ action: 'ALLOW', policies }, 'rules', problems);
  const deny = compileRbacEngine({ action: 'DENY', policies }, 'rules', problems);
  const log = compileRbacEngine({ action: 'LOG', policies }, 'rules', problems);
  assert.deepEqual(problems.details, []);
  assert.deepEqual(allow.evaluate(input()), { allowed: true, policy: 'a-api' }, 'name order decides which policy is reported');
  assert.deepEqual(deny.evaluate(input()), { allowed: false, policy: 'a-api' });
  assert.deepEqual(allow.evaluate(input({ remoteAddress: '192.168.1.1' })), { allowed: true, policy: 'z-get' });
  const post = input({ headers: { ':method': 'POST', ':path': '/other' } });
  assert.deepEqual(allow.evaluate(post), { allowed: false });
  assert.deepEqual(deny.evaluate(post), { allowed: true });
  assert.deepEqual(log.evaluate(input()), { allowed: true, policy: 'a-api' }, 'LOG never denies');
  assert.deepEqual(log.evaluate(post), { allowed: true });
  // A policy needs both a permission and a principal to match.
  const both = compileRbacEngine({ policies: { p: { permissions: [{ any: true }], principals: [{ header: { name: 'x-ok', present_match: true } }] } } }, 'rules', problems);
  assert.equal(both.evaluate(input()).allowed, false, 'action defaults to ALLOW');
  assert.equal(both.evaluate(input({ headers: { 'x-ok': '1' } })).allowed, true);
});

test('engine: refused config names every problem with its field path', () => {
  const problems = new ConfigProblems();
  compileRbacEngine(
    {
      action: 'ALLOW',
      policies: {
        bad: {
          permissions: [{}, { header: { name: 'x', safe_regex_match: { regex: '(a' } } }, { uri_template: { name: 'envoy.path.match.uri_template.uri_template_matcher' } }],
          principals: [{ source_ip: { address_prefix: 'not-an-ip' } }, { any: true, header: { name: 'x' } }],
          condition: { id: 1 },
        },
        empty: {},
      },
    } as envoy.config.rbac.v3.RBAC,
    'rules',
    problems,
  );
  const text = problems.details.join('\n');
  assert.match(text, /rules\.policies\["bad"\]\.permissions\[0\]: one of and_rules/);
  assert.match(text, /rules\.policies\["bad"\]\.permissions\[1\]\.header\.safe_regex_match\.regex: does not compile/);
  assert.match(text, /rules\.policies\["bad"\]\.permissions\[2\]\.uri_template: uri_template is not supported/);
  assert.match(text, /rules\.policies\["bad"\]\.principals\[0\]\.source_ip: expected an IP address prefix/);
  assert.match(text, /rules\.policies\["bad"\]\.principals\[1\]: only one of .* \(got any, header\)/);
  assert.match(text, /rules\.policies\["bad"\]\.condition: not supported by Trellis/);
  assert.match(text, /rules\.policies\["empty"\]\.permissions: at least one permission is required/);
  assert.match(text, /rules\.policies\["empty"\]\.principals: at least one principal is required/);
  assert.ok(new XdsValidationError(problems.details).details.length >= 8);
});

test('remote_ip from x-forwarded-for with xff_num_trusted_hops; peer identity split without the acceptor fields', () => {
  assert.equal(remoteIpFromForwardedFor({}, '127.0.0.1', 0), '127.0.0.1');
  assert.equal(remoteIpFromForwardedFor({ 'x-forwarded-for': '203.0.113.7' }, '127.0.0.1', 0), '203.0.113.7');
  assert.equal(remoteIpFromForwardedFor({ 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }, '127.0.0.1', 1), '198.51.100.1');
  assert.equal(remoteIpFromForwardedFor({ 'x-forwarded-for': '203.0.113.7' }, '127.0.0.1', 1), '127.0.0.1', 'not enough hops');
  assert.equal(remoteIpFromForwardedFor({ 'x-forwarded-for': 'garbage' }, '127.0.0.1', 0), '127.0.0.1');
  const id = peerIdentityOf({ peerUriSans: [SPIFFE, 'svc.local'] });
  assert.deepEqual([id.uriSans, id.dnsSans, id.subject], [[SPIFFE], ['svc.local'], '']);
  // The TLS acceptor's TlsConnectionInfo carries the lists apart and the RFC 2253 subject: those are used as given.
  const detailed = peerIdentityOf({ peerUriSans: ['db.local'], peerUris: [], peerDnsSans: ['db.local'], peerSubject: 'CN=db,O=cluster.local' } as Parameters<typeof peerIdentityOf>[0]);
  assert.deepEqual([detailed.uriSans, detailed.dnsSans, detailed.subject], [[], ['db.local'], 'CN=db,O=cluster.local']);
});

test('principal_name falls back to the RFC 2253 subject read from the peer PEM', { skip: hasOpenssl() ? false : 'openssl CLI is missing' }, () => {
  const ca = new TestCa('cluster.local');
  const leaf = ca.issue('legacy', { cn: 'legacy' });
  const peer = peerIdentityOf({ peerUriSans: [], peerCertificatePem: leaf.cert });
  assert.equal(peer.subject, 'CN=legacy,O=cluster.local');
  const byName = princ({ authenticated: { principal_name: { exact: 'CN=legacy,O=cluster.local' } } });
  assert.equal(byName(input({ peer })), true);
  assert.equal(byName(input({ peer: peerIdentityOf({ peerUriSans: [] }) })), false, 'no certificate: empty subject');
});
