// LEAST_REQUEST: power of N choices (choice_count, default 2) when weights are equal; EDF over weight/(active+1)^bias otherwise.
import { EdfScheduler } from './edf-scheduler.js';
import { registerLoadBalancerPolicy, type HostPicker, type LbEnvironment } from './load-balancer-policy.js';
import { rejectUnsupported, wrapped } from '../config-values.js';
import type { HostImpl } from '../host.js';

export interface LeastRequestConfig {
  readonly choiceCount: number;
  readonly activeRequestBias: number;
}

class LeastRequestPicker implements HostPicker {
  private readonly scheduler: EdfScheduler<number> | undefined;

  constructor(
    private readonly hosts: readonly HostImpl[],
    private readonly weights: readonly number[],
    private readonly config: LeastRequestConfig,
    private readonly env: LbEnvironment,
  ) {
    if (weights.some((w) => w !== weights[0])) {
      this.scheduler = new EdfScheduler<number>();
      weights.forEach((_w, i) => {
        const w = this.effectiveWeight(i);
        if (w > 0) this.scheduler!.add(i, w);
      });
    }
  }

  private effectiveWeight = (i: number): number => {
    const w = this.weights[i]!;
    const bias = this.config.activeRequestBias;
    if (bias === 0) return w;
    const active = this.hosts[i]!.stats.rqActive + 1;
    return bias === 1 ? w / active : w / Math.pow(active, bias);
  };

  pick(): HostImpl | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (this.scheduler) {
      const i = this.scheduler.pickAndAdd(this.effectiveWeight);
      return i === undefined ? undefined : this.hosts[i];
    }
    let candidate: HostImpl | undefined;
    for (let c = 0; c < this.config.choiceCount; c++) {
      const h = this.hosts[Math.floor(this.env.random() * n)]!;
      if (!candidate || h.stats.rqActive < candidate.stats.rqActive) candidate = h;
    }
    return candidate;
  }
}

registerLoadBalancerPolicy<LeastRequestConfig>({
  name: 'LEAST_REQUEST',
  configField: 'least_request_lb_config',
  kind: 'per-source',
  compile(cluster, path, problems) {
    const c = cluster.least_request_lb_config;
    const p = `${path}.least_request_lb_config`;
    rejectUnsupported(c, ['choice_count', 'active_request_bias'], p, problems);
    const choiceCount = wrapped(c?.choice_count, 2);
    if (choiceCount < 2) problems.push(`${p}.choice_count: must be at least 2, got ${choiceCount}`);
    // Trellis has no runtime layer: a runtime_key is never overridden, so default_value applies (as in Envoy without that key).
    const activeRequestBias = c?.active_request_bias?.default_value ?? 1;
    if (!(activeRequestBias >= 0)) problems.push(`${p}.active_request_bias.default_value: must be >= 0, got ${activeRequestBias}`);
    return { choiceCount, activeRequestBias };
  },
  createPicker: (hosts, weights, config, env) => new LeastRequestPicker(hosts, weights, config, env),
});
