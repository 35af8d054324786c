// envoy.filters.http.rbac: enforced and shadow RBAC rules per request, per-route RBACPerRoute, 403 `RBAC: access denied`, Envoy's stats and dynamic metadata.
import { XdsValidationError } from '../../../common/errors.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { FilterStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../../http/filter.js';
import type { DownstreamTlsInfo } from '../../http/stream-info.js';
import { ConfigProblems, fieldPath, rejectUnsupportedFields } from '../../router/config-problems.js';
import { compileRbacEngine, type RbacEngine } from './engine.js';
import { peerIdentityOf, remoteIpFromForwardedFor, type RbacConnection, type RbacInput } from './rbac-input.js';

type HttpRbac = envoy.extensions.filters.http.rbac.v3.RBAC;
type HttpRbacPerRoute = envoy.extensions.filters.http.rbac.v3.RBACPerRoute;

export const HTTP_RBAC_FILTER_NAME = 'envoy.filters.http.rbac';
export const HTTP_RBAC_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const HTTP_RBAC_PER_ROUTE_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';
/** Envoy's dynamic metadata namespace for LOG decisions (access_log_hint). */
export const ENVOY_COMMON_NAMESPACE = 'envoy.common';

/** One compiled RBAC config: the filter's own, or a route's RBACPerRoute (whose absent engines mean "allow"). */
export interface CompiledHttpRbac {
  readonly engine?: RbacEngine;
  readonly shadowEngine?: RbacEngine;
  /** Prefixes of the dynamic metadata keys (and, on the filter's own config, of the stats). */
  readonly rulesStatPrefix: string;
  readonly shadowRulesStatPrefix: string;
  readonly trackPerRuleStats: boolean;
}

const SUPPORTED = new Set(['rules', 'rules_stat_prefix', 'shadow_rules', 'shadow_rules_stat_prefix', 'track_per_rule_stats']);

/** Compiles an RBAC filter config; every problem (with its field path) in one XdsValidationError. */
export function compileHttpRbac(config: HttpRbac, path = ''): CompiledHttpRbac {
  const problems = new ConfigProblems();
  rejectUnsupportedFields(config, SUPPORTED, path, problems);
  const engine = config.rules ? compileRbacEngine(config.rules, fieldPath(path, 'rules'), problems) : undefined;
  const shadowEngine = config.shadow_rules ? compileRbacEngine(config.shadow_rules, fieldPath(path, 'shadow_rules'), problems) : undefined;
  problems.throwIfAny();
  return {
    ...(engine ? { engine } : {}),
    ...(shadowEngine ? { shadowEngine } : {}),
    rulesStatPrefix: config.rules_stat_prefix ?? '',
    shadowRulesStatPrefix: config.shadow_rules_stat_prefix ?? '',
    trackPerRuleStats: config.track_per_rule_stats === true,
  };
}

/** Envoy's statPrefixJoin for the `rbac.` scope: a non-empty prefix gets a trailing '.'. */
function scope(prefix: string): string {
  return prefix === '' || prefix.endsWith('.') ? `rbac.${prefix}` : `rbac.${prefix}.`;
}

/** Envoy's responseDetail(): whitespace in the policy name becomes '_' so access log fields stay one token. */
export function rbacResponseDetail(policy: string | undefined): string {
  return `rbac_access_denied_matched_policy[${policy === undefined ? 'none' : policy.replace(/\s/g, '_')}]`;
}

const connections = new WeakMap<object, RbacConnection>();

/** The connection facts of a stream, built once per downstream TLS session (or per stream for plaintext). */
function connectionOf(ctx: HttpFilterContext): RbacConnection {
  const info = ctx.info;
  const tls: DownstreamTlsInfo | undefined = info.downstreamTls;
  if (tls) {
    const cached = connections.get(tls);
    if (cached && cached.remoteAddress === info.downstreamRemoteAddress && cached.localPort === info.downstreamLocalPort) return cached;
  }
  const conn: RbacConnection = {
    remoteAddress: info.downstreamRemoteAddress,
    localAddress: info.downstreamLocalAddress,
    localPort: info.downstreamLocalPort,
    requestedServerName: tls?.sni ?? '',
    ...(tls ? { peer: peerIdentityOf(tls) } : {}),
  };
  if (tls) connections.set(tls, conn);
  return conn;
}

class HttpRbacFilter implements HttpFilter {
  readonly name = HTTP_RBAC_FILTER_NAME;
  private readonly allowedStat: string;
  private readonly deniedStat: string;
  private readonly shadowAllowedStat: string;
  private readonly shadowDeniedStat: string;

