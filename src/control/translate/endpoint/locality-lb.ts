// Locality-aware EDS for one calling proxy: priorities by proximity and failover, or `distribute` weights (Istio's
// networking/core/loadbalancer: ApplyLocalityLoadBalancer, applyLocalityFailover, applyFailoverPriorities,
// applyLocalityWeights; pilot's LbPriority and LocalityMatch).
import type { LocalityLoadBalancerSetting } from '../../../api/index.js';
import type { Locality } from '../../model/service.js';
import type { envoy } from '../../../xds/generated/types.js';
import { MAX_UINT32, uint32 } from '../common/protobuf-values.js';
import { localityMatch, REGION_LABEL, SUBZONE_LABEL, ZONE_LABEL } from '../../../api/networking/locality.js';

type LocalityLbEndpoints = envoy.config.endpoint.v3.LocalityLbEndpoints;
type LbEndpoint = envoy.config.endpoint.v3.LbEndpoint;

/** What the calling proxy's EDS depends on when a locality load-balancer setting applies. */
export interface LocalityLbInput {
  readonly proxyLocality: Locality;
  readonly proxyLabels: Readonly<Record<string, string>>;
  readonly setting: LocalityLoadBalancerSetting;
  /** The DestinationRule sets outlierDetection: without it Istio applies no failover (Envoy would never leave priority 0). */
  readonly enableFailover: boolean;
}

/** Endpoints of one locality before priorities: each with its labels (for failoverPriority) and weight. */
export interface LocalityGroup {
  readonly locality: Locality;
  readonly endpoints: ReadonlyArray<{ readonly labels: Readonly<Record<string, string>>; readonly lb: LbEndpoint; readonly weight: number }>;
}

/**
 * Istio's GetLocalityLbSetting: the DestinationRule's setting wins over the mesh's; either one with `enabled: false`
 * turns locality load balancing off (the mesh default is `{ enabled: true }`).
 */
export function effectiveLocalityLbSetting(mesh: LocalityLoadBalancerSetting | undefined, rule: LocalityLoadBalancerSetting | undefined): LocalityLoadBalancerSetting | undefined {
  const setting = rule ?? mesh;
  if (!setting || setting.enabled === false) return undefined;
  return setting;
}

/**
 * Istio's LbPriority: 0 when region, zone and subzone equal the proxy's, 1 for region and zone, 2 for region only,
 * 3 for another region.
 */
export function lbPriority(proxy: Locality, endpoint: Locality): number {
  if (proxy.region !== endpoint.region) return 3;
  if (proxy.zone !== endpoint.zone) return 2;
  return proxy.subzone === endpoint.subzone ? 0 : 1;
}

/**
 * The locality groups as LocalityLbEndpoints for this proxy: `distribute` sets each locality's weight (and drops the
 * localities it gives none); otherwise, when failover is enabled, each gets a priority by failoverPriority labels
 * and/or proximity with `failover` region re-ranking, compacted to 0..N. Istio applies one or the other, never both.
 */
export function applyLocalityLoadBalancer(groups: readonly LocalityGroup[], input: LocalityLbInput): LocalityLbEndpoints[] {
  const { setting } = input;
  let entries: Entry[] = groups.map((g) => entry(g.locality, g.endpoints, 0));
  if (setting.distribute && setting.distribute.length > 0) {
    entries = applyLocalityWeights(entries, input.proxyLocality, setting.distribute);
  } else if (input.enableFailover) {
    if (setting.failoverPriority && setting.failoverPriority.length > 0) {
      entries = applyFailoverPriorities(groups, input, setting.failoverPriority);
      if (setting.failover && setting.failover.length > 0) entries = applyLocalityFailover(entries, input.proxyLocality, setting.failover);
    } else {
      entries = applyLocalityFailover(entries, input.proxyLocality, setting.failover ?? []);
    }
  }
  // Stable bytes for stable versions: by priority, then locality, as the groups came (already sorted by locality).
  return entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.priority - b.e.priority || a.i - b.i)
    .map(({ e }) => toLocalityLbEndpoints(e));
}

/** One locality at priority 0, weighted by the sum of its endpoints' weights: the assignment when no locality setting applies. */
export function localityLbEndpoints(group: LocalityGroup): LocalityLbEndpoints {
  return toLocalityLbEndpoints(entry(group.locality, group.endpoints, 0));
}

interface Entry {
  readonly locality: Locality;
  readonly endpoints: LocalityGroup['endpoints'];
  weight: number;
  priority: number;
}

function entry(locality: Locality, endpoints: LocalityGroup['endpoints'], priority: number): Entry {
  let weight = 0;
  for (const e of endpoints) weight = Math.min(MAX_UINT32, weight + e.weight);
  return { locality, endpoints, weight, priority };
}

