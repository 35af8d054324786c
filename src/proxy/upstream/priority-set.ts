// Hosts grouped like Envoy's PrioritySet: per priority, the healthy/degraded/all lists and per-locality groups with weights.
import { coarseHealth, localityKey, type HostImpl } from './host.js';
import type { HostLocality } from './types.js';

export interface LocalityGroup {
  readonly key: string;
  readonly locality: HostLocality;
  /** LocalityLbEndpoints.load_balancing_weight (0 when unset: Envoy then sends it no traffic under locality weighting). */
  readonly weight: number;
  readonly hosts: readonly HostImpl[];
  readonly healthy: readonly HostImpl[];
  readonly degraded: readonly HostImpl[];
}

export interface HostSet {
  readonly priority: number;
  readonly hosts: readonly HostImpl[];
  readonly healthy: readonly HostImpl[];
  readonly degraded: readonly HostImpl[];
  readonly localities: readonly LocalityGroup[];
}

export interface PrioritySet {
  /** Index = priority; priorities without hosts are present and empty, like Envoy's. */
  readonly hostSets: readonly HostSet[];
  /** ClusterLoadAssignment.policy.overprovisioning_factor (Envoy default 140, i.e. 1.4). */
  readonly overprovisioningFactor: number;
  readonly totalHosts: number;
  /** Hosts whose coarse health is healthy, or degraded (membership_healthy, membership_degraded). */
  readonly healthyHosts: number;
  readonly degradedHosts: number;
}

export const DEFAULT_OVERPROVISIONING_FACTOR = 140;

/** Key of a locality's weight in the map given to buildPrioritySet. */
export function localityWeightKey(priority: number, locality: HostLocality): string {
  return `${priority}|${localityKey(locality)}`;
}

/**
 * Groups `hosts` by priority, then by locality, in one pass: each host's coarse health is computed once per rebuild and
 * sorts it into the healthy or degraded lists of its priority and its locality (orders follow `hosts`).
 */
export function buildPrioritySet(
  hosts: readonly HostImpl[],
  localityWeights: ReadonlyMap<string, number>,
  overprovisioningFactor = DEFAULT_OVERPROVISIONING_FACTOR,
): PrioritySet {
  let maxPriority = 0;
  for (const h of hosts) maxPriority = Math.max(maxPriority, h.priority);
  const sets: { hosts: HostImpl[]; healthy: HostImpl[]; degraded: HostImpl[]; groups: Map<string, { locality: HostLocality; hosts: HostImpl[]; healthy: HostImpl[]; degraded: HostImpl[] }> }[] = [];
  for (let p = 0; p <= maxPriority; p++) sets.push({ hosts: [], healthy: [], degraded: [], groups: new Map() });
  let healthyHosts = 0;
  let degradedHosts = 0;
  for (const h of hosts) {
    const set = sets[h.priority]!;
    const key = localityKey(h.locality);
    let g = set.groups.get(key);
    if (!g) set.groups.set(key, (g = { locality: h.locality, hosts: [], healthy: [], degraded: [] }));
    set.hosts.push(h);
    g.hosts.push(h);
    const health = coarseHealth(h);
    if (health === 'healthy') {
      healthyHosts++;
      set.healthy.push(h);
      g.healthy.push(h);
    } else if (health === 'degraded') {
      degradedHosts++;
      set.degraded.push(h);
      g.degraded.push(h);
    }
  }
  const hostSets: HostSet[] = sets.map((set, p) => ({
    priority: p,
    hosts: set.hosts,
    healthy: set.healthy,
    degraded: set.degraded,
    localities: [...set.groups].map(([key, g]) => ({ key, locality: g.locality, weight: localityWeights.get(localityWeightKey(p, g.locality)) ?? 0, hosts: g.hosts, healthy: g.healthy, degraded: g.degraded })),
  }));
  return { hostSets, overprovisioningFactor, totalHosts: hosts.length, healthyHosts, degradedHosts };
}
