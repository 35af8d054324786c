// One upstream endpoint of a cluster: address, weight, priority, locality, health and live counters.
import type { HostHealth, HostHealthFlags, HostLocality, HostStats, UpstreamHost } from './types.js';

export function emptyHostStats(): HostStats {
  return { cxActive: 0, cxTotal: 0, cxConnectFail: 0, rqActive: 0, rqTotal: 0, rqError: 0, rqSuccess: 0, rqTimeout: 0 };
}

export const NO_LOCALITY: HostLocality = Object.freeze({ region: '', zone: '', subZone: '' });

/** `region/zone/sub_zone`, the key localities are grouped by. */
export function localityKey(l: HostLocality): string {
  return `${l.region}/${l.zone}/${l.subZone}`;
}

/**
 * A host keeps its identity (and so its pool and counters) across EDS and DNS updates that keep its address;
 * weight, priority, locality, health and metadata are refreshed in place by the cluster.
 */
export class HostImpl implements UpstreamHost {
  readonly addressText: string;
  readonly stats: HostStats = emptyHostStats();
  weight: number;
  priority: number;
  locality: HostLocality;
  health: HostHealth;
  metadata: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Endpoint hostname (EDS `hostname`, or the DNS name the address came from); used for auto SNI. */
  hostname: string;
  /** Set by the cluster's health checker and outlier detector; the cluster rebuilds its load balancer when they change. */
  readonly healthFlags: MutableHealthFlags = { failedActiveHc: false, degradedActiveHc: false, pendingActiveHc: false, activeHcTimeout: false, failedOutlierCheck: false, pendingDynamicRemoval: false };
  successRate = -1;
  localOriginSuccessRate = -1;

  constructor(
    readonly address: string,
    readonly port: number,
    init: { weight?: number; priority?: number; locality?: HostLocality; health?: HostHealth; metadata?: UpstreamHost['metadata']; hostname?: string } = {},
  ) {
    this.addressText = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    this.weight = init.weight ?? 1;
    this.priority = init.priority ?? 0;
    this.locality = init.locality ?? NO_LOCALITY;
    this.health = init.health ?? 'HEALTHY';
    this.metadata = init.metadata ?? {};
    this.hostname = init.hostname ?? '';
  }
}

export type MutableHealthFlags = { -readonly [K in keyof HostHealthFlags]: HostHealthFlags[K] };

/** The EDS status alone: UNKNOWN counts as healthy; DRAINING, TIMEOUT and UNHEALTHY are excluded from balancing. */
export function edsCoarseHealth(h: HostHealth): 'healthy' | 'degraded' | 'unhealthy' {
  switch (h) {
    case 'HEALTHY':
    case 'UNKNOWN':
      return 'healthy';
    case 'DEGRADED':
      return 'degraded';
    default:
      return 'unhealthy';
  }
}

/**
 * Envoy's Host::coarseHealth: any failed flag (active HC, outlier ejection, EDS UNHEALTHY/TIMEOUT/DRAINING) makes the
 * host unhealthy; otherwise a degraded flag (active HC's x-envoy-degraded, EDS DEGRADED) makes it degraded.
 */
export function coarseHealth(host: Pick<UpstreamHost, 'health' | 'healthFlags'>): 'healthy' | 'degraded' | 'unhealthy' {
  const f = host.healthFlags;
  const eds = edsCoarseHealth(host.health);
  if (f.failedActiveHc || f.failedOutlierCheck || eds === 'unhealthy') return 'unhealthy';
  if (f.degradedActiveHc || eds === 'degraded') return 'degraded';
  return 'healthy';
}

/** Envoy's /clusters health_flags: the set flags in Envoy's order joined by "/", or `healthy`. */
export function healthFlagsText(host: Pick<UpstreamHost, 'health' | 'healthFlags'>): string {
  const f = host.healthFlags;
  let out = '';
  if (f.failedActiveHc) out += '/failed_active_hc';
  if (f.failedOutlierCheck) out += '/failed_outlier_check';
  if (host.health === 'UNHEALTHY' || host.health === 'TIMEOUT') out += '/failed_eds_health';
  if (f.degradedActiveHc) out += '/degraded_active_hc';
  if (host.health === 'DEGRADED') out += '/degraded_eds_health';
  if (f.pendingDynamicRemoval) out += '/pending_dynamic_removal';
  if (f.pendingActiveHc) out += '/pending_active_hc';
  if (f.activeHcTimeout) out += '/active_hc_timeout';
  if (host.health === 'DRAINING') out += '/eds_status_draining';
  return out || 'healthy';
}
