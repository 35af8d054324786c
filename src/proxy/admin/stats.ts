// The proxy's stats as Envoy names them (cluster.<name>.upstream_rq_total …), printed as /stats text or JSON and as Prometheus with Envoy's tag extraction.
//
// Stats are read from the live objects when a page is asked for (no per-request bookkeeping here):
// clusters' ClusterStats, listeners' and HCMs' counters, and the server's own gauges.
import type { ClusterStats } from '../upstream/types.js';

export type StatKind = 'counter' | 'gauge' | 'histogram';

export interface StatSample {
  /** Envoy's dotted name: `cluster.outbound|9080||reviews.upstream_rq_total`. */
  readonly name: string;
  readonly value: number;
  readonly kind: StatKind;
  /** Prometheus: the metric name after tag extraction (without the `envoy_` prefix) and its labels. */
  readonly metric: string;
  readonly labels: readonly (readonly [string, string])[];
  /**
   * A metric exposed under its own Prometheus name (Istio's istio_*: no `envoy_` prefix, histograms as
   * `_bucket`/`_sum`/`_count` series): the family for `# TYPE`, with `metric` then the series' full name.
   */
  readonly family?: string;
}

const CLUSTER_GAUGES: ReadonlySet<string> = new Set(['upstream_rq_active', 'upstream_rq_pending_active', 'upstream_cx_active', 'membership_healthy', 'membership_total', 'membership_degraded', 'membership_excluded', 'health_check.healthy', 'health_check.degraded']);

function kindOf(stat: string): StatKind {
  return CLUSTER_GAUGES.has(stat) || stat.endsWith('_active') || stat.startsWith('membership_') ? 'gauge' : 'counter';
}

/** Envoy's response-code-class tag: upstream_rq_2xx → upstream_rq_xx { envoy_response_code_class="2" }. */
function codeClass(stat: string): { metric: string; label?: readonly [string, string] } {
  const match = /^(.*_rq_)([1-5])xx$/.exec(stat);
  return match ? { metric: `${match[1]}xx`, label: ['envoy_response_code_class', match[2]!] } : { metric: stat };
}

/** A stats collector: callers add scoped stats, then read the samples. */
export class StatsBuilder {
  private readonly samples: StatSample[] = [];
  private readonly ordered: StatSample[] = [];

  cluster(name: string, stats: Partial<ClusterStats> | Readonly<Record<string, number>>): void {
    for (const [stat, value] of Object.entries(stats)) {
      if (typeof value !== 'number') continue;
      const { metric, label } = codeClass(stat);
      this.samples.push({
        name: `cluster.${name}.${stat}`,
        value,
        kind: kindOf(stat),
        metric: `cluster_${metric}`,
        labels: label ? [label, ['envoy_cluster_name', name]] : [['envoy_cluster_name', name]],
      });
    }
  }

  http(prefix: string, stats: Readonly<Record<string, number>>): void {
    for (const [stat, value] of Object.entries(stats)) {
      const { metric, label } = codeClass(stat);
      this.samples.push({
        name: `http.${prefix}.${stat}`,
        value,
        kind: kindOf(stat),
        metric: `http_${metric}`,
        labels: label ? [label, ['envoy_http_conn_manager_prefix', prefix]] : [['envoy_http_conn_manager_prefix', prefix]],
      });
    }
  }

  /** `address` is Envoy's listener stat scope: `127.0.0.1_10000` (ip_port). */
  listener(address: string, stats: Readonly<Record<string, number>>): void {
    for (const [stat, value] of Object.entries(stats)) {
      this.samples.push({ name: `listener.${address}.${stat}`, value, kind: kindOf(stat), metric: `listener_${stat}`, labels: [['envoy_listener_address', address]] });
    }
  }

  /** An unscoped stat (`server.live`, `cluster_manager.cds.update_success`). */
  plain(name: string, value: number, kind: StatKind): void {
    this.samples.push({ name, value, kind, metric: name.replace(/\./g, '_'), labels: [] });
  }

  /** Samples of named families (Istio's metrics), kept in the given order after the sorted Envoy stats. */
  families(samples: readonly StatSample[]): void {
    this.ordered.push(...samples);
  }

  build(): StatSample[] {
    return [...this.samples].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).concat(this.ordered);
  }
}

/** Envoy's listener stat scope for a bound `ip:port`: `ip_port` (`[::1]:80` → `[::1]_80`). */
export function listenerStatScope(boundAddress: string): string {
  const colon = boundAddress.lastIndexOf(':');
  return colon < 0 ? boundAddress : `${boundAddress.slice(0, colon)}_${boundAddress.slice(colon + 1)}`;
}

export interface StatsQuery {
  /** A regular expression the name must match (Envoy's ?filter=). */
  readonly filter?: RegExp;
  /** Only stats that changed from zero (Envoy's ?usedonly; close enough for counters and gauges). */
  readonly usedOnly?: boolean;
}

function select(samples: readonly StatSample[], query: StatsQuery): StatSample[] {
  return samples.filter((s) => (!query.filter || query.filter.test(s.name)) && (!query.usedOnly || s.value !== 0));
}

/** Envoy's /stats text: `name: value`, one a line, sorted by name. */
export function formatStatsText(samples: readonly StatSample[], query: StatsQuery = {}): string {
  return select(samples, query).filter((s) => s.kind !== 'histogram').map((s) => `${s.name}: ${s.value}\n`).join('');
}

/** Envoy's /stats?format=json: { "stats": [ { "name", "value" } ] }. */
export function formatStatsJson(samples: readonly StatSample[], query: StatsQuery = {}): string {
  return `${JSON.stringify({ stats: select(samples, query).filter((s) => s.kind !== 'histogram').map((s) => ({ name: s.name, value: s.value })) }, null, 2)}\n`;
}

function sanitizeMetric(name: string): string {
  return `envoy_${name.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Envoy's /stats/prometheus: `# TYPE envoy_cluster_upstream_rq_total counter` then one sample per tagged series. */
export function formatPrometheus(samples: readonly StatSample[], query: StatsQuery = {}): string {
  const byMetric = new Map<string, StatSample[]>();
  for (const sample of select(samples, query)) {
    const metric = sample.family ?? sanitizeMetric(sample.metric);
    let list = byMetric.get(metric);
    if (!list) byMetric.set(metric, (list = []));
    list.push(sample);
  }
  let out = '';
  for (const metric of [...byMetric.keys()].sort()) {
    const list = byMetric.get(metric)!;
    out += `# TYPE ${metric} ${list[0]!.kind}\n`;
    for (const sample of list) {
      const labels = sample.labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      out += `${sample.family ? sample.metric : metric}${labels ? `{${labels}}` : ''} ${sample.value}\n`;
    }
    out += '\n';
  }
  return out;
}
