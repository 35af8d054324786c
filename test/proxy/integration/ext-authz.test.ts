// envoy.filters.http.ext_authz (HTTP service) through the real data plane against a small real authorization server:
// allowed (check request shape, upstream headers set/appended/removed, client headers on success), denied (the server's
// status, body and allowed client headers), server errors and timeouts (status_on_error), an unreachable server
// (403 by default, failure_mode_allow with its header), ExtAuthzPerRoute disabled, and Istio's CUSTOM wiring where a
// shadow RBAC policy enables the check through filter_enabled_metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { accessLogEntries, eventually, get, h2get, startDataPlane, startUpstream, staticCluster, vhost, type Json } from './support.js';

const EXT_AUTHZ_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const EXT_AUTHZ_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';

interface Check {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** The authorization server: decides by the path's first segment after the prefix. */
async function startAuthz(): Promise<{ port: number; checks: Check[]; outcomes: Map<string, 'answered' | 'abandoned'>; close(): Promise<void> }> {
  const checks: Check[] = [];
  const outcomes = new Map<string, 'answered' | 'abandoned'>();
  const server: Server = createServer((req, res) => {
    checks.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    res.on('close', () => outcomes.set(req.url ?? '', res.writableFinished ? 'answered' : 'abandoned'));
    req.resume();
    const path = req.url ?? '';
    if (path.startsWith('/check/allow') || path.startsWith('/check/custom')) {
      res.writeHead(200, { 'x-authz-user': 'alice', 'x-append': 'from-authz', 'x-not-for-upstream': 'z', 'x-envoy-auth-headers-to-remove': 'x-remove-me', 'x-client-ok': 'yes' });
      res.end();
    } else if (path.startsWith('/check/deny')) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="trellis"', 'x-deny-reason': 'no token', 'x-not-allowed': 'secret' });
      res.end('go away');
    } else if (path.startsWith('/check/teapot')) {
      res.writeHead(418);
      res.end('short and stout');
    } else if (path.startsWith('/check/error')) {
      res.writeHead(500);
      res.end('boom');
    } else if (path.startsWith('/check/slow')) {
      setTimeout(() => {
        res.writeHead(200);
        res.end();
      }, 1500);
    } else {
      res.writeHead(403);
      res.end('unknown');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    checks,
    outcomes,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function extAuthz(config: Json): Json {
  return { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': EXT_AUTHZ_TYPE, ...config } };
}

const HTTP_SERVICE = {
  server_uri: { uri: 'http://authz.local', cluster: 'authz', timeout: '0.5s' },
  path_prefix: '/check',
  authorization_request: {
    allowed_headers: { patterns: [{ exact: 'x-user' }, { prefix: 'X-Ext-' }] },
    headers_to_add: [{ key: 'x-from-proxy', value: 'trellis' }],
  },
  authorization_response: {
    allowed_upstream_headers: { patterns: [{ exact: 'x-authz-user' }] },
    allowed_upstream_headers_to_append: { patterns: [{ exact: 'x-append' }] },
    allowed_client_headers: { patterns: [{ exact: 'x-deny-reason' }] },
    allowed_client_headers_on_success: { patterns: [{ exact: 'x-client-ok' }] },
  },
};

test('ext_authz HTTP service: allow, deny, errors, timeouts, per-route disable, stats and details', async (t) => {
  const authz = await startAuthz();
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('authz', [authz.port])],
    httpFilters: [extAuthz({ http_service: HTTP_SERVICE, status_on_error: { code: 503 } })],
    virtualHosts: [
      vhost([
        { match: { prefix: '/open' }, route: { cluster: 'svc' }, typed_per_filter_config: { 'envoy.filters.http.ext_authz': { '@type': EXT_AUTHZ_PER_ROUTE_TYPE, disabled: true } } },
        { match: { prefix: '/' }, route: { cluster: 'svc' } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await authz.close();
  });

  const allowed = await get(dp.address, '/allow/items?id=1', {
    agent: dp.agent,
    headers: { host: 'shop.local', 'x-user': 'bob', 'x-ext-trace': '7', 'x-secret': 's3', authorization: 'Bearer t0k', 'x-remove-me': '1', 'x-append': 'from-client' },
  });
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers['x-client-ok'], 'yes', 'allowed_client_headers_on_success reach the client');
  const check = authz.checks[0]!;
  assert.equal(check.method, 'GET');
  assert.equal(check.path, '/check/allow/items?id=1', 'path_prefix + the original path');
  assert.equal(check.headers['host'], 'shop.local');
  assert.equal(check.headers['x-user'], 'bob');
  assert.equal(check.headers['x-ext-trace'], '7', 'prefix patterns match header names case-insensitively');
  assert.equal(check.headers['authorization'], 'Bearer t0k', 'authorization is always sent');
  assert.equal(check.headers['x-from-proxy'], 'trellis');
  assert.equal(check.headers['content-length'], '0');
  assert.equal(check.headers['x-secret'], undefined, 'headers not allowed stay out of the check');
  const seen = up.seen[0]!;
  assert.equal(seen.headers['x-authz-user'], 'alice', 'allowed_upstream_headers are set on the request');
  assert.equal(seen.headers['x-append'], 'from-client, from-authz', 'allowed_upstream_headers_to_append are appended');
  assert.equal(seen.headers['x-not-for-upstream'], undefined);
  assert.equal(seen.headers['x-remove-me'], undefined, 'x-envoy-auth-headers-to-remove removes request headers');

  // The request body waits while the check is out, then reaches the upstream whole.
  const posted = await get(dp.address, '/allow/upload', { agent: dp.agent, method: 'POST', body: 'x'.repeat(100_000) });
  assert.equal(posted.status, 200);
  assert.equal(up.seen[1]!.body.length, 100_000);
  assert.equal(authz.checks[1]!.method, 'POST');
  assert.equal(authz.checks[1]!.headers['content-length'], '0', 'the check carries no body');
  const h2allowed = await h2get(dp.address, '/allow/h2');
  assert.equal(h2allowed.status, 200);
  assert.equal(up.seen[2]!.headers['x-authz-user'], 'alice');

  const denied = await get(dp.address, '/deny/items', { agent: dp.agent });
  assert.equal(denied.status, 401, "the authorization server's status");
  assert.equal(denied.body, 'go away', "and its body");
  assert.equal(denied.headers['www-authenticate'], 'Bearer realm="trellis"', 'www-authenticate always passes');
  assert.equal(denied.headers['x-deny-reason'], 'no token', 'allowed_client_headers pass');
  assert.equal(denied.headers['x-not-allowed'], undefined);
  assert.equal((await get(dp.address, '/teapot', { agent: dp.agent })).status, 418, 'any status but 200 and 5xx is a denial');

  const error = await get(dp.address, '/error', { agent: dp.agent });
  assert.equal(error.status, 503, 'a 5xx from the server is an error: status_on_error');
  assert.equal(error.body, '');
  const slow = await get(dp.address, '/slow', { agent: dp.agent });
  assert.equal(slow.status, 503, 'no answer within server_uri.timeout is an error');

  const checksBefore = authz.checks.length;
  assert.equal((await get(dp.address, '/open/x', { agent: dp.agent })).status, 200);
  assert.equal(authz.checks.length, checksBefore, 'ExtAuthzPerRoute disabled skips the check');
  assert.deepEqual(up.seen.map((s) => s.path), ['/allow/items?id=1', '/allow/upload', '/allow/h2', '/open/x'], 'only allowed requests reach the upstream');

  const log = await accessLogEntries(dp, 8);
  assert.deepEqual(log.map((e) => `${String(e['code'])} ${String(e['flags'])} ${String(e['details'])}`), [
    '200 - via_upstream',
    '200 - via_upstream',
    '200 - via_upstream',
    '401 UAEX ext_authz_denied',
    '418 UAEX ext_authz_denied',
    '503 UAEX ext_authz_error',
    '503 UAEX ext_authz_error',
    '200 - via_upstream',
  ]);
  const stats = await dp.stats();
  assert.equal(stats.get('http.ingress.ext_authz.ok'), 3);
  assert.equal(stats.get('http.ingress.ext_authz.denied'), 2);
  assert.equal(stats.get('http.ingress.ext_authz.error'), 2);
  assert.equal(stats.get('http.ingress.ext_authz.failure_mode_allowed'), 0);
});

test('ext_authz: an unreachable server is 403 by default; failure_mode_allow lets the request through with its header', async (t) => {
  const up = await startUpstream('svc');
  // A port that was just free: nothing listens there.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const strict = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('authz', [deadPort])],
    httpFilters: [extAuthz({ http_service: HTTP_SERVICE })],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  const lenient = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('authz', [deadPort])],
    httpFilters: [extAuthz({ http_service: HTTP_SERVICE, failure_mode_allow: true, failure_mode_allow_header_add: true })],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await strict.close();
    await lenient.close();
    await up.close();
  });
  const refused = await get(strict.address, '/x');
  assert.equal(refused.status, 403, 'status_on_error defaults to 403');
  assert.equal(refused.body, '');
  assert.equal(up.seen.length, 0);
  assert.equal(await strict.stat('http.ingress.ext_authz.error'), 1);

  const through = await get(lenient.address, '/y');
  assert.equal(through.status, 200);
  assert.equal(up.seen[0]!.headers['x-envoy-auth-failure-mode-allowed'], 'true');
  assert.equal(await lenient.stat('http.ingress.ext_authz.error'), 1);
  assert.equal(await lenient.stat('http.ingress.ext_authz.failure_mode_allowed'), 1);
});

test("ext_authz as Istio's CUSTOM action: only requests matching the shadow RBAC policy are checked", async (t) => {
  const authz = await startAuthz();
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('authz', [authz.port])],
    httpFilters: [
      {
        name: 'envoy.filters.http.rbac',
        typed_config: {
          '@type': RBAC_TYPE,
          shadow_rules: { action: 'DENY', policies: { 'istio-ext-authz-ns[foo]-policy[ext]-rule[0]': { permissions: [{ url_path: { path: { prefix: '/custom' } } }], principals: [{ any: true }] } } },
          shadow_rules_stat_prefix: 'istio_ext_authz_',
        },
      },
      extAuthz({
        http_service: { ...HTTP_SERVICE, path_prefix: '/check' },
        filter_enabled_metadata: { filter: 'envoy.filters.http.rbac', path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }], value: { string_match: { prefix: 'istio-ext-authz' } } },
      }),
    ],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await authz.close();
  });
  assert.equal((await get(dp.address, '/custom/a', { agent: dp.agent })).status, 200);
  assert.equal(authz.checks.length, 1);
  assert.equal(authz.checks[0]!.path, '/check/custom/a');
  assert.equal(up.seen[0]!.headers['x-authz-user'], 'alice');
  assert.equal((await get(dp.address, '/other', { agent: dp.agent })).status, 200);
  assert.equal(authz.checks.length, 1, 'a request no CUSTOM policy selects is not sent to the provider');
  assert.equal(await dp.stat('http.ingress.ext_authz.disabled'), 1);
  assert.equal(await dp.stat('http.ingress.ext_authz.ok'), 1);
  assert.equal(await dp.stat('http.ingress.rbac.istio_ext_authz_.shadow_denied'), 1);
});

