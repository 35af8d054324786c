// envoy.filters.http.cors: preflight replies and response headers for actual requests, from the per-route CorsPolicy.
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import type { FilterStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../http/filter.js';
import { headerValue, type HttpHeaders } from '../http/headers.js';
import { compileStringMatcher } from './string-matcher.js';

type CorsPolicyConfig = envoy.extensions.filters.http.cors.v3.CorsPolicy;

export const CORS_FILTER_NAME = 'envoy.filters.http.cors';
export const CORS_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';
export const CORS_POLICY_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

export interface CompiledCorsPolicy {
  readonly origins: readonly ((origin: string) => boolean)[];
  readonly allowMethods?: string;
  readonly allowHeaders?: string;
  readonly exposeHeaders?: string;
  readonly maxAge?: string;
  readonly allowCredentials: boolean;
  readonly allowPrivateNetworkAccess: boolean;
  readonly forwardNotMatchingPreflights: boolean;
  /** filter_enabled default_value as a probability (Envoy default 100%). */
  readonly enabled: number;
}

export function compileCorsPolicy(c: CorsPolicyConfig): CompiledCorsPolicy {
  const problems: string[] = [];
  const origins = (c.allow_origin_string_match ?? []).map((m, i) => compileStringMatcher(m, `allow_origin_string_match[${i}]`, problems));
  if (c.shadow_enabled) problems.push('shadow_enabled: not supported by Trellis');
  if (problems.length) throw new XdsValidationError(problems);
  const fe = c.filter_enabled?.default_value;
  const den = fe?.denominator === 'TEN_THOUSAND' ? 10_000 : fe?.denominator === 'MILLION' ? 1_000_000 : 100;
  return {
    origins,
    ...(c.allow_methods ? { allowMethods: c.allow_methods } : {}),
    ...(c.allow_headers ? { allowHeaders: c.allow_headers } : {}),
    ...(c.expose_headers ? { exposeHeaders: c.expose_headers } : {}),
    ...(c.max_age ? { maxAge: c.max_age } : {}),
    allowCredentials: c.allow_credentials?.value === true,
    allowPrivateNetworkAccess: c.allow_private_network_access?.value === true,
    forwardNotMatchingPreflights: c.forward_not_matching_preflights?.value !== false,
    enabled: fe ? (fe.numerator ?? 0) / den : 1,
  };
}

const STATE_KEY = 'envoy.filters.http.cors';

interface CorsState {
  readonly origin: string;
  readonly policy: CompiledCorsPolicy;
  readonly preflight: boolean;
}

class CorsFilter implements HttpFilter {
  readonly name = CORS_FILTER_NAME;
  constructor(private readonly stats: Record<string, number>) {
    stats['cors.origin_valid'] ??= 0;
    stats['cors.origin_invalid'] ??= 0;
  }

  onRequestHeaders(ctx: HttpFilterContext): FilterStatus {
    const policy = ctx.routeConfig<CompiledCorsPolicy>(CORS_FILTER_NAME);
    if (!policy) return 'continue';
    const h = ctx.requestHeaders;
    const origin = headerValue(h, 'origin');
    if (!origin) return 'continue';
    if (policy.enabled < 1 && Math.random() >= policy.enabled) return 'continue';
    const preflight = h[':method'] === 'OPTIONS' && headerValue(h, 'access-control-request-method') !== undefined;
    if (!policy.origins.some((m) => m(origin))) {
      this.stats['cors.origin_invalid']!++;
      if (preflight && !policy.forwardNotMatchingPreflights) {
        ctx.sendLocalReply(200, '', { details: 'cors_response' });
        return 'stop';
      }
      return 'continue';
    }
    this.stats['cors.origin_valid']!++;
    const state: CorsState = { origin, policy, preflight };
    ctx.info.filterState.set(STATE_KEY, state);
    if (preflight) {
      ctx.sendLocalReply(200, '', { details: 'cors_response' });
      return 'stop';
    }
    return 'continue';
  }

  onResponseHeaders(ctx: HttpFilterContext, headers: HttpHeaders): void {
    const state = ctx.info.filterState.get(STATE_KEY) as CorsState | undefined;
    if (!state) return;
    const p = state.policy;
    headers['access-control-allow-origin'] = state.origin;
    if (p.allowCredentials) headers['access-control-allow-credentials'] = 'true';
    if (state.preflight) {
      if (p.allowMethods) headers['access-control-allow-methods'] = p.allowMethods;
      if (p.allowHeaders) headers['access-control-allow-headers'] = p.allowHeaders;
      if (p.maxAge) headers['access-control-max-age'] = p.maxAge;
      if (p.allowPrivateNetworkAccess && headerValue(ctx.requestHeaders, 'access-control-request-private-network') === 'true') {
        headers['access-control-allow-private-network'] = 'true';
      }
    } else if (p.exposeHeaders) {
      headers['access-control-expose-headers'] = p.exposeHeaders;
    }
  }
}

export const corsFilterFactory: HttpFilterFactory = {
  name: CORS_FILTER_NAME,
  typeUrl: CORS_TYPE_URL,
  routeConfigTypeUrl: CORS_POLICY_TYPE_URL,
  create(_config, context) {
    return new CorsFilter(context.stats ?? {});
  },
  createRouteConfig(config) {
    return compileCorsPolicy((config ?? {}) as CorsPolicyConfig);
  },
};
