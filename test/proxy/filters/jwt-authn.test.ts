// envoy.filters.http.jwt_authn as a filter: keys generated with jose, tokens signed in the test, the filter driven
// through its HttpFilterContext. Every bad token of the security issue, token locations, forward/payload/claim
// headers, requirement combinations, per-route config, CORS bypass, metadata, and config NACKs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type KeyLike } from 'jose';
import type { HttpFilter, HttpFilterContext, LocalReplyOptions } from '../../../src/proxy/http/filter.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import type { StreamInfo } from '../../../src/proxy/http/stream-info.js';
import { XdsValidationError } from '../../../src/common/errors.js';
import { jwtAuthnFilterFactory, ISTIO_AUTHN_FILTER_STATE, JWT_AUTHN_FILTER_NAME } from '../../../src/proxy/filters/jwt-authn/filter.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type Config = envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
type Provider = envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;

const ISS = 'https://issuer.example';
const ISS2 = 'https://other.example';

interface Keys {
  readonly rs: { priv: KeyLike; jwk: JWK };
  readonly es: { priv: KeyLike; jwk: JWK };
  readonly ps: { priv: KeyLike; jwk: JWK };
  readonly ed: { priv: KeyLike; jwk: JWK };
  /** Not in any JWKS. */
  readonly stranger: { priv: KeyLike; jwk: JWK };
}

async function keyPair(alg: string, kid: string): Promise<{ priv: KeyLike; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  return { priv: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
}

let keysPromise: Promise<Keys> | undefined;
function keys(): Promise<Keys> {
  keysPromise ??= (async () => ({
    rs: await keyPair('RS256', 'rs'),
    es: await keyPair('ES256', 'es'),
    ps: await keyPair('PS256', 'ps'),
    ed: await keyPair('EdDSA', 'ed'),
    stranger: await keyPair('RS256', 'stranger'),
  }))();
  return keysPromise;
}

const now = (): number => Math.floor(Date.now() / 1000);

async function sign(key: { priv: KeyLike; jwk: JWK }, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ iss: ISS, sub: 'alice', aud: 'api', exp: now() + 600, iat: now(), ...claims })
    .setProtectedHeader({ alg: key.jwk.alg!, kid: key.jwk.kid!, ...header })
    .sign(key.priv);
}

