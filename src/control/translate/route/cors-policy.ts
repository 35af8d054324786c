// VirtualService corsPolicy as the per-route config of envoy.filters.http.cors (Istio's TranslateCORSPolicy).
import type { CorsPolicy } from '../../../api/index.js';
import type { envoy } from '../../../xds/generated/types.js';
import { parseDurationNanos } from '../../../api/duration.js';
import { toStringMatcher, type StringMatcher } from './route-match.js';

export type EnvoyCorsPolicy = envoy.extensions.filters.http.cors.v3.CorsPolicy;

/**
 * allowOrigins (or the deprecated exact allowOrigin) as string matchers, lists joined by commas, maxAge in whole
 * seconds, filter enabled at 100 %, and unmatched preflights forwarded unless `unmatchedPreflights: IGNORE`.
 */
export function translateCorsPolicy(policy: CorsPolicy): EnvoyCorsPolicy {
  const out: EnvoyCorsPolicy = {
    forward_not_matching_preflights: { value: policy.unmatchedPreflights !== 'IGNORE' },
  };
  if (policy.allowOrigins !== undefined) {
    out.allow_origin_string_match = policy.allowOrigins.map(toStringMatcher).filter((m): m is StringMatcher => m !== undefined);
  } else if (policy.allowOrigin !== undefined) {
    out.allow_origin_string_match = policy.allowOrigin.map((origin) => ({ exact: origin }));
  }
  out.filter_enabled = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  if (policy.allowCredentials !== undefined) out.allow_credentials = { value: policy.allowCredentials };
  if (policy.allowHeaders !== undefined) out.allow_headers = policy.allowHeaders.join(',');
  if (policy.allowMethods !== undefined) out.allow_methods = policy.allowMethods.join(',');
  if (policy.exposeHeaders !== undefined) out.expose_headers = policy.exposeHeaders.join(',');
  if (policy.maxAge !== undefined) {
    const nanos = parseDurationNanos(policy.maxAge);
    if (nanos !== undefined) out.max_age = String(Math.trunc(nanos / 1e9));
  }
  return out;
}
