// The service graph from Istio's standard metrics: nodes are canonical services, edges carry rps, 5xx rate, p99 and mTLS.
import type { Sample } from './prometheus-text.js';

export const REQUESTS_TOTAL = 'istio_requests_total';
export const DURATION_BUCKET = 'istio_request_duration_milliseconds_bucket';

/** The labels the graph groups by; also the `by (...)` of the PromQL queries when a Prometheus server is the source. */
export const GRAPH_LABELS = [
  'reporter',
  'source_canonical_service',
  'source_app',
  'source_workload',
  'source_workload_namespace',
  'source_version',
  'destination_canonical_service',
  'destination_app',
  'destination_workload',
  'destination_workload_namespace',
  'destination_version',
  'destination_service',
  'response_code',
  'connection_security_policy',
] as const;

export interface TrafficEdge {
  readonly source: string;
  readonly destination: string;
  /** destination_service values seen (the FQDNs the callers addressed). */
  readonly destinationServices: readonly string[];
  /** Requests in the window. */
  readonly requests: number;
  /** Requests per second over the window; null until two scrapes are apart. */
  readonly rps: number | null;
  /** Share of the window's requests answered 5xx (0..1); null with no requests. */
  readonly errorRate: number | null;
  /** 99th percentile of istio_request_duration_milliseconds in the window, interpolated as histogram_quantile does. */
  readonly p99Ms: number | null;
  /** Some of the edge's requests arrived over mutual TLS (connection_security_policy="mutual_tls"). */
  readonly mtls: boolean;
  /** Which reporter's series the edge is counted from: destination when the server side reports, else source. */
  readonly reporter: 'destination' | 'source';
}

export interface ServiceNode {
  readonly id: string;
  readonly namespace: string;
  readonly versions: readonly string[];
  readonly workloads: readonly string[];
}

export interface TrafficGraph {
  readonly nodes: readonly ServiceNode[];
  readonly edges: readonly TrafficEdge[];
  readonly windowSeconds: number | null;
}

/** A scrape of one target at one time. */
export interface Snapshot {
  readonly at: number;
  readonly samples: readonly Sample[];
}

/**
 * The counter increase of every graph series between two scrapes of the same target. A series that is new in
 * `latest` started from zero; one that went down was reset (the proxy restarted), so its whole value is the increase.
 */
export function counterIncreases(earlier: Snapshot | undefined, latest: Snapshot): Sample[] {
  const before = new Map<string, number>();
  for (const s of earlier?.samples ?? []) if (isGraphSeries(s.name)) before.set(seriesKey(s), s.value);
  const out: Sample[] = [];
  for (const s of latest.samples) {
    if (!isGraphSeries(s.name)) continue;
    const prior = before.get(seriesKey(s)) ?? 0;
    out.push({ name: s.name, labels: s.labels, value: s.value >= prior ? s.value - prior : s.value });
  }
  return out;
}

function isGraphSeries(name: string): boolean {
  return name === REQUESTS_TOTAL || name === DURATION_BUCKET;
}

function seriesKey(s: Sample): string {
  return `${s.name}{${Object.keys(s.labels).sort().map((k) => `${k}=${JSON.stringify(s.labels[k])}`).join(',')}}`;
}

function nodeName(labels: Readonly<Record<string, string>>, side: 'source' | 'destination'): string {
  for (const key of [`${side}_canonical_service`, `${side}_app`, `${side}_workload`]) {
    const v = labels[key];
    if (v && v !== 'unknown') return v;
  }
  if (side === 'destination') {
    const svc = labels['destination_service_name'] ?? labels['destination_service'];
    if (svc && svc !== 'unknown') return svc.split('.')[0]!;
  }
  return 'unknown';
}

interface EdgeAcc {
  source: string;
  destination: string;
  services: Set<string>;
  requests: number;
  errors: number;
  mtls: boolean;
  buckets: Map<number, number>;
}

interface NodeAcc {
  namespace: string;
  versions: Set<string>;
  workloads: Set<string>;
}

