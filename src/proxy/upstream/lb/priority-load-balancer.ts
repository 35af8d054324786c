// Envoy's priority and locality layer over a policy: priority load with overprovisioning and spill-over, panic threshold,
// degraded hosts, locality weights, and re-picking to avoid hosts (retry_host_predicate).
import { EdfScheduler } from './edf-scheduler.js';
import type { HostPicker, LbEnvironment, LoadBalancerPolicy } from './load-balancer-policy.js';
import type { HostImpl } from '../host.js';
import type { HostSet, LocalityGroup, PrioritySet } from '../priority-set.js';
import type { LoadBalancerContext } from '../types.js';

export interface PriorityLoadBalancerOptions {
  /** common_lb_config.healthy_panic_threshold in percent (Envoy default 50; 0 disables panic mode). */
  readonly panicThreshold: number;
  /** common_lb_config.locality_weighted_lb_config is set. */
  readonly localityWeighted: boolean;
}

/** One way of choosing inside a priority: directly from a list, or a locality first (EDF over effective weights). */
interface Source {
  pick(context: LoadBalancerContext, attempt: number): HostImpl | undefined;
}

const EMPTY: Source = { pick: () => undefined };

interface PriorityState {
  healthy: Source;
  degraded: Source;
  all: Source;
}

/** Percent of a host set usable for traffic: min(100, overprovisioning × eligible / total), Envoy's per-priority health. */
function availability(eligible: number, total: number, overprovisioningFactor: number): number {
  if (total === 0) return 0;
  return Math.min(100, Math.floor((eligible * overprovisioningFactor) / total));
}

/** Envoy's isHostSetInPanic: healthy plus degraded hosts are below the threshold percent (an empty set is in panic). */
function inPanic(hs: HostSet, panicThreshold: number): boolean {
  if (hs.hosts.length === 0) return panicThreshold > 0;
  return (100 * (hs.healthy.length + hs.degraded.length)) / hs.hosts.length < panicThreshold;
}

/**
 * Computes Envoy's healthy and degraded priority loads (sum 100) and per-priority panic flags
 * (LoadBalancerBase::recalculatePerPriorityState and recalculatePerPriorityPanic): a priority is only in panic when the
 * priorities together cannot take all traffic (normalised total availability below 100) — while lower priorities can
 * absorb the spill-over, unhealthy hosts are never used. When every priority is in panic, load follows the host counts.
 */
export function computePriorityLoad(
  set: PrioritySet,
  panicThreshold: number,
  excluded?: ReadonlySet<number>,
): { healthyLoad: number[]; degradedLoad: number[]; panic: boolean[] } {
  const n = set.hostSets.length;
  // A retry's excluded priorities (retry_priority previous_priorities) count as having nothing available.
  const avail = (p: number, eligible: number, total: number): number => (excluded?.has(p) ? 0 : availability(eligible, total, set.overprovisioningFactor));
  const health = set.hostSets.map((hs, p) => avail(p, hs.healthy.length, hs.hosts.length));
  const degraded = set.hostSets.map((hs, p) => avail(p, hs.degraded.length, hs.hosts.length));
  const healthyLoad = new Array<number>(n).fill(0);
  const degradedLoad = new Array<number>(n).fill(0);
  let total = 0;
  for (let i = 0; i < n; i++) total += health[i]! + degraded[i]!;
  const normalizedTotal = Math.min(100, total);
  if (normalizedTotal === 0 && panicThreshold === 0) {
    // Panic disabled and nothing available: the load must sum to 100, so it sits on P0, where no host will be found (503 UH).
    if (n > 0) healthyLoad[0] = 100;
    return { healthyLoad, degradedLoad, panic: new Array<boolean>(n).fill(false) };
  }
  if (normalizedTotal > 0) {
    const distribute = (load: number[], avail: number[], totalLoad: number): { first: number | undefined; rest: number } => {
      let first: number | undefined;
      for (let i = 0; i < n; i++) {
        if (first === undefined && avail[i]! > 0) first = i;
        load[i] = Math.min(totalLoad, Math.floor((avail[i]! * 100) / normalizedTotal));
        totalLoad -= load[i]!;
      }
      return { first, rest: totalLoad };
    };
    const h = distribute(healthyLoad, health, 100);
    const d = distribute(degradedLoad, degraded, h.rest);
    if (d.rest > 0) {
      if (h.first !== undefined) healthyLoad[h.first]! += d.rest;
      else if (d.first !== undefined) degradedLoad[d.first]! += d.rest;
    }
  }
  const panic = set.hostSets.map((hs) => (normalizedTotal === 100 ? false : inPanic(hs, panicThreshold)));
  if (n > 0 && panic.every((p) => p)) {
    // Total panic (Envoy's recalculateLoadInTotalPanic): each priority gets its share of all hosts, healthy or not.
    const totalHosts = set.hostSets.reduce((a, hs) => a + hs.hosts.length, 0);
    healthyLoad.fill(0);
    degradedLoad.fill(0);
    if (totalHosts === 0) {
      healthyLoad[0] = 100;
    } else {
      let rest = 100;
      let first = -1;
      set.hostSets.forEach((hs, i) => {
        if (first < 0 && hs.hosts.length > 0) first = i;
        healthyLoad[i] = Math.floor((100 * hs.hosts.length) / totalHosts);
        rest -= healthyLoad[i]!;
      });
      healthyLoad[first]! += rest;
    }
  }
  return { healthyLoad, degradedLoad, panic };
}