function b64(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

async function jwksOf(...names: (keyof Keys)[]): Promise<string> {
  const k = await keys();
  return JSON.stringify({ keys: names.map((n) => k[n].jwk) });
}

async function provider(extra: Provider = {}): Promise<Provider> {
  return { issuer: ISS, audiences: ['api'], local_jwks: { inline_string: await jwksOf('rs', 'es', 'ps', 'ed') }, ...extra };
}

type Outcome =
  | { kind: 'continue'; headers: HttpHeaders; state: Map<string, unknown>; routeCacheCleared: boolean }
  | { kind: 'reply'; status: number; body: string; options: LocalReplyOptions | undefined; headers: HttpHeaders };

const clusters = { get: () => undefined };

function makeFilter(config: Config): HttpFilter {
  return jwtAuthnFilterFactory({ clusters }).create(config, { statPrefix: 'test', stats: {} });
}

/** Runs one request through the filter and resolves when it continued or replied. */
function run(filter: HttpFilter, headers: HttpHeaders, routeConfig?: unknown): Promise<Outcome> {
  const h: HttpHeaders = { ':method': 'GET', ':path': '/', ':authority': 'svc.example', ':scheme': 'http', ...headers };
  const state = new Map<string, unknown>();
  let routeCacheCleared = false;
  return new Promise((resolve) => {
    const ctx: HttpFilterContext = {
      requestHeaders: h,
      info: { filterState: state } as unknown as StreamInfo,
      routeConfig: <T>() => routeConfig as T,
      clearRouteCache: () => (routeCacheCleared = true),
      route: () => undefined,
      sendLocalReply: (status, body, options) => resolve({ kind: 'reply', status, body, options, headers: h }),
      continueDecoding: () => resolve({ kind: 'continue', headers: h, state, routeCacheCleared }),
      aborted: false,
    };
    const status = filter.onRequestHeaders!(ctx);
    if (status === 'continue') resolve({ kind: 'continue', headers: h, state, routeCacheCleared });
  });
}

function expectReply(o: Outcome, status: number, body: string): Extract<Outcome, { kind: 'reply' }> {
  assert.equal(o.kind, 'reply', `expected ${status} ${body}, got continue`);
  const r = o as Extract<Outcome, { kind: 'reply' }>;
  assert.equal(r.status, status);
  assert.equal(r.body, body);
  return r;
}

function expectContinue(o: Outcome): Extract<Outcome, { kind: 'continue' }> {
  assert.equal(o.kind, 'continue', o.kind === 'reply' ? `unexpected ${o.status} ${o.body}` : '');
  return o as Extract<Outcome, { kind: 'continue' }>;
}

const bearer = (t: string): HttpHeaders => ({ authorization: `Bearer ${t}` });

test('valid RS256, ES256, PS256 and EdDSA tokens pass; the token is stripped (forward: false); metadata is written', async () => {
  const k = await keys();
  const filter = makeFilter({ providers: { p: await provider({ payload_in_metadata: 'my_payload' }) }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] });
  for (const key of [k.rs, k.es, k.ps, k.ed]) {
    const token = await sign(key, { azp: 'web-app', groups: ['a', 'b'], role: 'admin', scope: 'read write', level: 3, org: { team: 'x', ids: [1, 'q'] } });
    const o = expectContinue(await run(filter, bearer(token)));
    assert.equal(o.headers['authorization'], undefined, 'the token is removed before the upstream');
    const meta = o.state.get(JWT_AUTHN_FILTER_NAME) as Record<string, Record<string, unknown>>;
    assert.equal(meta['my_payload']!['sub'], 'alice');
    const authn = o.state.get(ISTIO_AUTHN_FILTER_STATE) as Record<string, unknown>;
    assert.equal(authn['request.auth.principal'], `${ISS}/alice`);
    // Istio's authn shape: the first audience as a string, claims as lists of strings (nested objects kept).
    assert.equal(authn['request.auth.audiences'], 'api');
    assert.equal(authn['request.auth.presenter'], 'web-app');
    const claims = authn['request.auth.claims'] as Record<string, unknown>;
    assert.deepEqual(claims['groups'], ['a', 'b']);
    assert.deepEqual(claims['role'], ['admin']);
    assert.deepEqual(claims['scope'], ['read write', 'read', 'write']);
    assert.equal(claims['level'], undefined, 'a number claim is not a string list');
    assert.deepEqual(claims['org'], { team: ['x'], ids: ['q'] });
    assert.equal(JSON.parse(authn['request.auth.raw_claims'] as string).iss, ISS);
  }
  filter.close?.();
});

