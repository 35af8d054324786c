// RequestAuthentication → jwt_authn as Istio's authn policy applier builds it (providers origins-<i> by issuer,
// {provider OR allow_missing} requirements, remote/local JWKS), and the JWKS clusters Trellis adds for CDS.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestAuthenticationSpec } from '../../../../src/api/index.js';
import { securityHttpFilters } from '../../../../src/control/translate/security/inbound-filters.js';
import { buildJwksClusters, jwksCluster, parseJwksUri } from '../../../../src/control/translate/security/jwks-cluster.js';
import { decodeMessage, encodeMessage, unpackAny } from '../../../../src/xds/codec.js';
import type { envoy } from '../../../../src/xds/generated/types.js';
import { JWT_AUTHN_URL, authorizationPolicy, pushOf, requestAuthentication, service, workload, type JwtAuthentication } from './security-fixture.js';

type Cluster = envoy.config.cluster.v3.Cluster;
const proxy = workload();
const selector = { matchLabels: { app: 'httpbin' } };
const JWKS = '{"keys":[{"kty":"RSA","e":"AQAB","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}';

function jwtOf(specs: RequestAuthenticationSpec[], services = [] as ReturnType<typeof service>[]): JwtAuthentication {
  const push = pushOf(specs.map((s, i) => requestAuthentication(`jwt-${i + 1}`, { selector, ...s })), { services });
  const filters = securityHttpFilters({ push, proxy, port: 80, isGateway: false });
  assert.equal(filters[0]?.name, 'envoy.filters.http.jwt_authn');
  return unpackAny<JwtAuthentication>(filters[0]!.typed_config!, JWT_AUTHN_URL);
}

describe('RequestAuthentication → jwt_authn', () => {
  test('one issuer: provider origins-0, rule prefix / requiring the provider or no token, CORS preflight bypassed', () => {
    const jwt = jwtOf([{
      jwtRules: [{
        issuer: 'https://secret.foo.com',
        audiences: ['aud1', 'aud2'],
        jwksUri: 'https://secret.foo.com/jwks.json',
        fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }, { name: 'x-token' }],
        fromParams: ['token'],
        fromCookies: ['session'],
        forwardOriginalToken: true,
        outputPayloadToHeader: 'x-jwt-payload',
        outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
        timeout: '2s',
      }],
    }]);
    assert.deepEqual(jwt, {
      providers: {
        'origins-0': {
          issuer: 'https://secret.foo.com',
          audiences: ['aud1', 'aud2'],
          remote_jwks: {
            http_uri: { uri: 'https://secret.foo.com/jwks.json', cluster: 'outbound|443||secret.foo.com', timeout: { seconds: 2 } },
            cache_duration: { seconds: 300 },
          },
          forward: true,
          from_headers: [{ name: 'x-jwt', value_prefix: 'Bearer ' }, { name: 'x-token' }],
          from_params: ['token'],
          from_cookies: ['session'],
          forward_payload_header: 'x-jwt-payload',
          payload_in_metadata: 'https://secret.foo.com',
          claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }],
        },
      },
      rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } }],
      bypass_cors_preflight: true,
    });
  });

  test('several issuers (across policies): sorted by issuer; OR of each provider and the AND of {provider OR missing}', () => {
    const jwt = jwtOf([
      { jwtRules: [{ issuer: 'zeta', jwks: JWKS }] },
      { jwtRules: [{ issuer: 'alpha', jwksUri: 'http://jwks.local:8080/keys' }] },
    ]);
    assert.deepEqual(Object.entries(jwt.providers ?? {}).map(([name, p]) => [name, p.issuer]), [['origins-0', 'alpha'], ['origins-1', 'zeta']]);
    const either = (name: string) => ({ requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] } });
    assert.deepEqual(jwt.rules?.[0]?.requires, {
      requires_any: { requirements: [{ provider_name: 'origins-0' }, { provider_name: 'origins-1' }, { requires_all: { requirements: [either('origins-0'), either('origins-1')] } }] },
    });
    assert.deepEqual(jwt.providers?.['origins-1']?.local_jwks, { inline_string: JWKS });
    assert.equal(jwt.providers?.['origins-1']?.remote_jwks, undefined);
    assert.deepEqual(jwt.providers?.['origins-0']?.remote_jwks?.http_uri, { uri: 'http://jwks.local:8080/keys', cluster: 'outbound|8080||jwks.local', timeout: { seconds: 5 } });
  });

  test('jwt_authn goes before the authorization filters, so the principal is known when RBAC runs', () => {
    const push = pushOf([
      requestAuthentication('jwt', { selector, jwtRules: [{ issuer: 'iss', jwks: JWKS }] }),
      authorizationPolicy('require-jwt', { selector, rules: [{ from: [{ source: { requestPrincipals: ['iss/*'] } }] }] }),
    ]);
    assert.deepEqual(securityHttpFilters({ push, proxy, port: 80, isGateway: false }).map((f) => f.name), ['envoy.filters.http.jwt_authn', 'envoy.filters.http.rbac']);
  });

  test('no RequestAuthentication for the workload (other selector, other namespace): no jwt_authn', () => {
    const push = pushOf([
      requestAuthentication('other', { selector: { matchLabels: { app: 'other' } }, jwtRules: [{ issuer: 'iss', jwks: JWKS }] }),
      requestAuthentication('bar', { jwtRules: [{ issuer: 'iss', jwks: JWKS }] }, 'bar'),
    ]);
    assert.deepEqual(securityHttpFilters({ push, proxy, port: 80, isGateway: false }), []);
  });

  test('a mesh-wide RequestAuthentication in the root namespace applies, and gateways get it too', () => {
    const push = pushOf([requestAuthentication('mesh', { jwtRules: [{ issuer: 'iss', jwks: JWKS }] }, 'istio-system')]);
    const gateway = workload({ type: 'router', namespace: 'istio-system', labels: { istio: 'ingressgateway' } });
    assert.equal(securityHttpFilters({ push, proxy: gateway, isGateway: true })[0]?.name, 'envoy.filters.http.jwt_authn');
    assert.equal(securityHttpFilters({ push, proxy, port: 80, isGateway: false })[0]?.name, 'envoy.filters.http.jwt_authn');
  });
});