export class PriorityLoadBalancer {
  private readonly healthyLoad: number[];
  private readonly degradedLoad: number[];
  private readonly panic: boolean[];
  private readonly states: PriorityState[];

  constructor(
    readonly prioritySet: PrioritySet,
    private readonly policy: LoadBalancerPolicy,
    private readonly config: unknown,
    private readonly env: LbEnvironment,
    private readonly options: PriorityLoadBalancerOptions,
  ) {
    const load = computePriorityLoad(prioritySet, options.panicThreshold);
    this.healthyLoad = load.healthyLoad;
    this.degradedLoad = load.degradedLoad;
    this.panic = load.panic;
    this.states = prioritySet.hostSets.map((hs, p) => this.buildPriority(hs, this.panic[p]!));
  }

  private list(hosts: readonly HostImpl[]): Source {
    if (hosts.length === 0) return EMPTY;
    return this.policy.createPicker(hosts, hosts.map((h) => h.weight), this.config, this.env);
  }

  private buildPriority(hs: HostSet, panic: boolean): PriorityState {
    if (this.policy.kind === 'hash') {
      // One consistent-hash picker per priority: over all hosts in panic, healthy ones otherwise; locality weights scale host weights.
      const hosts = panic ? hs.hosts : hs.healthy;
      const weights = this.hashWeights(hs, hosts);
      const picker = hosts.length === 0 ? EMPTY : this.policy.createPicker(hosts, weights, this.config, this.env);
      const degradedPicker = panic || hs.degraded.length === 0 ? picker : this.policy.createPicker(hs.degraded, this.hashWeights(hs, hs.degraded), this.config, this.env);
      return { healthy: picker, degraded: degradedPicker, all: picker };
    }
    const all = this.list(hs.hosts);
    if (!this.options.localityWeighted) return { healthy: this.list(hs.healthy), degraded: this.list(hs.degraded), all };
    return { healthy: this.localitySource(hs, 'healthy'), degraded: this.localitySource(hs, 'degraded'), all };
  }

  private hashWeights(hs: HostSet, hosts: readonly HostImpl[]): number[] {
    if (!this.options.localityWeighted) return hosts.map((h) => h.weight);
    const chosen = new Set(hosts);
    let localityTotal = 0;
    const share = new Map<LocalityGroup, number>();
    for (const g of hs.localities) {
      const sum = g.hosts.filter((h) => chosen.has(h)).reduce((a, h) => a + h.weight, 0);
      if (sum > 0 && g.weight > 0) {
        share.set(g, sum);
        localityTotal += g.weight;
      }
    }
    return hosts.map((h) => {
      const g = hs.localities.find((l) => l.hosts.includes(h))!;
      const sum = share.get(g);
      if (!sum) return 0;
      return (h.weight / sum) * (g.weight / localityTotal);
    });
  }

