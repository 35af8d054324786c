// Prometheus text in the shape of Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds), for the dashboard's tests.

/** Istio's default istio_request_duration_milliseconds buckets. */
export const ISTIO_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

export interface FixtureSeries {
  readonly reporter: 'source' | 'destination';
  readonly source: string;
  readonly sourceVersion: string;
  readonly destination: string;
  readonly destinationVersion: string;
  readonly code: number;
  readonly mtls: boolean;
  /** Requests so far. */
  count: number;
  /** Each request's duration (ms) as bucket counts: cumulative counts are derived from these. */
  readonly durations: Map<number, number>;
}

export function series(partial: Omit<FixtureSeries, 'count' | 'durations' | 'reporter' | 'mtls'> & Partial<Pick<FixtureSeries, 'reporter' | 'mtls'>>): FixtureSeries {
  return { reporter: 'destination', mtls: true, ...partial, count: 0, durations: new Map() };
}

/** Records `n` requests that each took `ms`. */
export function record(s: FixtureSeries, n: number, ms: number): void {
  s.count += n;
  s.durations.set(ms, (s.durations.get(ms) ?? 0) + n);
}

function labels(s: FixtureSeries): string {
  const l: Record<string, string> = {
    reporter: s.reporter,
    source_workload: `${s.source}-${s.sourceVersion}`,
    source_workload_namespace: 'default',
    source_principal: s.mtls ? `spiffe://cluster.local/ns/default/sa/bookinfo-${s.source}` : 'unknown',
    source_app: s.source,
    source_version: s.sourceVersion,
    source_canonical_service: s.source,
    source_canonical_revision: s.sourceVersion,
    destination_workload: `${s.destination}-${s.destinationVersion}`,
    destination_workload_namespace: 'default',
    destination_app: s.destination,
    destination_version: s.destinationVersion,
    destination_service: `${s.destination}.default.svc.cluster.local`,
    destination_service_name: s.destination,
    destination_service_namespace: 'default',
    destination_canonical_service: s.destination,
    request_protocol: 'http',
    response_code: String(s.code),
    grpc_response_status: '',
    response_flags: '-',
    connection_security_policy: s.reporter === 'destination' ? (s.mtls ? 'mutual_tls' : 'none') : 'unknown',
  };
  return Object.entries(l).map(([k, v]) => `${k}="${v}"`).join(',');
}

/** The /stats/prometheus text of a proxy reporting these series. */
export function istioStatsText(all: readonly FixtureSeries[]): string {
  const out = ['# TYPE istio_requests_total counter'];
  for (const s of all) out.push(`istio_requests_total{${labels(s)}} ${s.count}`);
  out.push('# TYPE istio_request_duration_milliseconds histogram');
  for (const s of all) {
    const l = labels(s);
    for (const le of ISTIO_BUCKETS) {
      let c = 0;
      for (const [ms, n] of s.durations) if (ms <= le) c += n;
      out.push(`istio_request_duration_milliseconds_bucket{${l},le="${le}"} ${c}`);
    }
    out.push(`istio_request_duration_milliseconds_bucket{${l},le="+Inf"} ${s.count}`);
    let sum = 0;
    for (const [ms, n] of s.durations) sum += ms * n;
    out.push(`istio_request_duration_milliseconds_sum{${l}} ${sum}`);
    out.push(`istio_request_duration_milliseconds_count{${l}} ${s.count}`);
  }
  return `${out.join('\n')}\n`;
}
