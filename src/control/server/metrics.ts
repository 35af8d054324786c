// A small Prometheus registry (counters, gauges, histograms with labels) and its text exposition format 0.0.4.

export type Labels = Readonly<Record<string, string>>;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  expose(lines: string[]): void;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function labelKey(labels: Labels): string {
  const names = Object.keys(labels).sort();
  for (const name of names) if (!LABEL.test(name) || name.startsWith('__')) throw new RangeError(`invalid Prometheus label name ${JSON.stringify(name)}`);
  return names.map((n) => `${n}="${escapeLabelValue(labels[n]!)}"`).join(',');
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Prometheus number formatting: integers as is, `+Inf`/`-Inf`/`NaN` spelled out. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function series(name: string, key: string, value: number, extra?: string): string {
  const labels = [key, extra].filter(Boolean).join(',');
  return `${name}${labels ? `{${labels}}` : ''} ${formatValue(value)}`;
}

export class Counter implements Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.name} can only increase (got ${by})`);
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  expose(lines: string[]): void {
    for (const [key, value] of this.values) lines.push(series(this.name, key, value));
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }

  add(by: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  expose(lines: string[]): void {
    for (const [key, value] of this.values) lines.push(series(this.name, key, value));
  }
}

interface HistogramSeries {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Istio's push-time buckets (seconds): .01 .1 1 3 5 10 20 30. */
export const PUSH_TIME_BUCKETS = [0.01, 0.1, 1, 3, 5, 10, 20, 30] as const;

export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly series = new Map<string, HistogramSeries>();
  readonly buckets: readonly number[];

  constructor(readonly name: string, readonly help: string, buckets: readonly number[] = PUSH_TIME_BUCKETS) {
    this.buckets = [...buckets].sort((a, b) => a - b);
    if (this.buckets.length === 0 || this.buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b === this.buckets[i - 1]))) {
      throw new RangeError(`histogram ${name}: buckets must be distinct finite numbers`);
    }
  }

  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    // Buckets are cumulative only in the exposition; here each observation lands in its first bucket.
    const index = this.buckets.findIndex((upper) => value <= upper);
    if (index >= 0) s.counts[index]!++;
    s.sum += value;
    s.count++;
  }

  /** Observations so far (all label sets, or one). */
  count(labels?: Labels): number {
    if (labels) return this.series.get(labelKey(labels))?.count ?? 0;
    let total = 0;
    for (const s of this.series.values()) total += s.count;
    return total;
  }

  expose(lines: string[]): void {
    for (const [key, s] of this.series) {
      let cumulative = 0;
      this.buckets.forEach((upper, i) => {
        cumulative += s.counts[i]!;
        lines.push(series(`${this.name}_bucket`, key, cumulative, `le="${formatValue(upper)}"`));
      });
      lines.push(series(`${this.name}_bucket`, key, s.count, 'le="+Inf"'));
      lines.push(series(`${this.name}_sum`, key, s.sum));
      lines.push(series(`${this.name}_count`, key, s.count));
    }
  }
}

/** Metrics by name, exposed in registration order. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string): Counter {
    return this.register(new Counter(name, help));
  }

  gauge(name: string, help: string): Gauge {
    return this.register(new Gauge(name, help));
  }

  histogram(name: string, help: string, buckets?: readonly number[]): Histogram {
    return this.register(new Histogram(name, help, buckets));
  }

  /** The Prometheus text format (Content-Type `text/plain; version=0.0.4`). */
  expose(): string {
    const lines: string[] = [];
    for (const metric of this.metrics.values()) {
      lines.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`);
      lines.push(`# TYPE ${metric.name} ${metric.type}`);
      metric.expose(lines);
    }
    return lines.length > 0 ? `${lines.join('\n')}\n` : '';
  }

  private register<M extends Metric>(metric: M): M {
    if (!NAME.test(metric.name)) throw new RangeError(`invalid Prometheus metric name ${JSON.stringify(metric.name)}`);
    if (this.metrics.has(metric.name)) throw new RangeError(`metric ${metric.name} is registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