describe('JWKS clusters for CDS', () => {
  test('jwksUri hosts no service declares get an outbound|port||host cluster; declared ones and inline jwks do not', () => {
    const declared = service('declared.example.com', 'foo', [{ name: 'https', number: 443, protocol: 'HTTPS' }]);
    const push = pushOf([requestAuthentication('jwt', {
      selector,
      jwtRules: [
        { issuer: 'a', jwksUri: 'https://issuer.example.com/.well-known/jwks.json' },
        { issuer: 'b', jwksUri: 'https://declared.example.com/jwks' },
        { issuer: 'c', jwks: JWKS },
        { issuer: 'd', jwksUri: 'http://127.0.0.1:8081/jwks' },
        { issuer: 'e', jwksUri: 'https://issuer.example.com/other-path' },
      ],
    })], { services: [declared] });
    const clusters = buildJwksClusters(push, proxy);
    assert.deepEqual(clusters.map((c) => c.name), ['outbound|443||issuer.example.com', 'outbound|8081||127.0.0.1']);
    const roundTrip = (c: Cluster) => decodeMessage<Cluster>('envoy.config.cluster.v3.Cluster', encodeMessage('envoy.config.cluster.v3.Cluster', c));
    const dns = roundTrip(clusters[0]!);
    assert.equal(dns.type, 'LOGICAL_DNS');
    assert.deepEqual(dns.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address, { socket_address: { address: 'issuer.example.com', port_value: 443 } });
    assert.equal(dns.transport_socket?.name, 'envoy.transport_sockets.tls');
    const tls = unpackAny<envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext>(dns.transport_socket!.typed_config!);
    assert.equal(tls.sni, 'issuer.example.com');
    assert.deepEqual(tls.common_tls_context?.validation_context?.trusted_ca, { filename: '/etc/ssl/certs/ca-certificates.crt' });
    assert.deepEqual(tls.common_tls_context?.validation_context?.match_typed_subject_alt_names, [{ san_type: 'DNS', matcher: { exact: 'issuer.example.com' } }]);
    const ip = roundTrip(clusters[1]!);
    assert.equal(ip.type, 'STATIC');
    assert.equal(ip.transport_socket, undefined, 'plain http JWKS server');
  });

  test('given the clusters the proxy already gets, only the missing JWKS clusters are added', () => {
    const push = pushOf([requestAuthentication('jwt', { selector, jwtRules: [{ issuer: 'a', jwksUri: 'https://a.example.com/k' }, { issuer: 'b', jwksUri: 'https://b.example.com/k' }] })]);
    assert.deepEqual(buildJwksClusters(push, proxy, new Set(['outbound|443||a.example.com', 'BlackHoleCluster'])).map((c) => c.name), ['outbound|443||b.example.com']);
    assert.deepEqual(buildJwksClusters(push, workload({ labels: { app: 'other' } }), new Set()), [], 'not selected: no JWKS cluster');
  });

  test('jwksUri parsing as Istio: default ports by scheme, IPv6 without brackets, other schemes refused', () => {
    assert.deepEqual(parseJwksUri('https://a.example.com/k'), { hostname: 'a.example.com', port: 443, useSsl: true });
    assert.deepEqual(parseJwksUri('http://a.example.com/k'), { hostname: 'a.example.com', port: 80, useSsl: false });
    assert.deepEqual(parseJwksUri('http://[::1]:9000/k'), { hostname: '::1', port: 9000, useSsl: false });
    assert.equal(parseJwksUri('ftp://a.example.com/k'), undefined);
    assert.equal(parseJwksUri('not a url'), undefined);
    assert.equal(jwksCluster({ hostname: '::1', port: 9000, useSsl: false }, 10_000).name, 'outbound|9000||::1');
  });
});
