// Istio's standard TCP metrics (istio_tcp_sent_bytes_total, _received_bytes_total, _connections_opened_total,
// _connections_closed_total) per label set, with a cap on series, and the per-connection recorder tcp_proxy feeds.
import type { StatSample } from '../../admin/stats.js';
import { DEFAULT_MAX_SERIES_PER_METRIC, ISTIO_LABELS, statName, type IstioLabelName } from './metrics.js';

/** Istio's TCP metric labels: the request labels without response_code and grpc_response_status. */
export const TCP_LABELS = ISTIO_LABELS.filter((l) => l !== 'response_code' && l !== 'grpc_response_status');
export type TcpLabels = Readonly<Record<Exclude<IstioLabelName, 'response_code' | 'grpc_response_status'>, string>>;

interface TcpSeries {
  readonly labels: readonly (readonly [string, string])[];
  opened: number;
  closed: number;
  sent: number;
  received: number;
}

/** One proxy's TCP metrics, shown on /stats/prometheus beside the HTTP ones. */
export class IstioTcpMetrics {
  private readonly series = new Map<string, TcpSeries>();
  private dropped = 0;

  constructor(readonly maxSeries: number = DEFAULT_MAX_SERIES_PER_METRIC) {}

  /** The series of `labels`, created on first use; undefined (and counted) past the cap. */
  seriesOf(labels: TcpLabels): TcpSeries | undefined {
    let key = '';
    for (const name of TCP_LABELS) key += `${labels[name as keyof TcpLabels]}\u0000`;
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= this.maxSeries) {
        this.dropped++;
        return undefined;
      }
      s = { labels: TCP_LABELS.map((name) => [name, labels[name as keyof TcpLabels]] as const), opened: 0, closed: 0, sent: 0, received: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  /** A recorder for one connection; counts wait until its labels are known (the peer's metadata arrives first). */
  connection(): TcpConnectionRecorder {
    return new TcpConnectionRecorder(this);
  }

  get seriesCount(): number {
    return this.series.size;
  }

  samples(): StatSample[] {
    const out: StatSample[] = [];
    const family = (metric: string, pick: (s: TcpSeries) => number): void => {
      for (const s of this.series.values()) out.push({ name: statName(metric, s.labels), value: pick(s), kind: 'counter', family: metric, metric, labels: s.labels });
    };
    family('istio_tcp_sent_bytes_total', (s) => s.sent);
    family('istio_tcp_received_bytes_total', (s) => s.received);
    family('istio_tcp_connections_opened_total', (s) => s.opened);
    family('istio_tcp_connections_closed_total', (s) => s.closed);
    out.push({ name: 'istio_stats.tcp_series_dropped', value: this.dropped, kind: 'counter', family: 'istio_tcp_stats_series_dropped_total', metric: 'istio_tcp_stats_series_dropped_total', labels: [] });
    return out;
  }
}

/**
 * One connection's counts. Istio's plugin reports a connection once the peer is known; here the opening and the bytes
 * seen before that are held and added when `setLabels` is called (or at close, with whatever labels were set then).
 * sent = bytes to the downstream, received = bytes from it, as Envoy's connection byte counters.
 */
export class TcpConnectionRecorder {
  private series: TcpSeries | undefined;
  private labels: TcpLabels | undefined;
  private pendingSent = 0;
  private pendingReceived = 0;
  private opened = false;
  private closed = false;

  constructor(private readonly metrics: IstioTcpMetrics) {}

  /** The connection's labels are known: count it opened, with the bytes so far. Later calls are ignored. */
  setLabels(labels: TcpLabels): void {
    if (this.labels || this.closed) return;
    this.labels = labels;
    this.series = this.metrics.seriesOf(labels);
    if (!this.series) return;
    this.series.opened++;
    this.opened = true;
    this.series.sent += this.pendingSent;
    this.series.received += this.pendingReceived;
    this.pendingSent = this.pendingReceived = 0;
  }

  sent(bytes: number): void {
    if (this.series) this.series.sent += bytes;
    else if (!this.labels) this.pendingSent += bytes;
  }

  received(bytes: number): void {
    if (this.series) this.series.received += bytes;
    else if (!this.labels) this.pendingReceived += bytes;
  }

  /** The connection closed: closed once; a connection whose labels never came is counted with `fallback`. */
  close(fallback: () => TcpLabels): void {
    if (this.closed) return;
    if (!this.labels) this.setLabels(fallback());
    this.closed = true;
    if (this.series && this.opened) this.series.closed++;
  }
}