  constructor(
    private readonly config: CompiledHttpRbac,
    private readonly stats: Record<string, number>,
    private readonly xffNumTrustedHops: number,
  ) {
    const rules = scope(config.rulesStatPrefix);
    const shadow = scope(config.shadowRulesStatPrefix);
    this.allowedStat = `${rules}allowed`;
    this.deniedStat = `${rules}denied`;
    this.shadowAllowedStat = `${shadow}shadow_allowed`;
    this.shadowDeniedStat = `${shadow}shadow_denied`;
    for (const s of [this.allowedStat, this.deniedStat, this.shadowAllowedStat, this.shadowDeniedStat]) stats[s] ??= 0;
  }

  private count(stat: string): void {
    this.stats[stat] = (this.stats[stat] ?? 0) + 1;
  }

  onRequestHeaders(ctx: HttpFilterContext): FilterStatus {
    // Envoy: the most specific RBACPerRoute replaces the filter's config, engines and metadata prefixes alike.
    const route = ctx.routeConfig<CompiledHttpRbac>(HTTP_RBAC_FILTER_NAME);
    const active = route ?? this.config;
    const { engine, shadowEngine } = active;
    if (!engine && !shadowEngine) return 'continue';
    const headers = ctx.requestHeaders;
    const connection = connectionOf(ctx);
    const input: RbacInput = {
      connection,
      headers,
      remoteIp: remoteIpFromForwardedFor(headers, connection.remoteAddress, this.xffNumTrustedHops),
      filterState: ctx.info.filterState,
      pathWithoutQuery: undefined,
    };
    const perRule = active.trackPerRuleStats;
    const metadata: Record<string, string> = {};
    if (shadowEngine) {
      const shadow = shadowEngine.evaluate(input);
      const p = active.shadowRulesStatPrefix;
      this.count(shadow.allowed ? this.shadowAllowedStat : this.shadowDeniedStat);
      if (perRule && shadow.policy !== undefined) this.count(`${scope(this.config.shadowRulesStatPrefix)}policy.${shadow.policy}.${shadow.allowed ? 'shadow_allowed' : 'shadow_denied'}`);
      if (shadow.policy !== undefined) metadata[`${p}shadow_effective_policy_id`] = shadow.policy;
      metadata[`${p}shadow_engine_result`] = shadow.allowed ? 'allowed' : 'denied';
    }
    if (!engine) {
      ctx.info.filterState.set(HTTP_RBAC_FILTER_NAME, metadata);
      return 'continue';
    }
    const decision = engine.evaluate(input);
    const p = active.rulesStatPrefix;
    if (decision.policy !== undefined) metadata[`${p}enforced_effective_policy_id`] = decision.policy;
    metadata[`${p}enforced_engine_result`] = decision.allowed ? 'allowed' : 'denied';
    ctx.info.filterState.set(HTTP_RBAC_FILTER_NAME, metadata);
    if (engine.action === 'LOG') ctx.info.filterState.set(ENVOY_COMMON_NAMESPACE, { access_log_hint: decision.policy !== undefined });
    if (perRule && decision.policy !== undefined) this.count(`${scope(this.config.rulesStatPrefix)}policy.${decision.policy}.${decision.allowed ? 'allowed' : 'denied'}`);
    if (decision.allowed) {
      this.count(this.allowedStat);
      return 'continue';
    }
    this.count(this.deniedStat);
    ctx.sendLocalReply(403, 'RBAC: access denied', { details: rbacResponseDetail(decision.policy) });
    return 'stop';
  }
}

export const httpRbacFilterFactory: HttpFilterFactory = {
  name: HTTP_RBAC_FILTER_NAME,
  typeUrl: HTTP_RBAC_TYPE_URL,
  routeConfigTypeUrl: HTTP_RBAC_PER_ROUTE_TYPE_URL,
  create(config, context) {
    return new HttpRbacFilter(compileHttpRbac((config ?? {}) as HttpRbac), context.stats ?? {}, context.xffNumTrustedHops ?? 0);
  },
  createRouteConfig(config) {
    const perRoute = (config ?? {}) as HttpRbacPerRoute & HttpRbac;
    // The per-route type is RBACPerRoute { rbac }; an RBAC message given directly (same type URL family) is refused.
    const unknown = Object.keys(perRoute).filter((k) => k !== 'rbac' && (perRoute as Record<string, unknown>)[k] !== undefined);
    if (unknown.length) throw new XdsValidationError(unknown.map((k) => `${k}: not a field of RBACPerRoute (expected rbac)`));
    return compileHttpRbac(perRoute.rbac ?? {}, 'rbac');
  },
};
