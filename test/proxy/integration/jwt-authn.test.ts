// JWT authentication through the real data plane (static bootstrap): a JWKS server on 127.0.0.1 reached through a
// STATIC cluster, keys generated with jose. Fetch and cache, key rotation picked up after cache_duration, async_fetch,
// a JWKS server that is down / failing / slow (401 `Jwks remote fetch is failed`), what the upstream sees, the
// access log's reason, the filter's counters, and a JWT rule that path confusion cannot get around.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type KeyLike } from 'jose';
import { accessLogEntries, get, h2get, startDataPlane, startUpstream, staticCluster, vhost, type Json } from './support.js';

const ISS = 'https://issuer.example';
const JWT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

interface Key {
  readonly priv: KeyLike;
  readonly jwk: JWK;
}

async function newKey(kid: string, alg = 'RS256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { priv: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
}

function sign(key: Key, claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISS, sub: 'alice', aud: 'bookinfo', exp: now + 600, ...claims }).setProtectedHeader({ alg: key.jwk.alg!, kid: key.jwk.kid! }).sign(key.priv);
}

/** A JWKS server whose key set, status and delay the test controls; counts the fetches. */
async function startJwksServer(initial: JWK[]): Promise<{ port: number; keys: JWK[]; status: number; delayMs: number; fetches: number; close(): Promise<void>; server: Server }> {
  const state = {
    port: 0,
    keys: initial,
    status: 200,
    delayMs: 0,
    fetches: 0,
    server: undefined as unknown as Server,
    close: async (): Promise<void> => undefined,
  };
  const server = createServer((req, res) => {
    state.fetches++;
    const answer = (): void => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(state.status, { 'content-type': 'application/json' }).end(state.status === 200 ? JSON.stringify({ keys: state.keys }) : 'oops');
    };
    if (state.delayMs > 0) setTimeout(answer, state.delayMs);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as AddressInfo).port;
  state.server = server;
  state.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return state;
}

function jwtFilter(remote: Json, provider: Json = {}, rules?: Json[]): Json {
  return {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: {
      '@type': JWT_TYPE,
      providers: {
        origins: {
          issuer: ISS,
          audiences: ['bookinfo'],
          remote_jwks: { http_uri: { uri: 'http://jwks.example/.well-known/jwks.json', cluster: 'jwks', timeout: '1s' }, ...remote },
          forward_payload_header: 'x-jwt-payload',
          payload_in_metadata: ISS,
          ...provider,
        },
      },
      rules: rules ?? [{ match: { prefix: '/' }, requires: { provider_name: 'origins' } }],
    },
  };
}

