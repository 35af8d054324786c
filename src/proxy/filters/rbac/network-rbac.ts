// envoy.filters.network.rbac: enforced and shadow RBAC rules on connection attributes (peer identity, addresses, ports, SNI); a denied connection is closed.
import type { envoy } from '../../../xds/generated/types.js';
import type { DownstreamConnection, NetworkFilterStatus, NetworkReadFilter, NetworkReadFilterFactory } from '../network-filter.js';
import { ConfigProblems, fieldPath, rejectUnsupportedFields } from '../../router/config-problems.js';
import { compileRbacEngine, type RbacEngine } from './engine.js';
import { rbacResponseDetail } from './http-rbac.js';
import { NO_HEADERS, peerIdentityOf, type RbacInput } from './rbac-input.js';

type NetworkRbac = envoy.extensions.filters.network.rbac.v3.RBAC;

export const NETWORK_RBAC_FILTER_NAME = 'envoy.filters.network.rbac';
export const NETWORK_RBAC_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

const SUPPORTED = new Set(['rules', 'shadow_rules', 'shadow_rules_stat_prefix', 'stat_prefix', 'enforcement_type']);

/** Envoy's statPrefixJoin: joins with '.' unless the prefix is empty or already ends with one. */
function join(prefix: string, suffix: string): string {
  return prefix === '' ? suffix : prefix.endsWith('.') ? `${prefix}${suffix}` : `${prefix}.${suffix}`;
}

export class NetworkRbacFilter implements NetworkReadFilter {
  readonly name = NETWORK_RBAC_FILTER_NAME;
  readonly stats: Record<string, number> = {};
  private readonly allowedStat: string;
  private readonly deniedStat: string;
  private readonly shadowAllowedStat: string;
  private readonly shadowDeniedStat: string;
  /** Connection termination details of the last denied connection (Envoy's CONNECTION_TERMINATION_DETAILS), for logs. */
  lastTerminationDetails: string | undefined;

  constructor(
    statPrefix: string,
    shadowRulesStatPrefix: string,
    private readonly engine: RbacEngine | undefined,
    private readonly shadowEngine: RbacEngine | undefined,
    readonly enforcementType: 'ONE_TIME_ON_FIRST_BYTE' | 'CONTINUOUS',
  ) {
    const base = join(statPrefix, 'rbac.');
    const shadow = join(base, shadowRulesStatPrefix);
    this.allowedStat = join(base, 'allowed');
    this.deniedStat = join(base, 'denied');
    this.shadowAllowedStat = join(shadow, 'shadow_allowed');
    this.shadowDeniedStat = join(shadow, 'shadow_denied');
    for (const s of [this.allowedStat, this.deniedStat, this.shadowAllowedStat, this.shadowDeniedStat]) this.stats[s] = 0;
  }

  /**
   * Decides once per connection. Every input the network engine reads (addresses, ports, SNI, the peer certificate)
   * is fixed when the connection is accepted, so CONTINUOUS re-evaluation would always repeat this decision.
   */
  onNewConnection(connection: DownstreamConnection): NetworkFilterStatus {
    if (!this.engine && !this.shadowEngine) return 'continue';
    const input: RbacInput = {
      connection: {
        remoteAddress: connection.remoteAddress,
        localAddress: connection.localAddress,
        localPort: connection.localPort,
        requestedServerName: connection.requestedServerName,
        ...(connection.tls ? { peer: peerIdentityOf(connection.tls) } : {}),
      },
      headers: NO_HEADERS,
      remoteIp: connection.remoteAddress,
      filterState: connection.filterState,
      pathWithoutQuery: undefined,
    };
    if (this.shadowEngine) {
      const shadow = this.shadowEngine.evaluate(input);
      this.stats[shadow.allowed ? this.shadowAllowedStat : this.shadowDeniedStat]!++;
      connection.filterState.set(NETWORK_RBAC_FILTER_NAME, {
        ...(shadow.policy !== undefined ? { shadow_effective_policy_id: shadow.policy } : {}),
        shadow_engine_result: shadow.allowed ? 'allowed' : 'denied',
      });
    }
    if (!this.engine) return 'continue';
    const decision = this.engine.evaluate(input);
    if (decision.allowed) {
      this.stats[this.allowedStat]!++;
      return 'continue';
    }
    this.stats[this.deniedStat]!++;
    this.lastTerminationDetails = rbacResponseDetail(decision.policy);
    return 'stop';
  }
}

export function compileNetworkRbac(config: NetworkRbac, path: string): NetworkRbacFilter {
  const problems = new ConfigProblems();
  rejectUnsupportedFields(config, SUPPORTED, path, problems);
  const statPrefix = config.stat_prefix ?? '';
  if (!statPrefix) problems.add(fieldPath(path, 'stat_prefix'), 'required (Envoy: min_len 1)');
  const engine = config.rules ? compileRbacEngine(config.rules, fieldPath(path, 'rules'), problems) : undefined;
  const shadowEngine = config.shadow_rules ? compileRbacEngine(config.shadow_rules, fieldPath(path, 'shadow_rules'), problems) : undefined;
  const enforcement = String(config.enforcement_type ?? 'ONE_TIME_ON_FIRST_BYTE');
  let enforcementType: 'ONE_TIME_ON_FIRST_BYTE' | 'CONTINUOUS' = 'ONE_TIME_ON_FIRST_BYTE';
  if (enforcement === 'CONTINUOUS' || enforcement === '1') enforcementType = 'CONTINUOUS';
  else if (enforcement !== 'ONE_TIME_ON_FIRST_BYTE' && enforcement !== '0') problems.add(fieldPath(path, 'enforcement_type'), `expected ONE_TIME_ON_FIRST_BYTE or CONTINUOUS (got ${enforcement})`);
  problems.throwIfAny();
  return new NetworkRbacFilter(statPrefix, config.shadow_rules_stat_prefix ?? '', engine, shadowEngine, enforcementType);
}

export const networkRbacFilterFactory: NetworkReadFilterFactory = {
  name: NETWORK_RBAC_FILTER_NAME,
  typeUrl: NETWORK_RBAC_TYPE_URL,
  create(config, path) {
    return compileNetworkRbac((config ?? {}) as NetworkRbac, path);
  },
};