  /** Locality chosen by EDF over weight × min(1, overprovisioning × eligible/total) (Envoy's effective locality weight). */
  private localitySource(hs: HostSet, kind: 'healthy' | 'degraded'): Source {
    const scheduler = new EdfScheduler<number>();
    const pickers: Source[] = [];
    const of = this.prioritySet.overprovisioningFactor / 100;
    hs.localities.forEach((g, i) => {
      const eligible = g[kind];
      pickers.push(this.list(eligible));
      const effective = g.weight * Math.min(1, (of * eligible.length) / g.hosts.length);
      if (effective > 0) scheduler.add(i, effective);
    });
    if (scheduler.size === 0) return EMPTY;
    const weights = hs.localities.map((g) => g.weight * Math.min(1, (of * g[kind].length) / g.hosts.length));
    return {
      pick: (context, attempt) => {
        const i = scheduler.pickAndAdd((j) => weights[j]!);
        return i === undefined ? undefined : pickers[i]!.pick(context, attempt);
      },
    };
  }

  /**
   * The priority load for a retry leaving out `excluded` priorities (Envoy's PreviousPrioritiesRetryPriority); the
   * normal load when that leaves nothing available, as Envoy then forgets the attempted priorities.
   */
  private retryLoad(excluded: ReadonlySet<number>): { healthyLoad: readonly number[]; degradedLoad: readonly number[] } {
    const set = this.prioritySet;
    const anyLeft = set.hostSets.some((hs, p) => !excluded.has(p) && (hs.healthy.length > 0 || hs.degraded.length > 0));
    return anyLeft ? computePriorityLoad(set, this.options.panicThreshold, excluded) : { healthyLoad: this.healthyLoad, degradedLoad: this.degradedLoad };
  }

  /**
   * One pick over the given priority loads. A retry's loads (excluded priorities) are computed once per chooseHost,
   * not per re-pick: the host set does not change between them.
   */
  private chooseOnce(context: LoadBalancerContext, attempt: number, healthyLoad: readonly number[], degradedLoad: readonly number[]): HostImpl | undefined {
    const n = this.states.length;
    if (n === 0) return undefined;
    // Hash policies choose the priority from the hash, so the same key keeps the same priority.
    let point = this.policy.kind === 'hash' && context.hashKey !== undefined ? Number(context.hashKey % 100n) : Math.floor(this.env.random() * 100);
    for (let p = 0; p < n; p++) {
      if (point < healthyLoad[p]!) return this.fromPriority(p, 'healthy', context, attempt);
      point -= healthyLoad[p]!;
    }
    for (let p = 0; p < n; p++) {
      if (point < degradedLoad[p]!) return this.fromPriority(p, 'degraded', context, attempt);
      point -= degradedLoad[p]!;
    }
    return this.fromPriority(0, 'healthy', context, attempt);
  }

  private fromPriority(p: number, kind: 'healthy' | 'degraded', context: LoadBalancerContext, attempt: number): HostImpl | undefined {
    const state = this.states[p]!;
    if (this.panic[p]) return state.all.pick(context, attempt);
    return state[kind].pick(context, attempt);
  }

  /** Picks a host; when it is in avoidHosts, re-picks up to hostSelectionRetryMaxAttempts times (default 1), then keeps the last. */
  chooseHost(context: LoadBalancerContext): HostImpl | undefined {
    const excluded = context.excludedPriorities;
    // Locals rather than a destructured object: the common case (no exclusion) allocates nothing per pick.
    let healthyLoad: readonly number[] = this.healthyLoad;
    let degradedLoad: readonly number[] = this.degradedLoad;
    if (excluded !== undefined && excluded.size > 0) ({ healthyLoad, degradedLoad } = this.retryLoad(excluded));
    const avoid = context.avoidHosts;
    let host = this.chooseOnce(context, 0, healthyLoad, degradedLoad);
    if (!host || !avoid || avoid.size === 0 || !avoid.has(host)) return host;
    const max = context.hostSelectionRetryMaxAttempts ?? 1;
    for (let attempt = 1; attempt <= max; attempt++) {
      host = this.chooseOnce(context, attempt, healthyLoad, degradedLoad);
      if (!host || !avoid.has(host)) return host;
    }
    return host;
  }

  /** True when a priority is in panic (for admin and tests). */
  isPanic(priority: number): boolean {
    return this.panic[priority] ?? false;
  }

  get priorityLoad(): { healthy: readonly number[]; degraded: readonly number[] } {
    return { healthy: this.healthyLoad, degraded: this.degradedLoad };
  }
}

export type { HostPicker };
