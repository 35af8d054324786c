// The load-balancing policy extension point: one file per policy registers itself here under Envoy's lb_policy name.
import type { envoy } from '../../../xds/generated/types.js';
import type { HostImpl } from '../host.js';
import type { LoadBalancerContext } from '../types.js';

type Cluster = envoy.config.cluster.v3.Cluster;

/** Randomness a balancer draws from; tests pass a deterministic one. Returns a float in [0, 1). */
export interface LbEnvironment {
  random(): number;
}

/** Picks among one list of hosts (a priority's healthy hosts, one locality's, …); built when hosts change. */
export interface HostPicker {
  /** `attempt` > 0 when re-picking because the previous pick was in avoidHosts. */
  pick(context: LoadBalancerContext, attempt: number): HostImpl | undefined;
}

export interface LoadBalancerPolicy<C = unknown> {
  /** Envoy's Cluster.LbPolicy name (ROUND_ROBIN, LEAST_REQUEST, …). */
  readonly name: string;
  /** The Cluster field holding this policy's options (`ring_hash_lb_config`…); any other policy's field is refused. */
  readonly configField?: keyof Cluster;
  /**
   * 'per-source': one picker per host list, the priority and locality chosen first (Envoy's ZoneAwareLoadBalancerBase).
   * 'hash': one picker per priority over weighted hosts, the priority chosen from the request hash (ThreadAwareLoadBalancer).
   */
  readonly kind: 'per-source' | 'hash';
  /** Validates this policy's options, pushing `path.field: reason` problems; returns the compiled options. */
  compile(cluster: Cluster, path: string, problems: string[]): C;
  /** `weights[i]` is the weight of `hosts[i]` (host weight, times the locality's share for hash policies). */
  createPicker(hosts: readonly HostImpl[], weights: readonly number[], config: C, env: LbEnvironment): HostPicker;
}

const policies = new Map<string, LoadBalancerPolicy>();

export function registerLoadBalancerPolicy<C>(policy: LoadBalancerPolicy<C>): void {
  policies.set(policy.name, policy as LoadBalancerPolicy);
}

export function loadBalancerPolicy(name: string): LoadBalancerPolicy | undefined {
  return policies.get(name);
}

export function loadBalancerPolicyNames(): string[] {
  return [...policies.keys()];
}

/** Every policy's own config field, so a cluster can refuse the ones that do not belong to its policy. */
export function policyConfigFields(): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const p of policies.values()) if (p.configField) out.set(p.configField as string, p.name);
  return out;
}
