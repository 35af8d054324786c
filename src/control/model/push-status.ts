// What one push's translation had to resolve (Istio's PushContext.ProxyStatus): conflicts and duplicates, by metric and key.

/**
 * istiod's per-push status gauges (pilot/pkg/model/push_context.go). Each reports how many distinct keys were added to
 * it while the push context was built and its proxies' config generated.
 */
export const PUSH_STATUS_METRICS = {
  /** Key: the proxy. Two services select one workload port with different protocols; the first one's protocol serves it. */
  pilot_conflict_inbound_listener: 'Number of conflicting inbound listeners.',
  /** Key: the listener. A TCP chain matching what an earlier TCP chain of that listener matches (the first service keeps it). */
  pilot_conflict_outbound_listener_tcp_over_current_tcp: 'Number of conflicting tcp listeners with current tcp listener.',
  /** Key: the listener. An address-less TCP service on a port an HTTP service holds (HTTP keeps the port). */
  pilot_conflict_outbound_listener_tcp_over_current_http: 'Number of conflicting wildcard tcp listeners with current wildcard http listener.',
  /** Key: the listener. An HTTP service on a port a TCP service holds; Trellis builds HTTP first, so HTTP is never the newcomer. */
  pilot_conflict_outbound_listener_http_over_current_tcp: 'Number of conflicting wildcard http listeners with current wildcard tcp listener.',
  /** Key: the cluster. Services of one host in several namespaces: one is picked, the others' clusters are duplicates. */
  pilot_duplicate_envoy_clusters: 'Duplicate envoy clusters caused by service entries with same hostname',
  /** Key: the virtual host. A virtual host whose name or some of whose domains an earlier one of the route configuration has. */
  pilot_vservice_dup_domain: 'Virtual services with dup domains.',
  /** Key: the host. DestinationRules of one namespace for one host merged with a subset name twice (the first wins). */
  pilot_destrule_subsets: 'Duplicate subsets across destination rules for same host',
} as const;

export type PushStatusMetric = keyof typeof PUSH_STATUS_METRICS;

export interface PushStatusEntry {
  /** The proxy whose generation found it, empty when the push context itself did. */
  readonly proxy: string;
  readonly message: string;
}

/** Adds a case to a metric: what listener, cluster and route builders are given to report what they resolved. */
export type PushStatusReporter = (metric: PushStatusMetric, key: string, message: string) => void;

export class PushStatus {
  private readonly byMetric = new Map<PushStatusMetric, Map<string, PushStatusEntry>>();
  private readonly listeners = new Set<() => void>();

  /** Records a case; the same key again replaces it (Istio counts keys, not occurrences: every proxy of a scope hits the same conflict). */
  add(metric: PushStatusMetric, key: string, proxy: string, message: string): void {
    let entries = this.byMetric.get(metric);
    if (!entries) this.byMetric.set(metric, (entries = new Map()));
    const isNew = !entries.has(key);
    entries.set(key, { proxy, message });
    if (isNew) for (const listener of this.listeners) listener();
  }

  /** Distinct keys of `metric`: the gauge's value. */
  count(metric: PushStatusMetric): number {
    return this.byMetric.get(metric)?.size ?? 0;
  }

  /** `{ metric: { key: { proxy, message } } }`, as istiod's /debug/push_status shows ProxyStatus. */
  toJSON(): Record<string, Record<string, PushStatusEntry>> {
    const out: Record<string, Record<string, PushStatusEntry>> = {};
    for (const [metric, entries] of this.byMetric) out[metric] = Object.fromEntries(entries);
    return out;
  }

  /** Calls `listener` after each new key; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The reporter for one proxy's generation. */
  reporter(proxy: string): PushStatusReporter {
    return (metric, key, message) => this.add(metric, key, proxy, message);
  }
}
