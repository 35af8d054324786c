// RequestAuthentication → Envoy's jwt_authn filter config, as Istio's authn policy applier builds it
// (convertToEnvoyJwtConfig): one provider per jwtRule, a missing token allowed, an invalid one refused (401).
import type { JWTRule, RequestAuthentication } from '../../../api/index.js';
import { parseDurationNanos } from '../../../api/duration.js';
import type { envoy } from '../../../xds/generated/types.js';
import { durationFromNanos } from '../common/route-duration.js';
import { jwksClusterName, parseJwksUri } from './jwks-cluster.js';

export type JwtAuthentication = envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
type JwtProvider = envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
type JwtRequirement = envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement;

const DEFAULT_JWKS_TIMEOUT_NANOS = 5e9;
const JWKS_CACHE_SECONDS = 5 * 60;

/**
 * The jwt_authn config for the RequestAuthentications selecting a workload, undefined when they have no jwtRules.
 * Rules are sorted by issuer (deterministic output, as Istio) and named `origins-<i>`.
 */
export function buildJwtAuthentication(policies: readonly RequestAuthentication[]): JwtAuthentication | undefined {
  const rules = policies.flatMap((p) => p.spec.jwtRules ?? []);
  if (rules.length === 0) return undefined;
  // A stable sort keeps rules of one issuer (from different policies) in policy order.
  const sorted = [...rules].sort((a, b) => (a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0));

  const providers: Record<string, JwtProvider> = {};
  // Per provider: {provider OR allow_missing}; ANDed, so a token that is present must be valid for its issuer…
  const innerAnd: JwtRequirement[] = [];
  // …and ORed with each provider alone, for providers reading the same location (the AND would always fail there).
  const outerOr: JwtRequirement[] = [];
  sorted.forEach((rule, i) => {
    const name = `origins-${i}`;
    providers[name] = jwtProvider(rule);
    innerAnd.push({ requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] } });
    outerOr.push({ provider_name: name });
  });
  const requires: JwtRequirement = innerAnd.length === 1
    ? innerAnd[0]!
    : { requires_any: { requirements: [...outerOr, { requires_all: { requirements: innerAnd } }] } };
  return {
    rules: [{ match: { prefix: '/' }, requires }],
    providers,
    bypass_cors_preflight: true,
  };
}

function jwtProvider(rule: JWTRule): JwtProvider {
  const provider: JwtProvider = {
    issuer: rule.issuer,
    // The verified payload goes to dynamic metadata under the issuer; Trellis's jwt_authn filter also derives the
    // `istio_authn` principal and claims that AuthorizationPolicy matches (Istio's separate istio_authn filter).
    payload_in_metadata: rule.issuer,
  };
  if (rule.audiences && rule.audiences.length > 0) provider.audiences = [...rule.audiences];
  if (rule.forwardOriginalToken) provider.forward = true;
  if (rule.outputPayloadToHeader) provider.forward_payload_header = rule.outputPayloadToHeader;
  if (rule.outputClaimToHeaders && rule.outputClaimToHeaders.length > 0) {
    provider.claim_to_headers = rule.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim }));
  }
  if (rule.fromHeaders && rule.fromHeaders.length > 0) {
    provider.from_headers = rule.fromHeaders.map((h) => (h.prefix ? { name: h.name, value_prefix: h.prefix } : { name: h.name }));
  }
  if (rule.fromParams && rule.fromParams.length > 0) provider.from_params = [...rule.fromParams];
  if (rule.fromCookies && rule.fromCookies.length > 0) provider.from_cookies = [...rule.fromCookies];

  const timeoutNanos = (rule.timeout !== undefined ? parseDurationNanos(rule.timeout) : undefined) ?? DEFAULT_JWKS_TIMEOUT_NANOS;
  const info = rule.jwks ? undefined : rule.jwksUri ? parseJwksUri(rule.jwksUri) : undefined;
  if (rule.jwks) {
    provider.local_jwks = { inline_string: rule.jwks };
  } else if (rule.jwksUri && info) {
    provider.remote_jwks = {
      http_uri: { uri: rule.jwksUri, cluster: jwksClusterName(info), timeout: durationFromNanos(timeoutNanos) },
      cache_duration: { seconds: JWKS_CACHE_SECONDS },
    };
  } else {
    // No usable key source (validation refuses this; hand-built input only): an empty key set, so every token is
    // refused rather than accepted unchecked, as Istio's fallback JWKS does.
    provider.local_jwks = { inline_string: '{"keys":[]}' };
  }
  return provider;
}
