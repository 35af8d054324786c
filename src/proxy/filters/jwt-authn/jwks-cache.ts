// Where a provider's keys come from: local_jwks (parsed once), or remote_jwks fetched on demand and cached for
// cache_duration (Envoy default 10 min), or kept fresh in the background with async_fetch (refetch 5 s before expiry,
// retry after failed_refetch_duration, default 1 s). Concurrent requests share one fetch.
import type { ClusterManager } from '../../upstream/types.js';
import { Jwks } from './jwks.js';
import { fetchJwksDocument, type HttpUriConfig } from './jwks-fetcher.js';

export interface JwksStats {
  onFetch(ok: boolean, reason?: string): void;
}

export interface JwksSource {
  /** The keys, or undefined when they cannot be had (remote fetch failed: `Jwks remote fetch is failed`). */
  get(): Promise<Jwks | undefined>;
  readonly remote: boolean;
  close(): void;
}

export class LocalJwks implements JwksSource {
  readonly remote = false;
  private readonly parsed: Promise<Jwks>;
  constructor(text: string) {
    this.parsed = Jwks.parse(text);
  }
  get(): Promise<Jwks> {
    return this.parsed;
  }
  close(): void {}
}

export interface RemoteJwksConfig {
  readonly httpUri: HttpUriConfig;
  readonly cacheDurationMs: number;
  readonly asyncFetch?: { readonly failedRefetchMs: number };
  /** remote_jwks.retry_policy: extra attempts after a failed fetch, with jittered exponential back-off. */
  readonly retry?: { readonly numRetries: number; readonly baseMs: number; readonly maxMs: number };
}

/** Envoy: RefetchBeforeExpiredSec. */
const REFETCH_BEFORE_EXPIRY_MS = 5000;

export class RemoteJwks implements JwksSource {
  readonly remote = true;
  private jwks: Jwks | undefined;
  private expiresAt = 0;
  private inflight: Promise<Jwks | undefined> | undefined;
  private refetchTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly config: RemoteJwksConfig,
    private readonly clusters: ClusterManager,
    private readonly stats: JwksStats,
    private readonly now: () => number = () => performance.now(),
  ) {
    // async_fetch: fetch now (clusters from the same bootstrap may still be coming up: a failure retries soon).
    if (config.asyncFetch) setImmediate(() => void this.backgroundFetch());
  }

  async get(): Promise<Jwks | undefined> {
    if (this.jwks && this.now() < this.expiresAt) return this.jwks;
    return this.fetchShared(this.config.cacheDurationMs);
  }

  private fetchShared(cacheMs: number): Promise<Jwks | undefined> {
    if (!this.inflight) {
      this.inflight = this.fetchWithRetries().then((jwks) => {
        this.inflight = undefined;
        if (jwks) {
          this.jwks = jwks;
          this.expiresAt = this.now() + cacheMs;
        }
        return jwks;
      });
    }
    return this.inflight;
  }

  private async fetchWithRetries(): Promise<Jwks | undefined> {
    const attempts = 1 + (this.config.retry?.numRetries ?? 0);
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await this.backOff(attempt);
      try {
        const jwks = await Jwks.parse(await fetchJwksDocument(this.clusters, this.config.httpUri).done);
        if (jwks.status !== 'Ok') {
          this.stats.onFetch(false, `${this.config.httpUri.uri}: not a usable JWKS (${jwks.status})`);
          continue;
        }
        this.stats.onFetch(true);
        return jwks;
      } catch (err) {
        this.stats.onFetch(false, (err as Error).message);
      }
    }
    return undefined;
  }

  private backOff(attempt: number): Promise<void> {
    const r = this.config.retry!;
    const ceiling = Math.min(r.maxMs, r.baseMs * 2 ** (attempt - 1));
    return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling).unref());
  }

  /** async_fetch: keys fetched in the background never expire on their own; the timer replaces them. */
  private async backgroundFetch(): Promise<void> {
    if (this.closed) return;
    const jwks = await this.fetchShared(Number.POSITIVE_INFINITY);
    if (this.closed) return;
    const cache = this.config.cacheDurationMs;
    const good = cache > REFETCH_BEFORE_EXPIRY_MS ? cache - REFETCH_BEFORE_EXPIRY_MS : cache;
    const delay = jwks ? good : this.config.asyncFetch!.failedRefetchMs;
    this.refetchTimer = setTimeout(() => void this.backgroundFetch(), delay);
    this.refetchTimer.unref();
  }

  /**
   * Stops the background refresh. On-demand fetches still work: requests that started on this config finish on it
   * (each fetch is bounded by http_uri.timeout).
   */
  close(): void {
    this.closed = true;
    if (this.refetchTimer) clearTimeout(this.refetchTimer);
  }
}