/** Builds the graph from increases over a window of `seconds` (null: cumulative values, no rate). */
export function buildTrafficGraph(increases: readonly Sample[], seconds: number | null): TrafficGraph {
  const byReporter = { destination: new Map<string, EdgeAcc>(), source: new Map<string, EdgeAcc>() };
  const nodes = new Map<string, NodeAcc>();
  const touchNode = (labels: Readonly<Record<string, string>>, side: 'source' | 'destination'): string => {
    const id = nodeName(labels, side);
    let n = nodes.get(id);
    if (!n) nodes.set(id, (n = { namespace: '', versions: new Set(), workloads: new Set() }));
    const ns = labels[`${side}_workload_namespace`] ?? (side === 'destination' ? labels['destination_service_namespace'] : undefined);
    if (ns && ns !== 'unknown' && !n.namespace) n.namespace = ns;
    const version = labels[`${side}_version`];
    if (version && version !== 'unknown') n.versions.add(version);
    const workload = labels[`${side}_workload`];
    if (workload && workload !== 'unknown') n.workloads.add(workload);
    return id;
  };
  for (const s of increases) {
    const reporter = s.labels['reporter'] === 'source' ? 'source' : 'destination';
    const source = touchNode(s.labels, 'source');
    const destination = touchNode(s.labels, 'destination');
    const key = `${source}\u0000${destination}`;
    const edges = byReporter[reporter];
    let e = edges.get(key);
    if (!e) edges.set(key, (e = { source, destination, services: new Set(), requests: 0, errors: 0, mtls: false, buckets: new Map() }));
    const svc = s.labels['destination_service'];
    if (svc && svc !== 'unknown') e.services.add(svc);
    if (s.name === REQUESTS_TOTAL) {
      e.requests += s.value;
      if (/^5\d\d$/.test(s.labels['response_code'] ?? '')) e.errors += s.value;
      if (s.labels['connection_security_policy'] === 'mutual_tls' && s.value > 0) e.mtls = true;
    } else {
      const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
      if (!Number.isNaN(le)) e.buckets.set(le, (e.buckets.get(le) ?? 0) + s.value);
    }
  }
  const edges: TrafficEdge[] = [];
  for (const [key, d] of byReporter.destination) edges.push(finish(d, 'destination', seconds, byReporter.source.get(key)));
  for (const [key, s] of byReporter.source) if (!byReporter.destination.has(key)) edges.push(finish(s, 'source', seconds, undefined));
  edges.sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination));
  return {
    nodes: [...nodes].map(([id, n]) => ({ id, namespace: n.namespace, versions: [...n.versions].sort(), workloads: [...n.workloads].sort() })).sort((a, b) => a.id.localeCompare(b.id)),
    edges,
    windowSeconds: seconds,
  };
}

function finish(e: EdgeAcc, reporter: 'destination' | 'source', seconds: number | null, other: EdgeAcc | undefined): TrafficEdge {
  const services = new Set([...e.services, ...(other?.services ?? [])]);
  return {
    source: e.source,
    destination: e.destination,
    destinationServices: [...services].sort(),
    requests: e.requests,
    rps: seconds && seconds > 0 ? e.requests / seconds : null,
    errorRate: e.requests > 0 ? e.errors / e.requests : null,
    p99Ms: histogramQuantile(0.99, e.buckets),
    mtls: e.mtls,
    reporter,
  };
}

/** Prometheus's histogram_quantile over cumulative bucket counts keyed by upper bound (`le`). */
export function histogramQuantile(q: number, buckets: ReadonlyMap<number, number>): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  if (sorted.length < 2 || sorted[sorted.length - 1]![0] !== Infinity) return null;
  const total = sorted[sorted.length - 1]![1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < sorted.length; i++) {
    const [le, count] = sorted[i]!;
    if (count >= rank) {
      // Past the last finite bucket: the highest finite bound is the best answer, as in Prometheus.
      if (le === Infinity) return sorted[sorted.length - 2]![0];
      if (i === 0 && le <= 0) return le;
      return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = le;
    lowerCount = count;
  }
  return null;
}
