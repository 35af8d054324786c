// Istio's push queue: one pending request per proxy (merged while it waits), at most N proxies pushed at once (PILOT_PUSH_THROTTLE).
import { mergePushRequests, type PushRequest } from '../model/push-request.js';

/** Pushes one proxy; the queue counts it as in flight until the promise settles. */
export type ProxyPushFunction = (proxyId: string, request: PushRequest) => Promise<void> | void;

export interface PushQueueOptions {
  /** Concurrent proxy pushes (Istio PILOT_PUSH_THROTTLE, default 100). */
  concurrency?: number;
  /** Called when a push function throws; the queue goes on with the next proxy. */
  onError?: (proxyId: string, error: unknown) => void;
}

export const DEFAULT_PUSH_THROTTLE = 100;

export class PushQueue {
  readonly concurrency: number;
  // Insertion order is the push order: a Map keeps it and lets a queued proxy's request merge in place.
  private readonly pending = new Map<string, PushRequest>();
  // A proxy being pushed is not pushed twice at once: what arrives meanwhile waits here and is queued when it finishes.
  private readonly processing = new Map<string, PushRequest | undefined>();
  private readonly idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly push: ProxyPushFunction, private readonly options: PushQueueOptions = {}) {
    this.concurrency = options.concurrency ?? DEFAULT_PUSH_THROTTLE;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError(`push concurrency must be a positive integer, got ${this.concurrency}`);
  }

  /** Queues a push for a proxy, merging with the request it already has waiting. */
  enqueue(proxyId: string, request: PushRequest): void {
    if (this.closed) return;
    if (this.processing.has(proxyId)) {
      const later = this.processing.get(proxyId);
      this.processing.set(proxyId, later ? mergePushRequests(later, request) : request);
      return;
    }
    const queued = this.pending.get(proxyId);
    this.pending.set(proxyId, queued ? mergePushRequests(queued, request) : request);
    this.drain();
  }

  /** Drops a proxy's waiting request (it disconnected). A push already running finishes. */
  remove(proxyId: string): void {
    this.pending.delete(proxyId);
    if (this.processing.has(proxyId)) this.processing.set(proxyId, undefined);
  }

  /** Proxies waiting to be pushed. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Proxies being pushed now. */
  get inFlight(): number {
    return this.processing.size;
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.pending.size === 0 && this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops everything queued; running pushes finish. */
  close(): void {
    this.closed = true;
    this.pending.clear();
    this.settleIdle();
  }

  private drain(): void {
    while (!this.closed && this.processing.size < this.concurrency && this.pending.size > 0) {
      const [proxyId, request] = this.pending.entries().next().value as [string, PushRequest];
      this.pending.delete(proxyId);
      this.processing.set(proxyId, undefined);
      void this.run(proxyId, request);
    }
    this.settleIdle();
  }

  private async run(proxyId: string, request: PushRequest): Promise<void> {
    // Never push from inside enqueue(): callers may be iterating proxies, and a synchronous push would re-enter.
    await null;
    try {
      await this.push(proxyId, request);
    } catch (err) {
      this.options.onError?.(proxyId, err);
    }
    const later = this.processing.get(proxyId);
    this.processing.delete(proxyId);
    if (later && !this.closed) {
      const queued = this.pending.get(proxyId);
      this.pending.set(proxyId, queued ? mergePushRequests(queued, later) : later);
    }
    this.drain();
  }

  private settleIdle(): void {
    if (this.pending.size > 0 || this.processing.size > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