test('bad tokens are refused with Envoy status, body and www-authenticate', async () => {
  const k = await keys();
  const filter = makeFilter({ providers: { p: await provider() }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] });
  const good = await sign(k.rs);
  const [h, p] = good.split('.') as [string, string, string];
  const cases: [string, HttpHeaders, number, string][] = [
    ['missing', {}, 401, 'Jwt is missing'],
    ['alg none, empty signature', bearer(`${b64({ alg: 'none' })}.${p}.`), 401, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
    ['alg none with a signature', bearer(`${b64({ alg: 'none' })}.${p}.c2ln`), 401, 'Jwt header [alg] is not supported'],
    ['no alg', bearer(`${b64({ kid: 'rs' })}.${p}.c2ln`), 401, 'Jwt header [alg] field is required and must be a string'],
    ['wrong key, known kid', bearer(await sign({ priv: k.stranger.priv, jwk: { ...k.stranger.jwk, kid: 'rs' } })), 401, 'Jwt verification fails'],
    ['wrong key, unknown kid', bearer(await sign(k.stranger)), 401, "Jwks doesn't have key to match kid or alg from Jwt"],
    ['tampered payload', bearer(`${h}.${b64({ iss: ISS, sub: 'root', aud: 'api', exp: now() + 600 })}.${good.split('.')[2]}`), 401, 'Jwt verification fails'],
    ['expired beyond the 60 s skew', bearer(await sign(k.rs, { exp: now() - 120 })), 401, 'Jwt is expired'],
    ['not yet valid', bearer(await sign(k.rs, { nbf: now() + 600 })), 401, 'Jwt not yet valid'],
    ['bad audience', bearer(await sign(k.rs, { aud: 'someone-else' })), 403, 'Audiences in Jwt are not allowed'],
    ['unknown issuer', bearer(await sign(k.rs, { iss: 'https://evil.example' })), 401, 'Jwt issuer is not configured'],
    ['garbage', bearer('not-a-jwt'), 401, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
    ['bad header base64', bearer(`ab*c.${p}.c2ln`), 401, 'Jwt header is an invalid Base64url encoded'],
    ['header not JSON', bearer(`${Buffer.from('nope').toString('base64url')}.${p}.c2ln`), 401, 'Jwt header is an invalid JSON'],
    ['exp not a number', bearer(`${h}.${b64({ iss: ISS, exp: 'soon' })}.c2ln`), 401, 'Jwt payload [exp] field is not an integer'],
  ];
  for (const [name, headers, status, body] of cases) {
    const r = expectReply(await run(filter, { ...headers, ':path': '/a?b=1' }), status, body);
    assert.equal(r.options?.details, `jwt_authn_access_denied{${body.replace(/ /g, '_')}}`, name);
    const challenge = r.options?.headers?.['www-authenticate'];
    assert.equal(challenge, `Bearer realm="http://svc.example/a?b=1"${name === 'missing' ? '' : ', error="invalid_token"'}`, name);
  }
  // Within the clock skew an expired token still passes (Envoy: clock_skew_seconds default 60).
  expectContinue(await run(filter, bearer(await sign(k.rs, { exp: now() - 30 }))));
  filter.close?.();
});

test('clock_skew_seconds, require_expiration, max_lifetime and subjects', async () => {
  const k = await keys();
  const filter = makeFilter({
    providers: {
      strict: await provider({ clock_skew_seconds: 1, require_expiration: true, from_headers: [{ name: 'x-strict' }] }),
      short: await provider({ max_lifetime: { seconds: 300 }, subjects: { prefix: 'spiffe://' }, from_headers: [{ name: 'x-short' }] }),
    },
    rules: [
      { match: { prefix: '/strict' }, requires: { provider_name: 'strict' } },
      { match: { prefix: '/short' }, requires: { provider_name: 'short' } },
    ],
  });
  expectReply(await run(filter, { ':path': '/strict', 'x-strict': await sign(k.rs, { exp: now() - 30 }) }), 401, 'Jwt is expired');
  const noExp = await new SignJWT({ iss: ISS, sub: 'a', aud: 'api' }).setProtectedHeader({ alg: 'RS256', kid: 'rs' }).sign(k.rs.priv);
  expectReply(await run(filter, { ':path': '/strict', 'x-strict': noExp }), 401, 'Jwt is expired');
  expectContinue(await run(filter, { ':path': '/strict', 'x-strict': await sign(k.rs) }));
  expectReply(await run(filter, { ':path': '/short', 'x-short': await sign(k.rs, { sub: 'spiffe://a', exp: now() + 3600 }) }), 401, 'Jwt is expired');
  expectReply(await run(filter, { ':path': '/short', 'x-short': await sign(k.rs, { sub: 'alice', exp: now() + 60 }) }), 401, 'Jwt verification fails');
  expectContinue(await run(filter, { ':path': '/short', 'x-short': await sign(k.rs, { sub: 'spiffe://a', exp: now() + 60 }) }));
  filter.close?.();
});

test('token locations: header with prefix, query parameter, cookie; defaults are Authorization Bearer and access_token', async () => {
  const k = await keys();
  const token = await sign(k.rs);
  const filter = makeFilter({
    providers: {
      def: await provider(),
      custom: await provider({ issuer: ISS2, from_headers: [{ name: 'x-jwt', value_prefix: 'Token ' }], from_params: ['jwt'], from_cookies: ['session'] }),
    },
    rules: [
      { match: { prefix: '/default' }, requires: { provider_name: 'def' } },
      { match: { prefix: '/custom' }, requires: { provider_name: 'custom' } },
    ],
  });
  const t2 = await sign(k.rs, { iss: ISS2 });
  const q = expectContinue(await run(filter, { ':path': `/default?x=1&access_token=${token}&y=2` }));
  assert.equal(q.headers[':path'], '/default?x=1&y=2', 'the access_token parameter is removed');
  expectContinue(await run(filter, { ':path': '/custom', 'x-jwt': `Token ${t2}` }));
  expectReply(await run(filter, { ':path': '/custom', 'x-jwt': `Bearer ${t2}` }), 401, 'Jwt is missing');
  const p = expectContinue(await run(filter, { ':path': `/custom?jwt=${t2}` }));
  assert.equal(p.headers[':path'], '/custom');
  const c = expectContinue(await run(filter, { ':path': '/custom', cookie: `a=b; session="${t2}"` }));
  assert.equal(c.headers['cookie'], `a=b; session="${t2}"`, 'cookies are left as they are (as in Envoy)');
  // Authorization is not a location of the custom provider.
  expectReply(await run(filter, { ':path': '/custom', ...bearer(t2) }), 401, 'Jwt is missing');
  // A token with another issuer found in this provider's location is refused as an unknown issuer.
  expectReply(await run(filter, { ':path': '/custom', 'x-jwt': `Token ${token}` }), 401, 'Jwt issuer is not configured');
  // Every token found must verify: a good one does not carry a bad one through.
  expectReply(await run(filter, { ':path': '/custom', 'x-jwt': `Token ${t2}`, cookie: 'session=garbage' }), 401, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections');
  filter.close?.();
});

test('forward, forward_payload_header (spoofed copies removed), claim_to_headers, header_in_metadata, clear_route_cache', async () => {
  const k = await keys();
  const filter = makeFilter({
    providers: {
      p: await provider({
        forward: true,
        forward_payload_header: 'x-jwt-payload',
        claim_to_headers: [
          { header_name: 'x-sub', claim_name: 'sub' },
          { header_name: 'x-tier', claim_name: 'plan.tier' },
          { header_name: 'x-n', claim_name: 'n' },
          { header_name: 'x-admin', claim_name: 'admin' },
          { header_name: 'x-list', claim_name: 'groups' },
        ],
        header_in_metadata: 'hdr',
        clear_route_cache: true,
      }),
    },
    rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }],
  });
  const token = await sign(k.rs, { plan: { tier: 'gold' }, n: 42, admin: false, groups: ['x'] });
  const o = expectContinue(await run(filter, { ...bearer(token), 'x-jwt-payload': 'forged', 'x-sub': 'root' }));
  assert.equal(o.headers['authorization'], `Bearer ${token}`, 'forward: true keeps the token');
  assert.equal(o.headers['x-jwt-payload'], token.split('.')[1]);
  assert.equal(JSON.parse(Buffer.from(o.headers['x-jwt-payload'] as string, 'base64url').toString()).sub, 'alice');
  assert.equal(o.headers['x-sub'], 'alice', 'the client-sent copy was removed first');
  assert.equal(o.headers['x-tier'], 'gold');
  assert.equal(o.headers['x-n'], '42');
  assert.equal(o.headers['x-admin'], 'false');
  assert.equal(o.headers['x-list'], undefined, 'lists are not copied');
  assert.equal((o.state.get(JWT_AUTHN_FILTER_NAME) as Record<string, Record<string, unknown>>)['hdr']!['kid'], 'rs');
  assert.equal(o.routeCacheCleared, true);
  // A refused request has its forged copies removed too (sanitized before extraction, as Envoy does).
  const refused = expectReply(await run(filter, { 'x-jwt-payload': 'forged', 'x-sub': 'root' }), 401, 'Jwt is missing');
  assert.equal(refused.headers['x-jwt-payload'], undefined);
  assert.equal(refused.headers['x-sub'], undefined);
  filter.close?.();
});