function toLocalityLbEndpoints(e: Entry): LocalityLbEndpoints {
  const out: LocalityLbEndpoints = {
    locality: envoyLocality(e.locality),
    lb_endpoints: e.endpoints.map((x) => x.lb),
    load_balancing_weight: uint32(e.weight),
  };
  if (e.priority > 0) out.priority = e.priority;
  return out;
}

/**
 * Istio's applyLocalityFailover: the proximity priority (0-3) of each locality; another region that is not the
 * `failover.to` of the proxy's region drops to 4. Any priority already set (failoverPriority) counts first (×5).
 * Then priorities are compacted to consecutive integers, as Envoy requires.
 */
function applyLocalityFailover(entries: Entry[], proxy: Locality, failover: NonNullable<LocalityLoadBalancerSetting['failover']>): Entry[] {
  for (const e of entries) {
    let priority = lbPriority(proxy, e.locality);
    if (priority === 3) {
      const rule = failover.find((f) => f.from === proxy.region);
      if (rule && e.locality.region !== rule.to) priority = 4;
    }
    e.priority = e.priority * 5 + priority;
  }
  return compact(entries);
}

/**
 * Istio's applyFailoverPriorities: an endpoint's priority is how early its labels stop matching the proxy's along
 * `failoverPriority` (all match: 0; the first differs: the list's length). A `key=value` entry compares with that
 * value instead of the proxy's. Each locality splits into one entry per priority. Without proxy labels nothing applies.
 */
function applyFailoverPriorities(groups: readonly LocalityGroup[], input: LocalityLbInput, failoverPriority: readonly string[]): Entry[] {
  const proxyLabels = withTopologyLabels(input.proxyLabels, input.proxyLocality);
  const rules = failoverPriority.map((item) => {
    const eq = item.indexOf('=');
    // A label both lack matches, as in Istio (an absent label reads as "").
    return eq === -1 ? { key: item, value: proxyLabels[item] ?? '' } : { key: item.slice(0, eq), value: item.slice(eq + 1) };
  });
  const out: Entry[] = [];
  for (const group of groups) {
    const byPriority = new Map<number, Array<LocalityGroup['endpoints'][number]>>();
    for (const endpoint of group.endpoints) {
      const labels = withTopologyLabels(endpoint.labels, group.locality);
      let priority = rules.length;
      for (const { key, value } of rules) {
        if ((labels[key] ?? '') !== value) break;
        priority--;
      }
      byPriority.set(priority, [...(byPriority.get(priority) ?? []), endpoint]);
    }
    for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) out.push(entry(group.locality, byPriority.get(priority)!, priority));
  }
  return compact(out);
}

/**
 * Istio's applyLocalityWeights: the first `distribute` rule whose `from` matches the proxy's locality gives each
 * matching destination locality its share (split among the localities a wildcard matches, in proportion to their own
 * weights, rounded up); localities it names none of get no traffic.
 */
function applyLocalityWeights(entries: Entry[], proxy: Locality, distribute: NonNullable<LocalityLoadBalancerSetting['distribute']>): Entry[] {
  const rule = distribute.find((d) => d.from !== undefined && localityMatch(proxy, d.from));
  if (!rule) return entries;
  const unmatched = new Set(entries);
  for (const [destination, weight] of Object.entries(rule.to ?? {})) {
    const matched = entries.filter((e) => unmatched.has(e) && localityMatch(e.locality, destination));
    let total = 0;
    for (const e of matched) total += e.weight;
    for (const e of matched) {
      unmatched.delete(e);
      const share = total > 0 ? (e.weight * weight) / total : 0;
      if (share > 0) e.weight = Math.ceil(share);
    }
  }
  return entries.filter((e) => !unmatched.has(e));
}

/** Priorities renumbered 0..N-1 in order, as Envoy requires consecutive priorities. */
function compact(entries: Entry[]): Entry[] {
  const used = [...new Set(entries.map((e) => e.priority))].sort((a, b) => a - b);
  const rank = new Map(used.map((p, i) => [p, i]));
  for (const e of entries) e.priority = rank.get(e.priority)!;
  return entries;
}

/** Labels plus the topology labels of `locality` (endpoints and proxies carry them in Kubernetes). */
function withTopologyLabels(labels: Readonly<Record<string, string>>, locality: Locality): Readonly<Record<string, string>> {
  return {
    ...(locality.region ? { [REGION_LABEL]: locality.region } : {}),
    ...(locality.zone ? { [ZONE_LABEL]: locality.zone } : {}),
    ...(locality.subzone ? { [SUBZONE_LABEL]: locality.subzone } : {}),
    ...labels,
  };
}

export function envoyLocality(locality: Locality): envoy.config.core.v3.Locality {
  const out: envoy.config.core.v3.Locality = {};
  if (locality.region) out.region = locality.region;
  if (locality.zone) out.zone = locality.zone;
  if (locality.subzone) out.sub_zone = locality.subzone;
  return out;
}
