import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteConfiguration } from '../../../src/proxy/router/compile-route-table.js';
import { computeRequestHash, generateHashCookie } from '../../../src/proxy/router/hash-policy.js';
import type { ClusterRouteAction, RedirectRouteAction, RouteEntry } from '../../../src/proxy/router/route-table.js';
import { FILTER_DISABLED } from '../../../src/proxy/router/route-table.js';
import { parseRetryOn } from '../../../src/proxy/router/retry-policy.js';
import { xxHash64 } from '../../../src/common/xxhash64.js';
import { encodeMessage, packAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { configWith, request, type Route } from './support.js';

function only(route: Omit<Route, 'match'> & { match?: Route['match'] }, vhost: Parameters<typeof configWith>[1] = {}): RouteEntry {
  const table = compileRouteConfiguration(configWith([{ match: { prefix: '/' }, ...route }], vhost));
  const entry = table.match(request('/'), 0);
  assert.ok(entry);
  return entry;
}

function clusterAction(route: Omit<Route, 'match'> & { match?: Route['match'] }, vhost: Parameters<typeof configWith>[1] = {}): ClusterRouteAction {
  const action = only(route, vhost).action;
  assert.equal(action.kind, 'cluster');
  return action as ClusterRouteAction;
}

test('weighted_clusters: picks by cumulative weight over random; total_weight is ignored (sum of weights)', () => {
  const action = clusterAction({
    route: {
      weighted_clusters: {
        total_weight: { value: 1000 },
        clusters: [
          { name: 'a', weight: { value: 10 } },
          { name: 'zero', weight: {} },
          { name: 'b', weight: { value: 30 } },
        ],
      },
    },
  });
  const counts: Record<string, number> = {};
  for (let i = 0; i < 1000; i++) {
    const c = action.pickCluster(request('/'), i / 1000)!;
    counts[c] = (counts[c] ?? 0) + 1;
  }
  assert.deepEqual(counts, { a: 250, b: 750 });
  assert.equal(action.pickCluster(request('/'), 0.2499), 'a');
  assert.equal(action.pickCluster(request('/'), 0.25), 'b');
  assert.equal(action.pickCluster(request('/'), 0.999999), 'b');
});

test('weighted_clusters: header_name supplies the random value; per-entry headers and host rewrite come with the pick', () => {
  const action = clusterAction({
    route: {
      weighted_clusters: {
        header_name: 'x-random',
        clusters: [
          { name: 'a', weight: { value: 1 }, host_rewrite_literal: 'a.internal', request_headers_to_add: [{ header: { key: 'x-to', value: 'a' } }] },
          { name: 'b', weight: { value: 1 } },
        ],
      },
    },
  });
  assert.equal(action.pickCluster(request('/', { 'x-random': '3' }), 0), 'b');
  assert.equal(action.pickCluster(request('/', { 'x-random': '4' }), 0.9), 'a');
  assert.equal(action.pickCluster(request('/', { 'x-random': 'nope' }), 0.9), 'b');
  const target = action.pickTarget(request('/'), 0)!;
  assert.equal(target.hostRewrite, 'a.internal');
  const headers = request('/');
  target.requestHeaders!.apply(headers, { downstreamRemoteAddress: '', downstreamLocalAddress: '', protocol: 'HTTP/1.1', hostname: 'h' });
  assert.equal(headers['x-to'], 'a');
});

test('cluster_header: the header names the cluster; missing → undefined; cluster_not_found_response_code', () => {
  const action = clusterAction({ route: { cluster_header: 'X-Cluster', cluster_not_found_response_code: 'NOT_FOUND' } });
  assert.equal(action.pickCluster(request('/', { 'x-cluster': 'backend' }), 0), 'backend');
  assert.equal(action.pickCluster(request('/'), 0), undefined);
  assert.equal(action.pickCluster(request('/', { 'x-cluster': '' }), 0), undefined);
  assert.equal(action.clusterNotFoundStatus, 404);
  assert.equal(clusterAction({ route: { cluster: 'c' } }).clusterNotFoundStatus, 503);
});

test('timeouts: 15 s by default, 0 disables, idle_timeout only when set', () => {
  const d = clusterAction({ route: { cluster: 'c' } });
  assert.equal(d.timeoutMs, 15000);
  assert.equal(d.idleTimeoutMs, undefined);
  const t = clusterAction({ route: { cluster: 'c', timeout: {}, idle_timeout: { seconds: 2, nanos: 500_000_000 }, max_grpc_timeout: {} } });
  assert.equal(t.timeoutMs, 0);
  assert.equal(t.idleTimeoutMs, 2500);
  assert.equal(t.maxGrpcTimeoutMs, 0);
});

test('retry policy: defaults, route over virtual host, previous_hosts, back-off 25 ms / 10× base', () => {
  const vhostPolicy = { retry_on: '5xx', num_retries: { value: 5 } };
  const inherited = clusterAction({ route: { cluster: 'c' } }, { retry_policy: vhostPolicy });
  assert.equal(inherited.retryPolicy?.numRetries, 5);
  const own = clusterAction(
    {
      route: {
        cluster: 'c',
        retry_policy: {
          retry_on: 'connect-failure, refused-stream,unavailable,retriable-status-codes',
          retriable_status_codes: [503],
          per_try_timeout: { seconds: 1 },
          retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate', value: new Uint8Array() } }],
          host_selection_retry_max_attempts: 5,
        },
      },
    },
    { retry_policy: vhostPolicy },
  );
  const p = own.retryPolicy!;
  assert.deepEqual([...p.retryOn], ['connect-failure', 'refused-stream', 'unavailable', 'retriable-status-codes']);
  assert.equal(p.numRetries, 1); // route policy replaces the vhost's entirely: num_retries defaults to 1
  assert.equal(p.perTryTimeoutMs, 1000);
  assert.deepEqual([...p.retriableStatusCodes], [503]);
  assert.equal(p.backOffBaseMs, 25);
  assert.equal(p.backOffMaxMs, 250);
  assert.equal(p.avoidPreviousHosts, true);
  assert.equal(p.hostSelectionRetryMaxAttempts, 5);
  const backoff = clusterAction({ route: { cluster: 'c', retry_policy: { retry_on: '5xx', num_retries: {}, retry_back_off: { base_interval: { nanos: 100_000_000 } } } } }).retryPolicy!;
  assert.equal(backoff.numRetries, 0);
  assert.equal(backoff.backOffBaseMs, 100);
  assert.equal(backoff.backOffMaxMs, 1000);
  assert.equal(backoff.hostSelectionRetryMaxAttempts, 1);
  assert.equal(backoff.avoidPreviousHosts, false);
  assert.deepEqual([...parseRetryOn('5xx, bogus ,reset')], ['5xx', 'reset']);
});

test('prefix_rewrite and regex_rewrite rewrite :path like Envoy (query kept)', () => {
  const cases: Array<[Route['match'], Partial<envoy.config.route.v3.RouteAction>, string, string]> = [
    [{ prefix: '/api/' }, { prefix_rewrite: '/' }, '/api/v1?x=1', '/v1?x=1'],
    [{ prefix: '/API', case_sensitive: {} }, { prefix_rewrite: '/v2' }, '/api/items', '/v2/items'],
    [{ path: '/old' }, { prefix_rewrite: '/new' }, '/old?q', '/new?q'],
    [{ safe_regex: { regex: '/x/.*' } }, { prefix_rewrite: '/y' }, '/x/abc?q=1', '/y?q=1'],
    [{ prefix: '/' }, { regex_rewrite: { pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' } }, '/service/foo/v1/api?a=b', '/v1/api/instance/foo?a=b'],
    [{ prefix: '/' }, { regex_rewrite: { pattern: { regex: 'one' }, substitution: 'two' } }, '/xxx/one/yyy/one/zzz', '/xxx/two/yyy/two/zzz'],
    [{ prefix: '/' }, { regex_rewrite: { pattern: { regex: '^/aaa' }, substitution: '$\\0' } }, '/aaa/b', '$/aaa/b'],
  ];
  for (const [match, extra, path, expected] of cases) {
    const table = compileRouteConfiguration(configWith([{ match, route: { cluster: 'c', ...extra } }]));
    const headers = request(path);
    const entry = table.match(headers, 0)!;
    (entry.action as ClusterRouteAction).rewritePath(headers);
    assert.equal(headers[':path'], expected, `${JSON.stringify(extra)} ${path}`);
  }
});

test('host rewrites: literal, auto, header', () => {
  assert.equal(clusterAction({ route: { cluster: 'c', host_rewrite_literal: 'h.internal' } }).hostRewrite, 'h.internal');
  assert.equal(clusterAction({ route: { cluster: 'c', auto_host_rewrite: { value: true } } }).autoHostRewrite, true);
  assert.equal(clusterAction({ route: { cluster: 'c', host_rewrite_header: 'X-Host' } }).hostRewriteHeader, 'x-host');
});

test('redirect Location for each field combination', () => {
  type Case = [envoy.config.route.v3.RedirectAction, Route['match'], Record<string, string>, string, number];
  const cases: Case[] = [
    [{ https_redirect: true }, { prefix: '/' }, { ':authority': 'a.com', ':path': '/p?q=1' }, 'https://a.com/p?q=1', 301],
    [{ https_redirect: true }, { prefix: '/' }, { ':authority': 'a.com:80', ':path': '/p', 'x-forwarded-proto': 'http' }, 'https://a.com/p', 301],
    [{ https_redirect: true }, { prefix: '/' }, { ':authority': 'a.com:8080', ':path': '/p' }, 'https://a.com:8080/p', 301],
    [{ scheme_redirect: 'http' }, { prefix: '/' }, { ':authority': 'a.com:443', ':path': '/', ':scheme': 'https' }, 'http://a.com/', 301],
    [{ host_redirect: 'b.com' }, { prefix: '/' }, { ':authority': 'a.com:8080', ':path': '/p' }, 'http://b.com/p', 301],
    [{ port_redirect: 8443 }, { prefix: '/' }, { ':authority': 'a.com:8080', ':path': '/p' }, 'http://a.com:8443/p', 301],
    [{ host_redirect: 'b.com', port_redirect: 81 }, { prefix: '/' }, { ':authority': 'a.com', ':path': '/p' }, 'http://b.com:81/p', 301],
    [{ path_redirect: '/new' }, { prefix: '/' }, { ':authority': 'a.com', ':path': '/old?q=1' }, 'http://a.com/new?q=1', 301],
    [{ path_redirect: '/new?x=2', strip_query: true }, { prefix: '/' }, { ':authority': 'a.com', ':path': '/old?q=1' }, 'http://a.com/new?x=2', 301],
    [{ path_redirect: '/new', strip_query: true }, { prefix: '/' }, { ':authority': 'a.com', ':path': '/old?q=1' }, 'http://a.com/new', 301],
    [{ path_redirect: 'rel' }, { prefix: '/' }, { ':authority': 'a.com', ':path': '/old' }, 'http://a.com/rel', 301],
    [{ prefix_rewrite: '/v2/', response_code: 'FOUND' }, { prefix: '/v1/' }, { ':authority': 'a.com', ':path': '/v1/items?z' }, 'http://a.com/v2/items?z', 302],
    [{ regex_rewrite: { pattern: { regex: '/(\\w+)/(\\w+)' }, substitution: '/\\2/\\1' }, response_code: 'SEE_OTHER' }, { prefix: '/' }, { ':authority': 'a.com', ':path': '/a/b?q' }, 'http://a.com/b/a?q', 303],
    [{ strip_query: true, response_code: 'TEMPORARY_REDIRECT' }, { prefix: '/' }, { ':authority': 'a.com', ':path': '/p?q=1' }, 'http://a.com/p', 307],
    [{ https_redirect: true, response_code: 'PERMANENT_REDIRECT' }, { prefix: '/' }, { ':authority': '[::1]:80', ':path': '/' }, 'https://[::1]/', 308],
  ];
  for (const [redirect, match, headers, location, status] of cases) {
    const table = compileRouteConfiguration(configWith([{ match, redirect }]));
    const req: Record<string, string> = { ':method': 'GET', ':scheme': 'http', ...headers };
    const action = table.match(req, 0)!.action as RedirectRouteAction;
    assert.equal(action.kind, 'redirect');
    assert.equal(action.location(req), location, JSON.stringify(redirect));
    assert.equal(action.status, status);
    assert.equal(req[':path'], headers[':path'], 'location() leaves the request alone');
  }
});

test('direct_response: status and inline body', () => {
  assert.deepEqual(only({ direct_response: { status: 503, body: { inline_string: 'down' } } }).action, { kind: 'direct_response', status: 503, body: 'down' });
  assert.deepEqual(only({ direct_response: { status: 200, body: { inline_bytes: new Uint8Array(Buffer.from('ok')) } } }).action, { kind: 'direct_response', status: 200, body: 'ok' });
  assert.deepEqual(only({ direct_response: { status: 204 } }).action, { kind: 'direct_response', status: 204, body: '' });
});

test('mirror policies: route over virtual host over route configuration; runtime fraction', () => {
  const table = compileRouteConfiguration(
    configWith(
      [
        { match: { prefix: '/own' }, route: { cluster: 'c', request_mirror_policies: [{ cluster: 'm-route', runtime_fraction: { default_value: { numerator: 25 } }, trace_sampled: {} }] } },
        { match: { prefix: '/' }, route: { cluster: 'c' } },
      ],
      { request_mirror_policies: [{ cluster: 'm-vhost' }] },
      { request_mirror_policies: [{ cluster: 'm-global' }] },
    ),
  );
  assert.deepEqual((table.match(request('/own'), 0)!.action as ClusterRouteAction).mirrorPolicies, [{ cluster: 'm-route', fraction: 0.25 }]);
  assert.deepEqual((table.match(request('/x'), 0)!.action as ClusterRouteAction).mirrorPolicies, [{ cluster: 'm-vhost', fraction: 1 }]);
});

test('hash policies: stable bigint per input, Envoy combination, terminal, cookie TTL generation', () => {
  const action = clusterAction({
    route: {
      cluster: 'c',
      hash_policy: [
        { header: { header_name: 'x-user' } },
        { cookie: { name: 'session', ttl: { seconds: 3600 }, path: '/' } },
        { connection_properties: { source_ip: true } },
        { query_parameter: { name: 'id' } },
      ],
    },
  });
  const [header, cookie, source, query] = action.hashPolicies;
  assert.equal(header!.hash(request('/', { 'x-user': 'alice' }), ''), xxHash64('alice'));
  assert.equal(header!.hash(request('/'), ''), undefined);
  // Repeated values are sorted, then hashed as one stream.
  assert.equal(header!.hash(request('/', { 'x-user': ['b', 'a'] }), ''), xxHash64('ab'));
  assert.equal(cookie!.hash(request('/', { cookie: 'a=1; session="s1"' }), ''), xxHash64('s1'));
  assert.equal(cookie!.hash(request('/'), ''), undefined);
  assert.deepEqual(cookie!.cookie, { name: 'session', ttlSeconds: 3600, path: '/' });
  assert.equal(source!.hash(request('/'), '10.1.2.3'), xxHash64('10.1.2.3'));
  assert.equal(query!.hash(request('/p?id=42'), ''), xxHash64('42'));
  const rotl = (h: bigint): bigint => ((h << 1n) | (h >> 63n)) & 0xffffffffffffffffn;
  const headers = request('/p?id=42', { 'x-user': 'alice' });
  const expected = rotl(rotl(xxHash64('alice')) ^ xxHash64('10.1.2.3')) ^ xxHash64('42');
  assert.equal(computeRequestHash(action.hashPolicies, headers, '10.1.2.3'), expected);
  assert.equal(computeRequestHash(action.hashPolicies, headers, '10.1.2.3'), expected, 'same input, same hash');
  assert.equal(computeRequestHash(action.hashPolicies, request('/'), ''), undefined);

  const terminal = clusterAction({ route: { cluster: 'c', hash_policy: [{ header: { header_name: 'x-a' }, terminal: true }, { header: { header_name: 'x-b' } }] } });
  assert.equal(computeRequestHash(terminal.hashPolicies, request('/', { 'x-a': '1', 'x-b': '2' }), ''), xxHash64('1'));
  assert.equal(computeRequestHash(terminal.hashPolicies, request('/', { 'x-b': '2' }), ''), xxHash64('2'));

  const generated = generateHashCookie(cookie!.cookie!, '10.0.0.1:5555', '10.0.0.2:8080');
  assert.equal(generated.value, xxHash64('10.0.0.1:555510.0.0.2:8080').toString(16).padStart(16, '0'));
  assert.equal(generated.hash, xxHash64(generated.value));
  assert.equal(generated.setCookie, `session="${generated.value}"; Max-Age=3600; Path=/; HttpOnly`);
});

test('typed_per_filter_config: compiled by the callback, route over virtual host over route configuration; FilterConfig disabled/optional', () => {
  const fault = (n: number) => packAny('envoy.extensions.filters.http.fault.v3.HTTPFault', { max_active_faults: { value: n } });
  const wrapper = (v: envoy.config.route.v3.FilterConfig) => ({ type_url: 'type.googleapis.com/envoy.config.route.v3.FilterConfig', value: encodeMessage('envoy.config.route.v3.FilterConfig', v) });
  const seen: string[] = [];
  const table = compileRouteConfiguration(
    configWith(
      [
        { match: { prefix: '/r' }, route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.fault': fault(3), 'envoy.filters.http.cors': wrapper({ disabled: true }) } },
        { match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { 'unknown.optional': wrapper({ is_optional: true, config: fault(9) }) } },
      ],
      { typed_per_filter_config: { 'envoy.filters.http.fault': fault(2) } },
      { typed_per_filter_config: { 'envoy.filters.http.fault': fault(1), 'envoy.filters.http.other': fault(7) } },
    ),
    {
      perFilterConfig: (name, any) => {
        seen.push(name);
        if (name === 'unknown.optional') return undefined;
        return { name, typeUrl: any.type_url };
      },
    },
  );
  const r = table.match(request('/r'), 0)!;
  assert.deepEqual(r.perFilterConfig.get('envoy.filters.http.fault'), { name: 'envoy.filters.http.fault', typeUrl: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' });
  assert.equal(r.perFilterConfig.get('envoy.filters.http.cors'), FILTER_DISABLED);
  assert.ok(r.perFilterConfig.has('envoy.filters.http.other'));
  const other = table.match(request('/x'), 0)!;
  assert.equal(other.perFilterConfig.has('unknown.optional'), false);
  assert.ok(seen.includes('unknown.optional'));
});

test('route name, decorator operation, stat_prefix and virtual host flags are exposed', () => {
  const entry = only({ name: 'n', route: { cluster: 'c' }, decorator: { operation: 'op' }, stat_prefix: 'sp' }, { include_request_attempt_count: true, require_tls: 'ALL' });
  assert.equal(entry.name, 'n');
  assert.equal(entry.operation, 'op');
  assert.equal(entry.statPrefix, 'sp');
  assert.equal(entry.virtualHost.includeRequestAttemptCount, true);
  assert.equal(entry.virtualHost.requireTls, 'ALL');
});