test('requirements: provider_and_audiences, requires_any, requires_all, allow_missing, allow_missing_or_failed, no requirement', async () => {
  const k = await keys();
  const a = await sign(k.rs);
  const b = await sign(k.es, { iss: ISS2, aud: 'other' });
  const filter = makeFilter({
    providers: {
      pa: await provider({ from_headers: [{ name: 'x-a' }] }),
      pb: await provider({ issuer: ISS2, audiences: [], from_headers: [{ name: 'x-b' }] }),
    },
    rules: [
      { match: { prefix: '/aud' }, requires: { provider_and_audiences: { provider_name: 'pa', audiences: ['https://api/'] } } },
      { match: { prefix: '/any' }, requires: { requires_any: { requirements: [{ provider_name: 'pa' }, { provider_name: 'pb' }] } } },
      { match: { prefix: '/all' }, requires: { requires_all: { requirements: [{ provider_name: 'pa' }, { provider_name: 'pb' }] } } },
      { match: { prefix: '/optional' }, requires: { requires_any: { requirements: [{ provider_name: 'pa' }, { allow_missing: {} }] } } },
      { match: { prefix: '/missing' }, requires: { allow_missing: {} } },
      { match: { prefix: '/failed' }, requires: { allow_missing_or_failed: {} } },
      { match: { prefix: '/open' } },
      { match: { prefix: '/hdr', headers: [{ name: 'x-need-jwt', present_match: true }] }, requires: { provider_name: 'pa' } },
    ],
  });
  // provider_and_audiences replaces the provider's audiences; http(s):// and a trailing / do not count.
  expectContinue(await run(filter, { ':path': '/aud', 'x-a': await sign(k.rs, { aud: 'api' }) }));
  expectReply(await run(filter, { ':path': '/aud', 'x-a': await sign(k.rs, { aud: 'api2' }) }), 403, 'Audiences in Jwt are not allowed');
  expectContinue(await run(filter, { ':path': '/any', 'x-b': b }));
  expectContinue(await run(filter, { ':path': '/any', 'x-a': a }));
  expectReply(await run(filter, { ':path': '/any' }), 401, 'Jwt is missing');
  // requires_any reports a real failure in preference to "missing".
  expectReply(await run(filter, { ':path': '/any', 'x-b': await sign(k.stranger, { iss: ISS2 }) }), 401, "Jwks doesn't have key to match kid or alg from Jwt");
  expectContinue(await run(filter, { ':path': '/all', 'x-a': a, 'x-b': b }));
  expectReply(await run(filter, { ':path': '/all', 'x-a': a }), 401, 'Jwt is missing');
  // Istio's RequestAuthentication shape: no token is fine, a bad token is not.
  expectContinue(await run(filter, { ':path': '/optional' }));
  expectContinue(await run(filter, { ':path': '/optional', 'x-a': a }));
  expectReply(await run(filter, { ':path': '/optional', 'x-a': await sign(k.rs, { exp: now() - 3600 }) }), 401, 'Jwt is expired');
  const m = expectContinue(await run(filter, { ':path': '/missing' }));
  assert.equal(m.state.get(ISTIO_AUTHN_FILTER_STATE), undefined);
  // allow_missing looks in every provider's locations and picks the provider by issuer.
  const mb = expectContinue(await run(filter, { ':path': '/missing', 'x-b': b }));
  assert.equal((mb.state.get(ISTIO_AUTHN_FILTER_STATE) as Record<string, unknown>)['request.auth.principal'], `${ISS2}/alice`);
  expectReply(await run(filter, { ':path': '/missing', 'x-a': 'garbage' }), 401, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections');
  const f = expectContinue(await run(filter, { ':path': '/failed', 'x-a': 'garbage' }));
  assert.equal(f.headers['x-a'], 'garbage', 'a failed token is not removed');
  assert.equal(f.state.get(ISTIO_AUTHN_FILTER_STATE), undefined, 'no identity from a failed token');
  expectContinue(await run(filter, { ':path': '/open' }));
  expectContinue(await run(filter, { ':path': '/hdr' }));
  expectReply(await run(filter, { ':path': '/hdr', 'x-need-jwt': '1' }), 401, 'Jwt is missing');
  expectContinue(await run(filter, { ':path': '/unmatched' }));
  filter.close?.();
});

test('per-route config: requirement_name, disabled, an unknown name is 403; bypass_cors_preflight; strip_failure_response', async () => {
  const k = await keys();
  const factory = jwtAuthnFilterFactory({ clusters });
  const filter = factory.create(
    { providers: { p: await provider() }, requirement_map: { need: { provider_name: 'p' }, other: { allow_missing: {} } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }], bypass_cors_preflight: true },
    { statPrefix: 't', stats: {} },
  );
  const need = factory.createRouteConfig!({ requirement_name: 'need' });
  const off = factory.createRouteConfig!({ disabled: true });
  const wrong = factory.createRouteConfig!({ requirement_name: 'nope' });
  expectReply(await run(filter, {}, need), 401, 'Jwt is missing');
  expectContinue(await run(filter, bearer(await sign(k.rs)), need));
  expectContinue(await run(filter, {}, off));
  const r = expectReply(await run(filter, {}, wrong), 403, 'Failed JWT authentication: Wrong requirement_name: nope. It should be one of [need,other]');
  assert.equal(r.options?.details, 'jwt_authn_access_denied{Wrong_requirement_name:_nope._It_should_be_one_of_[need,other]}');
  expectContinue(await run(filter, { ':method': 'OPTIONS', origin: 'https://app', 'access-control-request-method': 'GET' }));
  expectReply(await run(filter, { ':method': 'OPTIONS', origin: 'https://app' }), 401, 'Jwt is missing');
  assert.throws(() => factory.createRouteConfig!({}), XdsValidationError);
  filter.close?.();
  // An empty key set (the control plane's placeholder) is accepted and refuses every token.
  const empty = makeFilter({ providers: { p: { issuer: ISS, local_jwks: { inline_string: '{"keys":[]}' } } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] });
  expectReply(await run(empty, bearer(await sign(k.rs))), 401, "Jwks doesn't have any valid public key");
  empty.close?.();
  const stripped = makeFilter({ providers: { p: await provider() }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }], strip_failure_response: true });
  const s = expectReply(await run(stripped, {}), 401, '');
  assert.equal(s.options?.headers, undefined);
  assert.equal(s.options?.details, 'jwt_authn_access_denied{Jwt_is_missing}');
  stripped.close?.();
});

