// Istio's push debounce: merge change requests until the config is quiet for `afterMs` or `maxMs` passed since the first, one push at a time.
import { mergePushRequests, type PushRequest } from '../model/push-request.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

export interface DebounceOptions {
  /** Quiet period: push once no request arrived for this long (Istio PILOT_DEBOUNCE_AFTER, 100 ms). */
  afterMs?: number;
  /** Longest a stream of requests can hold a push back (Istio PILOT_DEBOUNCE_MAX, 10 s). */
  maxMs?: number;
  /**
   * Debounce endpoint-only (EDS) requests with the rest (Istio PILOT_ENABLE_EDS_DEBOUNCE, default true). When
   * false, an endpoint-only request is pushed at once on its own, without waiting for a debounced full one.
   */
  debounceEndpoints?: boolean;
  clock?: Clock;
}

/** Receives one merged request and how many requests it merged; the next push waits until its promise settles. */
export type PushFunction = (request: PushRequest, mergedCount: number) => Promise<void> | void;

export const DEFAULT_DEBOUNCE_AFTER_MS = 100;
export const DEFAULT_DEBOUNCE_MAX_MS = 10_000;

export class Debouncer {
  readonly afterMs: number;
  readonly maxMs: number;
  private readonly debounceEndpoints: boolean;
  private readonly clock: Clock;
  private pending: PushRequest | undefined;
  private mergedCount = 0;
  private startDebounce = 0;
  private lastUpdate = 0;
  private timer: TimerHandle | undefined;
  // Like istiod, one debounced push runs at a time; requests arriving meanwhile merge into the next one.
  private free = true;
  private closed = false;

  constructor(private readonly push: PushFunction, options: DebounceOptions = {}) {
    this.afterMs = options.afterMs ?? DEFAULT_DEBOUNCE_AFTER_MS;
    this.maxMs = options.maxMs ?? DEFAULT_DEBOUNCE_MAX_MS;
    if (!(this.afterMs >= 0) || !(this.maxMs >= 0)) throw new RangeError(`debounce durations must be >= 0 (after ${this.afterMs} ms, max ${this.maxMs} ms)`);
    this.debounceEndpoints = options.debounceEndpoints ?? true;
    this.clock = options.clock ?? systemClock;
  }

  /** Queues a change; it is pushed merged with the others once the quiet period or the max delay has passed. */
  enqueue(request: PushRequest): void {
    if (this.closed) return;
    if (!this.debounceEndpoints && !request.full) {
      void this.run(request, 1, false);
      return;
    }
    this.lastUpdate = this.clock.now();
    if (this.mergedCount === 0) {
      this.startDebounce = this.lastUpdate;
      this.schedule(this.afterMs);
    }
    this.mergedCount++;
    this.pending = this.pending ? mergePushRequests(this.pending, request) : request;
  }

  /** Requests waiting for the quiet period (0 when nothing is pending). */
  get pendingCount(): number {
    return this.mergedCount;
  }

  /** Stops: the pending request is dropped and no timer stays behind. */
  close(): void {
    this.closed = true;
    this.pending = undefined;
    this.mergedCount = 0;
    this.cancelTimer();
  }

  private schedule(ms: number): void {
    this.cancelTimer();
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.free) this.check();
    }, ms);
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    if (this.closed || !this.pending) return;
    const now = this.clock.now();
    const eventDelay = now - this.startDebounce;
    const quiet = now - this.lastUpdate;
    if (eventDelay >= this.maxMs || quiet >= this.afterMs) {
      const request = this.pending;
      const count = this.mergedCount;
      this.pending = undefined;
      this.mergedCount = 0;
      void this.run(request, count, true);
    } else {
      // Wait for whichever comes first: the rest of the quiet period, or the max delay.
      this.schedule(Math.min(this.afterMs - quiet, this.maxMs - eventDelay));
    }
  }

  private async run(request: PushRequest, count: number, debounced: boolean): Promise<void> {
    if (debounced) this.free = false;
    try {
      await this.push(request, count);
    } catch {
      // The push function reports its own failures; the debounce must keep going.
    } finally {
      if (debounced) {
        this.free = true;
        // A request that became due while the push ran goes out now; one still in its quiet period keeps its timer.
        if (this.pending && this.timer === undefined) this.check();
      }
    }
  }
}