test('ext_authz: refused config names the field (google_grpc, missing server_uri parts, bad status_on_error)', async () => {
  const start = (config: Json): Promise<unknown> =>
    startDataPlane({ clusters: [staticCluster('svc', [1])], httpFilters: [extAuthz(config)], virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])] });
  await assert.rejects(start({ grpc_service: { google_grpc: { target_uri: 'authz:9000', stat_prefix: 'a' } } }), /grpc_service.google_grpc: not supported by Trellis: use envoy_grpc/);
  await assert.rejects(start({ http_service: { server_uri: { uri: 'http://a' } } }), (err: Error) => {
    assert.match(err.message, /http_service\.server_uri\.cluster: required/);
    assert.match(err.message, /http_service\.server_uri\.timeout: required/);
    return true;
  });
  await assert.rejects(start({ http_service: HTTP_SERVICE, with_request_body: { max_request_bytes: 10 } }), /with_request_body: sending the request body/);
});

test('ext_authz: a client that goes away during the check cancels the check request', async (t) => {
  const authz = await startAuthz();
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('authz', [authz.port])],
    httpFilters: [extAuthz({ http_service: { ...HTTP_SERVICE, server_uri: { ...HTTP_SERVICE.server_uri, timeout: '10s' } } })],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await authz.close();
  });
  // The server answers /slow after 1.5 s; the client gives up once the check has reached it.
  const [host, port] = dp.address.split(':') as [string, string];
  const req = httpRequest({ host, port: Number(port), path: '/slow/x', agent: false });
  req.on('error', () => {});
  req.end();
  await eventually('the check to reach the authorization server', () => authz.checks.length === 1);
  req.destroy();
  await eventually('the check request to end', () => authz.outcomes.has('/check/slow/x'));
  assert.equal(authz.outcomes.get('/check/slow/x'), 'abandoned', 'the proxy dropped the check instead of waiting for the answer');
  assert.equal(up.seen.length, 0);
});