test('stats: allowed, denied, cors_preflight_bypassed', async () => {
  const k = await keys();
  const stats: Record<string, number> = {};
  const filter = jwtAuthnFilterFactory({ clusters }).create(
    { providers: { p: await provider() }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }], bypass_cors_preflight: true },
    { statPrefix: 't', stats },
  );
  await run(filter, bearer(await sign(k.rs)));
  await run(filter, {});
  await run(filter, { ':method': 'OPTIONS', origin: 'o', 'access-control-request-method': 'GET' });
  assert.equal(stats['jwt_authn.allowed'], 2);
  assert.equal(stats['jwt_authn.denied'], 1);
  assert.equal(stats['jwt_authn.cors_preflight_bypassed'], 1);
  filter.close?.();
});

test('bad config is refused with field paths', async () => {
  const inline = await jwksOf('rs');
  const cases: [Config, RegExp][] = [
    [{ providers: { p: { issuer: ISS } } }, /providers\[p\]: one of remote_jwks or local_jwks is required/],
    [{ providers: { p: { local_jwks: { inline_string: 'not json' } } } }, /providers\[p\]\.local_jwks: Jwks is an invalid JSON/],
    [{ providers: { p: { local_jwks: { inline_string: '{}' } } } }, /Jwks does not have \[keys\] field/],
    [{ providers: { p: { local_jwks: { inline_string: inline } } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'q' } }] }, /rules\[0\]\.requires\.provider_name: Required provider \['q'\] is not configured\./],
    [{ providers: { p: { local_jwks: { inline_string: inline } } }, rules: [{ match: { prefix: '/' }, requirement_name: 'x' }] }, /Wrong requirement_name: x\. It should be one of \[\]/],
    [{ providers: { p: { remote_jwks: { http_uri: { uri: 'not a uri', cluster: 'c' } } } } }, /Provider 'p' has an invalid URI: 'not a uri'/],
    [{ providers: { p: { remote_jwks: { http_uri: { uri: 'http://a/jwks' } } } } }, /remote_jwks\.http_uri\.cluster: required/],
    [{ providers: { p: { local_jwks: { inline_string: inline }, failed_status_in_metadata: 'x' } } }, /providers\[p\]\.failed_status_in_metadata: not supported by Trellis/],
    [{ filter_state_rules: { name: 'x' } }, /filter_state_rules: not supported by Trellis/],
    [{ providers: { p: { local_jwks: { inline_string: inline }, forward_payload_header: 'bad header' } } }, /forward_payload_header: not a valid header name/],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => makeFilter(config), (err: unknown) => err instanceof XdsValidationError && message.test(err.message), message.source);
  }
});

