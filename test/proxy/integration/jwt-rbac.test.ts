// jwt_authn feeding RBAC through the real data plane, as Istio wires RequestAuthentication + AuthorizationPolicy:
// RBAC principals match the `istio_authn` metadata the JWT filter writes (request.auth.principal, claims), and with
// Istio's default path normalization an ALLOW policy fails closed on /ADMIN, /admin;x and /public/../admin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { get, startDataPlane, startUpstream, staticCluster, vhost } from './support.js';

const ISS = 'https://issuer.example';

test('RBAC on request.auth.principal and request.auth.claims from a verified JWT; path variants fail closed', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' };
  const sign = (sub: string, groups: string[]): Promise<string> =>
    new SignJWT({ iss: ISS, sub, groups, exp: Math.floor(Date.now() / 1000) + 600 }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).sign(privateKey);
  const up = await startUpstream('svc');
  const principalIs = (value: string) => ({ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: value } } } });
  const inGroup = (group: string) => ({
    metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: group } } } } },
  });
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port])],
    hcm: { normalize_path: true, merge_slashes: true },
    httpFilters: [
      {
        name: 'envoy.filters.http.jwt_authn',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
          providers: { 'origins-0': { issuer: ISS, local_jwks: { inline_string: JSON.stringify({ keys: [jwk] }) }, payload_in_metadata: ISS } },
          // RequestAuthentication's shape: no token is fine (RBAC decides), a bad token is 401.
          rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } }],
        },
      },
      {
        name: 'envoy.filters.http.rbac',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
          rules: {
            action: 'ALLOW',
            policies: {
              public: { permissions: [{ url_path: { path: { prefix: '/public' } } }], principals: [{ any: true }] },
              admin: { permissions: [{ url_path: { path: { exact: '/admin' } } }], principals: [principalIs(`${ISS}/alice`)] },
              reports: { permissions: [{ url_path: { path: { prefix: '/reports/' } } }], principals: [inGroup('auditors')] },
            },
          },
        },
      },
    ],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  const alice = { authorization: `Bearer ${await sign('alice', ['staff'])}` };
  const bob = { authorization: `Bearer ${await sign('bob', ['auditors'])}` };
  assert.equal((await get(dp.address, '/public/x')).status, 200);
  const anonymous = await get(dp.address, '/admin');
  assert.equal(anonymous.status, 403);
  assert.equal(anonymous.body, 'RBAC: access denied');
  assert.equal((await get(dp.address, '/admin', { headers: alice })).status, 200);
  assert.equal((await get(dp.address, '/admin', { headers: bob })).status, 403);
  assert.equal((await get(dp.address, '/reports/q1', { headers: bob })).status, 200);
  assert.equal((await get(dp.address, '/reports/q1', { headers: alice })).status, 403);
  // A bad token is refused by the JWT filter before RBAC runs.
  const forged = await get(dp.address, '/admin', { headers: { authorization: `${alice.authorization.slice(0, -4)}AAAA` } });
  assert.equal(forged.status, 401);
  assert.equal(forged.body, 'Jwt verification fails');
  // Normalized before RBAC: /public/../admin is /admin, so anonymous callers are denied.
  assert.equal((await get(dp.address, '/public/../admin')).status, 403);
  assert.equal((await get(dp.address, '/public/%2e%2e/admin')).status, 403);
  // Other spellings are other paths: the exact /admin rule does not grant them, and ALLOW fails closed.
  assert.equal((await get(dp.address, '/ADMIN', { headers: alice })).status, 403);
  assert.equal((await get(dp.address, '/admin;x', { headers: alice })).status, 403);
  assert.deepEqual(
    up.seen.map((s) => s.path),
    ['/public/x', '/admin', '/reports/q1'],
  );
});
