// Istio's standard HTTP metrics (istio_requests_total and the three histograms) kept per label set, with a cap on series per metric.
import type { StatSample } from '../../admin/stats.js';

/** Istio's label names, in the order Istio's stats plugin emits them. */
export const ISTIO_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
  'response_code',
  'grpc_response_status',
] as const;

export type IstioLabelName = (typeof ISTIO_LABELS)[number];
export type IstioLabels = Readonly<Record<IstioLabelName, string>>;

/** Istio's istio_request_duration_milliseconds buckets (stats plugin defaults). */
export const DURATION_BUCKETS_MS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
/** Istio's istio_request_bytes / istio_response_bytes buckets (1 … 10^9, powers of ten). */
export const BYTES_BUCKETS: readonly number[] = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** Series per metric before new label sets are dropped (and counted in istio_stats_series_dropped_total). */
export const DEFAULT_MAX_SERIES_PER_METRIC = 10000;

interface Series {
  readonly labels: readonly (readonly [string, string])[];
  requests: number;
  readonly duration: Histogram;
  readonly requestBytes: Histogram;
  readonly responseBytes: Histogram;
}

class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    // Non-cumulative per bucket; cumulated on exposition (cheaper on the request path).
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

export interface IstioRequestRecord {
  readonly labels: IstioLabels;
  readonly durationMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
}

/**
 * One proxy's Istio request metrics. All four metrics share label sets, so one series holds the counter and the
 * three histograms; the cap applies to distinct label sets (the same bound for every metric).
 */
export class IstioMetrics {
  private readonly series = new Map<string, Series>();
  private dropped = 0;

  constructor(readonly maxSeriesPerMetric: number = DEFAULT_MAX_SERIES_PER_METRIC) {}

  record(r: IstioRequestRecord): void {
    let key = '';
    for (const name of ISTIO_LABELS) key += `${r.labels[name]}\u0000`;
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= this.maxSeriesPerMetric) {
        this.dropped++;
        return;
      }
      s = {
        labels: ISTIO_LABELS.map((name) => [name, r.labels[name]] as const),
        requests: 0,
        duration: new Histogram(DURATION_BUCKETS_MS),
        requestBytes: new Histogram(BYTES_BUCKETS),
        responseBytes: new Histogram(BYTES_BUCKETS),
      };
      this.series.set(key, s);
    }
    s.requests++;
    s.duration.observe(r.durationMs);
    s.requestBytes.observe(r.requestBytes);
    s.responseBytes.observe(r.responseBytes);
  }

  /** Distinct label sets held. */
  get seriesCount(): number {
    return this.series.size;
  }

  /** Requests not recorded because their label set would have exceeded the cap. */
  get droppedCount(): number {
    return this.dropped;
  }

  /** The samples for the admin stats (Prometheus families named as Istio names them, without Envoy's prefix). */
  samples(): StatSample[] {
    const out: StatSample[] = [];
    for (const s of this.series.values()) {
      out.push({ name: statName('istio_requests_total', s.labels), value: s.requests, kind: 'counter', family: 'istio_requests_total', metric: 'istio_requests_total', labels: s.labels });
    }
    histogramSamples(out, 'istio_request_duration_milliseconds', this.series, (s) => s.duration);
    histogramSamples(out, 'istio_request_bytes', this.series, (s) => s.requestBytes);
    histogramSamples(out, 'istio_response_bytes', this.series, (s) => s.responseBytes);
    out.push({ name: 'istio_stats.series_dropped', value: this.dropped, kind: 'counter', family: 'istio_stats_series_dropped_total', metric: 'istio_stats_series_dropped_total', labels: [] });
    return out;
  }
}

/** Envoy's /stats name of an Istio metric: the metric then `label.value` pairs, dot-separated (as istiocustom.* stats). */
export function statName(metric: string, labels: readonly (readonly [string, string])[]): string {
  let name = `istiocustom.${metric}`;
  for (const [k, v] of labels) name += `.${k}.${v}`;
  return name;
}

function formatBound(bound: number): string {
  return String(bound);
}

function histogramSamples(out: StatSample[], family: string, series: ReadonlyMap<string, Series>, pick: (s: Series) => Histogram): void {
  for (const s of series.values()) {
    const h = pick(s);
    const name = statName(family, s.labels);
    let cumulative = 0;
    for (let i = 0; i < h.bounds.length; i++) {
      cumulative += h.counts[i]!;
      out.push({ name, value: cumulative, kind: 'histogram', family, metric: `${family}_bucket`, labels: [...s.labels, ['le', formatBound(h.bounds[i]!)]] });
    }
    out.push({ name, value: h.count, kind: 'histogram', family, metric: `${family}_bucket`, labels: [...s.labels, ['le', '+Inf']] });
    out.push({ name, value: h.sum, kind: 'histogram', family, metric: `${family}_sum`, labels: s.labels });
    out.push({ name, value: h.count, kind: 'histogram', family, metric: `${family}_count`, labels: s.labels });
  }
}