test('pad_forward_payload_header pads the base64url payload; the realm uses x-envoy-original-path and is cut at 256 characters', async () => {
  const k = await keys();
  const filter = makeFilter({
    providers: { p: await provider({ forward_payload_header: 'x-payload', pad_forward_payload_header: true }) },
    rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }],
  });
  // Payload lengths vary with the claims: try until one needs padding.
  let padded = false;
  for (let i = 0; i < 4 && !padded; i++) {
    const token = await sign(k.rs, { n: 'x'.repeat(i) });
    const o = expectContinue(await run(filter, bearer(token)));
    const value = o.headers['x-payload'] as string;
    assert.equal(value.length % 4, 0);
    assert.equal(value.replace(/=+$/, ''), token.split('.')[1]);
    padded = value.endsWith('=');
  }
  assert.ok(padded, 'one of the payloads needed padding');
  const rewritten = expectReply(await run(filter, { ':path': '/new', 'x-envoy-original-path': '/old?q=1' }), 401, 'Jwt is missing');
  assert.equal(rewritten.options?.headers?.['www-authenticate'], 'Bearer realm="http://svc.example/old?q=1"');
  const long = expectReply(await run(filter, { ':path': `/${'a'.repeat(300)}` }), 401, 'Jwt is missing');
  assert.equal(long.options?.headers?.['www-authenticate'], `Bearer realm="http://svc.example/${'a'.repeat(255)}"`);
  filter.close?.();
});

