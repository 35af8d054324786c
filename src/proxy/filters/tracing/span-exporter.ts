// Batched, asynchronous span export to a Zipkin v2 or OTLP/HTTP collector: a bounded queue, flushed by size or timer, never on the request path.
import http from 'node:http';
import { toOtlpJson, toZipkinV2, type FinishedSpan, type SpanSource } from './span.js';

export type ExportFormat = 'zipkin' | 'otlp';

export interface SpanExporterOptions {
  readonly format: ExportFormat;
  /** `http://host:port/api/v2/spans` (Zipkin) or `http://host:port/v1/traces` (OTLP/HTTP). */
  readonly url: string;
  readonly source: SpanSource;
  /** Spans that trigger a flush (Envoy's zipkin min_flush_spans, default 5). */
  readonly batchSize?: number;
  /** Timer flush (Envoy's tracing.zipkin.flush_interval_ms, default 5000). */
  readonly flushIntervalMs?: number;
  /** Spans held at most; more are dropped and counted. */
  readonly maxQueuedSpans?: number;
  readonly requestTimeoutMs?: number;
}

/**
 * Counters, named like Envoy's `tracing.zipkin.*` (spans_sent, reports_sent, reports_dropped on a non-2xx reply,
 * reports_failed when the request failed, timer_flushed); spans_dropped_queue_full is Trellis's.
 */
export interface SpanExporterStats {
  spans_sent: number;
  reports_sent: number;
  reports_dropped: number;
  reports_failed: number;
  timer_flushed: number;
  spans_dropped_queue_full: number;
}

export class SpanExporter {
  readonly stats: SpanExporterStats = { spans_sent: 0, reports_sent: 0, reports_dropped: 0, reports_failed: 0, timer_flushed: 0, spans_dropped_queue_full: 0 };
  private queue: FinishedSpan[] = [];
  private readonly url: URL;
  private readonly batchSize: number;
  private readonly maxQueued: number;
  private readonly timeoutMs: number;
  private readonly timer: NodeJS.Timeout;
  private flushScheduled = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 2 });

  constructor(private readonly options: SpanExporterOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'http:') throw new Error(`span collector ${options.url}: only http:// is supported`);
    this.batchSize = Math.max(1, options.batchSize ?? 5);
    this.maxQueued = Math.max(this.batchSize, options.maxQueuedSpans ?? 10_000);
    this.timeoutMs = options.requestTimeoutMs ?? 5000;
    this.timer = setInterval(() => {
      if (this.queue.length === 0) return;
      this.stats.timer_flushed++;
      this.flush();
    }, options.flushIntervalMs ?? 5000);
    this.timer.unref();
  }

  get format(): ExportFormat {
    return this.options.format;
  }

  /** Queues a span; the send happens later, off the caller's stack. */
  add(span: FinishedSpan): void {
    if (this.queue.length >= this.maxQueued) {
      this.stats.spans_dropped_queue_full++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.batchSize && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Sends what is queued now; resolves when that report got its answer (or failed). */
  flush(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    const spans = this.queue;
    this.queue = [];
    const body = JSON.stringify(this.options.format === 'zipkin' ? toZipkinV2(spans, this.options.source) : toOtlpJson(spans, this.options.source));
    const sent = this.post(body).then((status) => {
      if (status >= 200 && status < 300) {
        this.stats.reports_sent++;
        this.stats.spans_sent += spans.length;
      } else this.stats.reports_dropped++;
    }, () => {
      this.stats.reports_failed++;
    });
    this.inFlight.add(sent);
    void sent.finally(() => this.inFlight.delete(sent));
    return sent;
  }

  private post(body: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: this.timeoutMs,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('collector timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Resolves when every report sent so far got its answer (or failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  /** Stops the timer, sends what is left and waits for reports in flight, at most `graceMs` (a dead collector must not hold up a shutdown). */
  async close(graceMs = 1000): Promise<void> {
    clearInterval(this.timer);
    void this.flush();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.inFlight]), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.agent.destroy();
  }
}
