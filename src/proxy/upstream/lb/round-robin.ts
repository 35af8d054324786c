// ROUND_ROBIN: plain rotation when weights are equal, Envoy's EDF weighted round robin otherwise.
import { EdfScheduler } from './edf-scheduler.js';
import { registerLoadBalancerPolicy, type HostPicker, type LbEnvironment } from './load-balancer-policy.js';
import { rejectUnsupported } from '../config-values.js';
import type { HostImpl } from '../host.js';

class RoundRobinPicker implements HostPicker {
  private index = 0;
  private readonly scheduler: EdfScheduler<number> | undefined;

  constructor(
    private readonly hosts: readonly HostImpl[],
    private readonly weights: readonly number[],
    env: LbEnvironment,
  ) {
    const weighted = weights.some((w) => w !== weights[0]);
    // Like Envoy, start at a random point so that many proxies do not hit the same host first.
    const start = Math.floor(env.random() * Math.max(1, hosts.length));
    if (weighted) {
      this.scheduler = new EdfScheduler<number>();
      weights.forEach((w, i) => {
        if (w > 0) this.scheduler!.add(i, w);
      });
      for (let i = 0; i < start; i++) this.scheduler.pickAndAdd((j) => this.weights[j]!);
    } else {
      this.index = start;
    }
  }

  pick(): HostImpl | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (this.scheduler) {
      const i = this.scheduler.pickAndAdd((j) => this.weights[j]!);
      return i === undefined ? undefined : this.hosts[i];
    }
    const host = this.hosts[this.index % n];
    this.index = (this.index + 1) % n;
    return host;
  }
}

registerLoadBalancerPolicy<null>({
  name: 'ROUND_ROBIN',
  configField: 'round_robin_lb_config',
  kind: 'per-source',
  compile(cluster, path, problems) {
    rejectUnsupported(cluster.round_robin_lb_config, [], `${path}.round_robin_lb_config`, problems);
    return null;
  },
  createPicker: (hosts, weights, _config, env) => new RoundRobinPicker(hosts, weights, env),
});