test('HS256 with an oct key in the JWKS; an HS256 token cannot use an RSA public key as its secret', async () => {
  const k = await keys();
  const secret = Buffer.from('a-shared-secret-of-at-least-32-bytes!!');
  const filter = makeFilter({
    providers: {
      p: {
        issuer: ISS,
        local_jwks: { inline_string: JSON.stringify({ keys: [{ kty: 'oct', kid: 'hs', alg: 'HS256', k: secret.toString('base64url') }, k.rs.jwk] }) },
      },
    },
    rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }],
  });
  const claims = { iss: ISS, sub: 'svc', exp: now() + 60 };
  expectContinue(await run(filter, bearer(await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'hs' }).sign(secret))));
  expectReply(await run(filter, bearer(await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'hs' }).sign(Buffer.from('another-secret-of-at-least-32-bytes!!!')))), 401, 'Jwt verification fails');
  // The classic confusion attack: HMAC "signed" with the RSA public key's bytes, claiming the RSA key's kid.
  const rsaPublicBytes = Buffer.from(JSON.stringify(k.rs.jwk));
  expectReply(await run(filter, bearer(await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'rs' }).sign(rsaPublicBytes))), 401, "Jwks doesn't have key to match kid or alg from Jwt");
  filter.close?.();
});

test('denials are logged with the reason and where the token was, never the token itself', async () => {
  const k = await keys();
  const lines: string[] = [];
  const filter = jwtAuthnFilterFactory({ clusters, log: { log: (_name, level, message) => void lines.push(`${level} ${message}`) } }).create(
    { providers: { p: await provider() }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] },
    { statPrefix: 't', stats: {} },
  );
  const expired = await sign(k.rs, { exp: now() - 3600 });
  expectReply(await run(filter, { ':path': `/orders?access_token=${expired}` }), 401, 'Jwt is expired');
  expectReply(await run(filter, bearer(await sign(k.stranger))), 401, "Jwks doesn't have key to match kid or alg from Jwt");
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^debug jwt_authn: GET http:\/\/svc\.example\/orders denied 401: Jwt is expired \(p: token in query access_token: JwtExpired\)$/);
  assert.match(lines[1]!, /token in header authorization: JwksKidAlgMismatch/);
  for (const line of lines) assert.ok(!line.includes(expired.split('.')[2]!) && !line.includes('eyJ'), `no token in: ${line}`);
  filter.close?.();
});

