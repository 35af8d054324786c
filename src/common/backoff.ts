// Exponential backoff with full jitter, as Envoy uses between xDS stream retries.
//
// Envoy's JitteredExponentialBackOffStrategy: the n-th retry waits a uniformly random time in
// [0, min(base * 2^n, max)); the ceiling stops doubling once it reaches `max`. Envoy's defaults for
// xDS streams are base 500 ms and max 30 s (SubscriptionFactory::RetryInitialDelayMs/RetryMaxDelayMs).

export const DEFAULT_BACKOFF_BASE_MS = 500;
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

export interface BackoffOptions {
  /** First ceiling, in milliseconds (Envoy: base_interval). */
  baseMs?: number;
  /** Largest ceiling, in milliseconds (Envoy: max_interval). */
  maxMs?: number;
  /** A source of numbers in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

export class ExponentialBackoff {
  readonly baseMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.maxMs = options.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0) || !Number.isFinite(this.baseMs)) throw new RangeError(`backoff base must be a positive number of milliseconds, got ${this.baseMs}`);
    if (!(this.maxMs >= this.baseMs) || !Number.isFinite(this.maxMs)) throw new RangeError(`backoff max (${this.maxMs} ms) must be at least its base (${this.baseMs} ms)`);
  }

  /** The ceiling the next delay is drawn under. */
  get ceilingMs(): number {
    // 2^attempt overflows to Infinity long after it passed max, so Math.min keeps it bounded.
    return Math.min(this.baseMs * 2 ** this.attempt, this.maxMs);
  }

  /** Retries since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next retry, in whole milliseconds; each call raises the ceiling. */
  next(): number {
    const ceiling = this.ceilingMs;
    if (ceiling < this.maxMs) this.attempt += 1;
    // Clamp a misbehaving random source so the delay never leaves [0, ceiling).
    const r = Math.min(Math.max(this.random(), 0), 1 - Number.EPSILON);
    return Math.floor(r * ceiling);
  }

  /** Back to the base ceiling, after something succeeded (Envoy resets on every received message). */
  reset(): void {
    this.attempt = 0;
  }
}
