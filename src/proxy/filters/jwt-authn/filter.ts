// envoy.filters.http.jwt_authn: finds the requirement for a request (per-route requirement_name, else the first
// matching rule), verifies its tokens asynchronously (stop, then continueDecoding), and either lets the request on
// with the verified payload in dynamic metadata or answers 401/403 as Envoy does.
import type { FilterStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../../http/filter.js';
import { headerValue, type HttpHeaders } from '../../http/headers.js';
import type { ClusterManager } from '../../upstream/types.js';
import type { VerifyContext } from './authenticator.js';
import { compileJwtAuthentication, compilePerRouteConfig, requirementNames, type CompiledJwtAuthentication, type CompiledPerRoute } from './config.js';
import type { ParsedJwt } from './jwt.js';
import { JWT_STATUS, httpStatusOf, responseCodeDetailsOf, type JwtStatus } from './status.js';
import type { Verifier } from './verifier.js';
import type { envoy } from '../../../xds/generated/types.js';

export const JWT_AUTHN_FILTER_NAME = 'envoy.filters.http.jwt_authn';
export const JWT_AUTHN_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
export const JWT_AUTHN_PER_ROUTE_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig';
/** Istio's authentication view of the request, read by RBAC metadata matchers (request.auth.*). */
export const ISTIO_AUTHN_FILTER_STATE = 'istio_authn';

/** The proxy log as this filter uses it (ProxyLog fits). */
export interface JwtFilterLog {
  log(name: 'http', level: 'debug' | 'info' | 'warning', message: string): void;
}

export interface JwtAuthnDeps {
  readonly clusters: ClusterManager;
  readonly log?: JwtFilterLog;
}

/** Envoy truncates the path in the realm to 256 characters (MaximumUriLength). */
const MAX_REALM_PATH = 256;

/** Http::Utility::buildOriginalUri: scheme://host + the original (pre-rewrite) path. */
function originalUri(h: HttpHeaders): string {
  let path = headerValue(h, 'x-envoy-original-path') ?? headerValue(h, ':path') ?? '';
  if (path.length > MAX_REALM_PATH) path = path.slice(0, MAX_REALM_PATH);
  return `${headerValue(h, ':scheme') ?? 'http'}://${headerValue(h, ':authority') ?? ''}${path}`;
}

function isCorsPreflight(h: HttpHeaders): boolean {
  return h[':method'] === 'OPTIONS' && !!headerValue(h, 'origin') && !!headerValue(h, 'access-control-request-method');
}

const STATS = [
  'jwt_authn.allowed', 'jwt_authn.denied', 'jwt_authn.cors_preflight_bypassed', 'jwt_authn.jwks_fetch_success', 'jwt_authn.jwks_fetch_failed',
  'jwt_authn.jwt_cache_hit', 'jwt_authn.jwt_cache_miss',
];

class JwtAuthnFilter implements HttpFilter {
  readonly name = JWT_AUTHN_FILTER_NAME;
  private readonly config: CompiledJwtAuthentication;

  constructor(
    config: envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication,
    private readonly stats: Record<string, number>,
    private readonly log: JwtFilterLog | undefined,
    deps: JwtAuthnDeps,
  ) {
    for (const s of STATS) stats[s] ??= 0;
    this.config = compileJwtAuthentication(config, {
      clusters: deps.clusters,
      jwksStats: {
        onFetch: (ok, reason) => {
          this.stats[ok ? 'jwt_authn.jwks_fetch_success' : 'jwt_authn.jwks_fetch_failed']!++;
          if (!ok) this.log?.log('http', 'warning', `jwt_authn: JWKS fetch failed: ${reason ?? ''}`);
        },
      },
    });
  }

  onRequestHeaders(ctx: HttpFilterContext): FilterStatus {
    const h = ctx.requestHeaders;
    if (this.config.bypassCorsPreflight && isCorsPreflight(h)) {
      this.stats['jwt_authn.cors_preflight_bypassed']!++;
      this.stats['jwt_authn.allowed']!++;
      return 'continue';
    }
    let verifier: Verifier | undefined;
    const perRoute = ctx.routeConfig<CompiledPerRoute>(JWT_AUTHN_FILTER_NAME);
    if (perRoute) {
      if (!perRoute.disabled) {
        verifier = this.config.requirements.get(perRoute.requirementName);
        if (!verifier) {
          const message = `Wrong requirement_name: ${perRoute.requirementName}. It should be one of [${requirementNames(this.config)}]`;
          this.stats['jwt_authn.denied']!++;
          this.log?.log('http', 'debug', `jwt_authn: ${message}`);
          ctx.sendLocalReply(403, this.config.stripFailureResponse ? '' : `Failed JWT authentication: ${message}`, { details: responseCodeDetailsOf(message) });
          return 'stop';
        }
      }
    } else {
      const random = Math.random();
      verifier = this.config.rules.find((r) => r.match.matches(h, random))?.verifier;
    }
    if (!verifier) {
      this.stats['jwt_authn.allowed']!++;
      return 'continue';
    }
    const realm = originalUri(h);
    const vctx: VerifyContext = {
      headers: h,
      findByIssuer: (iss) => this.config.findByIssuer(iss),
      nowSeconds: () => Math.floor(Date.now() / 1000),
      extracted: {},
      verified: [],
      clearRouteCache: false,
      reasons: [],
      countJwtCache: (hit) => void this.stats[hit ? 'jwt_authn.jwt_cache_hit' : 'jwt_authn.jwt_cache_miss']!++,
    };
    verifier(vctx).then(
      (status) => this.onComplete(ctx, vctx, status, realm),
      (err: unknown) => {
        // A bug, not a token problem: fail closed.
        this.log?.log('http', 'warning', `jwt_authn: verification error: ${(err as Error).message}`);
        this.onComplete(ctx, vctx, 'JwtVerificationFail', realm);
      },
    );
    return 'stop';
  }

  private onComplete(ctx: HttpFilterContext, vctx: VerifyContext, status: JwtStatus, realm: string): void {
    if (ctx.aborted) return;
    if (status !== 'Ok') {
      this.stats['jwt_authn.denied']!++;
      const message = JWT_STATUS[status];
      const code = httpStatusOf(status);
      // The reason without the token: provider, where the token was, and the status. The query is left out of the
      // log line because a token may travel in it (from_params).
      const q = realm.indexOf('?');
      const where = q < 0 ? realm : realm.slice(0, q);
      this.log?.log('http', 'debug', `jwt_authn: ${String(ctx.requestHeaders[':method'])} ${where} denied ${code}: ${message}${vctx.reasons.length ? ` (${vctx.reasons.join('; ')})` : ''}`);
      const details = responseCodeDetailsOf(message);
      if (this.config.stripFailureResponse) {
        ctx.sendLocalReply(code, '', { details });
        return;
      }
      const challenge = `Bearer realm="${realm}"${status === 'JwtMissed' ? '' : ', error="invalid_token"'}`;
      ctx.sendLocalReply(code, message, { details, headers: { 'www-authenticate': challenge } });
      return;
    }
    this.stats['jwt_authn.allowed']!++;
    if (Object.keys(vctx.extracted).length > 0) ctx.info.filterState.set(JWT_AUTHN_FILTER_NAME, vctx.extracted);
    const first = vctx.verified[0];
    if (first) ctx.info.filterState.set(ISTIO_AUTHN_FILTER_STATE, istioAuthnView(first));
    if (vctx.clearRouteCache) ctx.clearRouteCache();
    ctx.continueDecoding();
  }

  close(): void {
    this.config.close();
  }
}

/**
 * Istio's request.auth.* attributes of the first verified token, in the shape its authn filter writes them (and
 * the control plane's RBAC metadata matchers expect): audiences is the first audience; every claim becomes a list of
 * strings (a string claim one element, a list its string elements, `scope`/`permission` also split at spaces as
 * Istio's space-delimited claims), nested objects keep that shape for `request.auth.claims[a][b]`; other values drop.
 */
function istioAuthnView(jwt: ParsedJwt): Record<string, unknown> {
  const azp = jwt.payload['azp'];
  const audience = jwt.audiences[0];
  return {
    'request.auth.principal': `${jwt.iss}/${jwt.sub}`,
    ...(audience !== undefined ? { 'request.auth.audiences': audience } : {}),
    ...(typeof azp === 'string' ? { 'request.auth.presenter': azp } : {}),
    'request.auth.claims': istioClaims(jwt.payload),
    'request.auth.raw_claims': JSON.stringify(jwt.payload),
  };
}

const SPACE_DELIMITED_CLAIMS = new Set(['scope', 'permission']);

function istioClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(claims)) {
    if (typeof value === 'string') {
      const split = SPACE_DELIMITED_CLAIMS.has(name) ? value.split(' ').filter((v) => v && v !== value) : [];
      out[name] = [value, ...split];
    } else if (Array.isArray(value)) {
      out[name] = value.filter((v): v is string => typeof v === 'string');
    } else if (value !== null && typeof value === 'object') {
      out[name] = istioClaims(value as Record<string, unknown>);
    }
  }
  return out;
}

/** The factory; the filter fetches remote JWKS through the live cluster manager, like the router. */
export function jwtAuthnFilterFactory(deps: JwtAuthnDeps): HttpFilterFactory {
  return {
    name: JWT_AUTHN_FILTER_NAME,
    typeUrl: JWT_AUTHN_TYPE_URL,
    routeConfigTypeUrl: JWT_AUTHN_PER_ROUTE_TYPE_URL,
    create(config, context) {
      return new JwtAuthnFilter((config ?? {}) as envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication, context.stats ?? {}, deps.log, deps);
    },
    createRouteConfig(config) {
      return compilePerRouteConfig((config ?? {}) as envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig);
    },
  };
}
