// One upstream endpoint of a cluster: address, weight, priority, locality, health and live counters.
import type { HostHealth, HostLocality, HostStats, UpstreamHost } from './types.js';

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

/** Envoy's coarse health: UNKNOWN counts as healthy; DRAINING, TIMEOUT and UNHEALTHY are excluded from balancing. */
export function coarseHealth(h: HostHealth): 'healthy' | 'degraded' | 'unhealthy' {
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
