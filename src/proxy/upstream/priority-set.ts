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
  readonly healthyHosts: number;
}

export const DEFAULT_OVERPROVISIONING_FACTOR = 140;

/** Key of a locality's weight in the map given to buildPrioritySet. */
export function localityWeightKey(priority: number, locality: HostLocality): string {
  return `${priority}|${localityKey(locality)}`;
}

export function buildPrioritySet(
  hosts: readonly HostImpl[],
  localityWeights: ReadonlyMap<string, number>,
  overprovisioningFactor = DEFAULT_OVERPROVISIONING_FACTOR,
): PrioritySet {
  let maxPriority = 0;
  for (const h of hosts) maxPriority = Math.max(maxPriority, h.priority);
  const hostSets: HostSet[] = [];
  let healthyHosts = 0;
  for (let p = 0; p <= maxPriority; p++) {
    const all = hosts.filter((h) => h.priority === p);
    const healthy = all.filter((h) => coarseHealth(h) === 'healthy');
    const degraded = all.filter((h) => coarseHealth(h) === 'degraded');
    healthyHosts += healthy.length;
    const groups = new Map<string, { locality: HostLocality; hosts: HostImpl[] }>();
    for (const h of all) {
      const key = localityKey(h.locality);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { locality: h.locality, hosts: [] }));
      g.hosts.push(h);
    }
    const localities: LocalityGroup[] = [...groups].map(([key, g]) => ({
      key,
      locality: g.locality,
      weight: localityWeights.get(localityWeightKey(p, g.locality)) ?? 0,
      hosts: g.hosts,
      healthy: g.hosts.filter((h) => coarseHealth(h) === 'healthy'),
      degraded: g.hosts.filter((h) => coarseHealth(h) === 'degraded'),
    }));
    hostSets.push({ priority: p, hosts: all, healthy, degraded, localities });
  }
  return { hostSets, overprovisioningFactor, totalHosts: hosts.length, healthyHosts };
}