test('remote JWKS: fetched through the cluster once and cached; the upstream gets the payload, not the token; failures are 401 with the reason', async (t) => {
  const key = await newKey('k1');
  const jwks = await startJwksServer([key.jwk]);
  const up = await startUpstream('productpage');
  const dp = await startDataPlane({
    clusters: [staticCluster('productpage', [up.port]), staticCluster('jwks', [jwks.port])],
    httpFilters: [jwtFilter({ cache_duration: '300s' })],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'productpage' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await jwks.close();
  });
  const token = await sign(key);
  for (let i = 0; i < 3; i++) {
    const ok = await get(dp.address, '/productpage', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
  }
  assert.equal(jwks.fetches, 1, 'one fetch, then the cache');
  const seen = up.seen.at(-1)!;
  assert.equal(seen.headers['authorization'], undefined);
  assert.equal(JSON.parse(Buffer.from(seen.headers['x-jwt-payload'] as string, 'base64url').toString()).sub, 'alice');

  const missing = await get(dp.address, '/productpage?x=1', { headers: { host: 'bookinfo.example' } });
  assert.equal(missing.status, 401);
  assert.equal(missing.body, 'Jwt is missing');
  assert.equal(missing.headers['www-authenticate'], 'Bearer realm="http://bookinfo.example/productpage?x=1"');
  const expired = await get(dp.address, '/productpage', { headers: { authorization: `Bearer ${await sign(key, { exp: Math.floor(Date.now() / 1000) - 3600 })}` } });
  assert.equal(expired.status, 401);
  assert.equal(expired.body, 'Jwt is expired');
  assert.match(String(expired.headers['www-authenticate']), /, error="invalid_token"$/);
  const audience = await get(dp.address, '/productpage', { headers: { authorization: `Bearer ${await sign(key, { aud: 'elsewhere' })}` } });
  assert.equal(audience.status, 403);
  assert.equal(audience.body, 'Audiences in Jwt are not allowed');
  // A client cannot forge the payload header: its copy is removed even when the request is refused.
  assert.equal(up.seen.length, 3);

  const log = await accessLogEntries(dp, 6);
  assert.deepEqual(log.slice(3).map((e) => [e['code'], e['details']]), [
    [401, 'jwt_authn_access_denied{Jwt_is_missing}'],
    [401, 'jwt_authn_access_denied{Jwt_is_expired}'],
    [403, 'jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}'],
  ]);
  assert.equal(await dp.stat('http.ingress.jwt_authn.allowed'), 3);
  assert.equal(await dp.stat('http.ingress.jwt_authn.denied'), 3);
  assert.equal(await dp.stat('http.ingress.jwt_authn.jwks_fetch_success'), 1);
  assert.equal(await dp.stat('cluster.jwks.upstream_rq_total'), 1, 'the JWKS request went through the jwks cluster');
});

test('key rotation: a new key is used once cache_duration has passed; the old one is then refused', async (t) => {
  const k1 = await newKey('k1');
  const k2 = await newKey('k2', 'ES256');
  const jwks = await startJwksServer([k1.jwk]);
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('jwks', [jwks.port])],
    httpFilters: [jwtFilter({ cache_duration: '3s' })],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await jwks.close();
  });
  const old = await sign(k1);
  const fresh = await sign(k2);
  assert.equal((await get(dp.address, '/', { headers: { authorization: `Bearer ${old}` } })).status, 200);
  const fetchedAt = performance.now();
  jwks.keys = [k2.jwk];
  // Still the cached set: Envoy does not refetch on an unknown kid.
  const early = await get(dp.address, '/', { headers: { authorization: `Bearer ${fresh}` } });
  assert.equal(early.status, 401);
  assert.equal(early.body, "Jwks doesn't have key to match kid or alg from Jwt");
  await new Promise((r) => setTimeout(r, Math.max(0, 3300 - (performance.now() - fetchedAt))));
  assert.equal((await get(dp.address, '/', { headers: { authorization: `Bearer ${fresh}` } })).status, 200);
  assert.equal((await get(dp.address, '/', { headers: { authorization: `Bearer ${old}` } })).status, 401);
  assert.equal(jwks.fetches, 2);
});

test('JWKS server down, failing or slow: 401 Jwks remote fetch is failed; async_fetch refreshes in the background and recovers', async (t) => {
  const key = await newKey('k1');
  const jwks = await startJwksServer([key.jwk]);
  const deadPort = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('jwks', [jwks.port]), staticCluster('dead', [deadPort])],
    httpFilters: [
      {
        name: 'envoy.filters.http.jwt_authn',
        typed_config: {
          '@type': JWT_TYPE,
          providers: {
            down: { issuer: ISS, remote_jwks: { http_uri: { uri: 'http://dead/jwks', cluster: 'dead', timeout: '1s' } }, from_headers: [{ name: 'x-down' }] },
            live: {
              issuer: ISS,
              remote_jwks: {
                http_uri: { uri: 'http://jwks.example/.well-known/jwks.json', cluster: 'jwks', timeout: '0.3s' },
                cache_duration: '300s',
                async_fetch: { fast_listener: true, failed_refetch_duration: '0.2s' },
              },
              from_headers: [{ name: 'x-live' }],
            },
          },
          rules: [
            { match: { prefix: '/down' }, requires: { provider_name: 'down' } },
            { match: { prefix: '/live' }, requires: { provider_name: 'live' } },
          ],
        },
      },
    ],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await jwks.close();
  });
  const token = await sign(key);
  const down = await get(dp.address, '/down', { headers: { 'x-down': token } });
  assert.equal(down.status, 401);
  assert.equal(down.body, 'Jwks remote fetch is failed');
  assert.equal(down.headers['www-authenticate'], `Bearer realm="http://${dp.address}/down", error="invalid_token"`);
  assert.ok((await dp.stat('http.ingress.jwt_authn.jwks_fetch_failed')) >= 1);

  // async_fetch: the keys were fetched at start, before any request needed them.
  for (let i = 0; i < 100 && jwks.fetches === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(jwks.fetches, 1);
  assert.equal((await get(dp.address, '/live', { headers: { 'x-live': token } })).status, 200);
  assert.equal(jwks.fetches, 1, 'served from the background-fetched set');
  assert.equal(up.seen.length, 1);
  assert.equal(up.seen[0]!.path, '/live');
});