test('a remote JWKS whose cluster does not exist fails the request (401) and logs why at warning', async () => {
  const k = await keys();
  const lines: string[] = [];
  const filter = jwtAuthnFilterFactory({ clusters, log: { log: (_name, level, message) => void lines.push(`${level} ${message}`) } }).create(
    {
      providers: { p: { issuer: ISS, remote_jwks: { http_uri: { uri: 'http://jwks.example/keys', cluster: 'no-such-cluster', timeout: { seconds: 1 } } } } },
      rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }],
    },
    { statPrefix: 't', stats: {} },
  );
  expectReply(await run(filter, bearer(await sign(k.rs))), 401, 'Jwks remote fetch is failed');
  assert.ok(lines.some((l) => l === 'warning jwt_authn: JWKS fetch failed: cluster no-such-cluster is not configured'), lines.join('\n'));
  filter.close?.();
});

test('jwt_cache_config: a token seen again skips the signature check but not the audience, time and issuer checks', async () => {
  const k = await keys();
  const stats: Record<string, number> = {};
  const filter = jwtAuthnFilterFactory({ clusters }).create(
    {
      providers: { p: await provider({ jwt_cache_config: { jwt_cache_size: 2 } }) },
      rules: [
        { match: { prefix: '/strict' }, requires: { provider_and_audiences: { provider_name: 'p', audiences: ['other'] } } },
        { match: { prefix: '/' }, requires: { provider_name: 'p' } },
      ],
    },
    { statPrefix: 't', stats },
  );
  const token = await sign(k.rs);
  expectContinue(await run(filter, bearer(token)));
  expectContinue(await run(filter, bearer(token)));
  assert.equal(stats['jwt_authn.jwt_cache_miss'], 1);
  assert.equal(stats['jwt_authn.jwt_cache_hit'], 1);
  expectReply(await run(filter, { ':path': '/strict', ...bearer(token) }), 403, 'Audiences in Jwt are not allowed');
  assert.equal(stats['jwt_authn.jwt_cache_hit'], 2);
  filter.close?.();
});

test('JwtCache: least recently used entry goes first; an expired entry is dropped on lookup', async () => {
  const { JwtCache } = await import('../../../src/proxy/filters/jwt-authn/jwt-cache.js');
  const { parseJwt } = await import('../../../src/proxy/filters/jwt-authn/jwt.js');
  const k = await keys();
  const t = now();
  const jwt = async (exp: number) => parseJwt(await sign(k.rs, { exp, jti: String(Math.random()) })) as Exclude<ReturnType<typeof parseJwt>, string>;
  const cache = new JwtCache(2);
  const [a, b, c] = [await jwt(t + 100), await jwt(t + 100), await jwt(t + 100)];
  cache.insert(a);
  cache.insert(b);
  assert.equal(cache.lookup(a.token, t, 60), a);
  cache.insert(c);
  assert.equal(cache.lookup(b.token, t, 60), undefined, 'b was the least recently used');
  assert.equal(cache.lookup(a.token, t, 60), a);
  assert.equal(cache.lookup(a.token, t + 100 + 61, 60), undefined, 'expired beyond the skew');
  assert.equal(cache.lookup(a.token, t, 60), undefined, 'and gone');
  assert.equal(cache.size, 1);
});