test('a failing (500) or slow JWKS server is a fetch failure; the filter recovers once it answers', async (t) => {
  const key = await newKey('k1');
  const jwks = await startJwksServer([key.jwk]);
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('jwks', [jwks.port])],
    httpFilters: [jwtFilter({ http_uri: { uri: 'http://jwks.example/.well-known/jwks.json', cluster: 'jwks', timeout: '0.3s' }, cache_duration: '300s' })],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await jwks.close();
  });
  const token = await sign(key);
  jwks.status = 500;
  const failing = await get(dp.address, '/', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(failing.status, 401);
  assert.equal(failing.body, 'Jwks remote fetch is failed');
  jwks.status = 200;
  jwks.delayMs = 1000;
  const slow = await get(dp.address, '/', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(slow.status, 401);
  assert.equal(slow.body, 'Jwks remote fetch is failed');
  jwks.delayMs = 0;
  assert.equal((await get(dp.address, '/', { headers: { authorization: `Bearer ${token}` } })).status, 200);
  assert.equal(await dp.stat('http.ingress.jwt_authn.jwks_fetch_failed'), 2);
  assert.equal(await dp.stat('http.ingress.jwt_authn.jwks_fetch_success'), 1);
});

test('a JWT rule on /admin cannot be skipped with path confusion (normalize_path + merge_slashes), gRPC gets UNAUTHENTICATED, and per-route config turns it off', async (t) => {
  const key = await newKey('k1');
  const jwks = await startJwksServer([key.jwk]);
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('jwks', [jwks.port])],
    hcm: { normalize_path: true, merge_slashes: true },
    httpFilters: [jwtFilter({}, {}, [{ match: { prefix: '/admin' }, requires: { provider_name: 'origins' } }])],
    virtualHosts: [
      vhost([
        {
          match: { prefix: '/health' },
          route: { cluster: 'svc' },
          typed_per_filter_config: {
            'envoy.filters.http.jwt_authn': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig', disabled: true },
          },
        },
        { match: { prefix: '/' }, route: { cluster: 'svc' } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await jwks.close();
  });
  for (const attempt of ['/admin', '/public/../admin', '/a/%2e%2e/admin', '//admin', '/./admin/users']) {
    const r = await get(dp.address, attempt);
    assert.equal(r.status, 401, attempt);
    assert.equal(r.body, 'Jwt is missing');
  }
  // gRPC callers get Envoy's trailers-only UNAUTHENTICATED.
  const grpc = await h2get(dp.address, '/admin.Users/List', { method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: '' });
  assert.equal(grpc.status, 200);
  assert.equal(grpc.headers['grpc-status'], '16');
  assert.equal(grpc.headers['grpc-message'], 'Jwt is missing');
  assert.equal(up.seen.length, 0);
  assert.equal((await get(dp.address, '/admin', { headers: { authorization: `Bearer ${await sign(key)}` } })).status, 200);
  assert.equal((await get(dp.address, '/public')).status, 200);
  assert.equal((await get(dp.address, '/health')).status, 200);
});

test('remote_jwks.retry_policy: a JWKS server failing once is retried within the same request', async (t) => {
  const key = await newKey('k1');
  const jwks = await startJwksServer([key.jwk]);
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('jwks', [jwks.port])],
    httpFilters: [jwtFilter({ retry_policy: { num_retries: 2, retry_back_off: { base_interval: '0.01s', max_interval: '0.05s' } } })],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await jwks.close();
  });
  jwks.status = 503;
  jwks.server.prependListener('request', () => {
    if (jwks.fetches >= 1) jwks.status = 200;
  });
  assert.equal((await get(dp.address, '/', { headers: { authorization: `Bearer ${await sign(key)}` } })).status, 200);
  assert.equal(jwks.fetches, 2);
  assert.equal(await dp.stat('http.ingress.jwt_authn.jwks_fetch_failed'), 1);
  assert.equal(await dp.stat('http.ingress.jwt_authn.jwks_fetch_success'), 1);
});

test('requests waiting for the JWKS share one fetch and keep their bodies (HTTP/1.1 and HTTP/2)', async (t) => {
  const key = await newKey('k1');
  const jwks = await startJwksServer([key.jwk]);
  jwks.delayMs = 200;
  const up = await startUpstream('svc', (_req, res, body) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`got ${body.length} bytes`);
  });
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('jwks', [jwks.port])],
    httpFilters: [jwtFilter({})],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await jwks.close();
  });
  const headers = { authorization: `Bearer ${await sign(key)}`, 'content-type': 'application/octet-stream' };
  const body = Buffer.alloc(256 * 1024, 7);
  const replies = await Promise.all([
    ...Array.from({ length: 4 }, () => get(dp.address, '/upload', { method: 'POST', headers, body })),
    h2get(dp.address, '/upload', { method: 'POST', headers, body }),
  ]);
  for (const r of replies) {
    assert.equal(r.status, 200);
    assert.equal(r.body, `got ${body.length} bytes`);
  }
  assert.equal(jwks.fetches, 1, 'one fetch for five waiting requests');
});
