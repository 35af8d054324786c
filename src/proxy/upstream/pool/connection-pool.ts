// What a per-host connection pool shares with its cluster (limits, counters, socket options) and offers to it.
import type { HttpHeaders } from '../../http/headers.js';
import type { UpstreamTls } from '../upstream-tls.js';
import type { CircuitBreakerState, ClusterStats, HostStats, UpstreamFailure, UpstreamRequest, UpstreamResponseHandler } from '../types.js';

/** Cluster-wide usage of the circuit-breaker resources (DEFAULT priority). */
export interface ClusterResources {
  connections: number;
  pendingRequests: number;
  requests: number;
}

export interface PoolSettings {
  readonly clusterName: string;
  readonly stats: ClusterStats;
  readonly limits: CircuitBreakerState;
  readonly resources: ClusterResources;
  /** Cluster.connect_timeout (Envoy default 5 s). */
  readonly connectTimeoutMs: number;
  /** common_http_protocol_options.idle_timeout (Envoy default 1 h); 0 disables. */
  readonly idleTimeoutMs: number;
  /** max_requests_per_connection; 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** http2_protocol_options.max_concurrent_streams (Envoy default 2^31-1), further capped by the peer's SETTINGS. */
  readonly maxConcurrentStreams: number;
  readonly tls: UpstreamTls | undefined;
  /** upstream_connection_options.tcp_keepalive: initial delay in ms, or undefined when off. */
  readonly tcpKeepaliveMs: number | undefined;
  /** upstream_bind_config.source_address.address. */
  readonly sourceAddress: string | undefined;
}

export interface ConnectionPool {
  newStream(headers: HttpHeaders, handler: UpstreamResponseHandler): UpstreamRequest;
  /** Requests started on this pool and not yet finished (including pending ones). */
  readonly activeRequests: number;
  /** Open connections (connecting, busy or idle). */
  readonly connectionCount: number;
  /** Lets in-flight requests finish, then closes every connection; resolves when all are closed. */
  drain(): Promise<void>;
  /** Closes every connection now; in-flight requests fail with local_reset. */
  destroy(): void;
}

/** A request that failed before it reached a connection: the handler is told once, asynchronously. */
export function failedRequest(handler: UpstreamResponseHandler, failure: 'overflow' | 'connect_failure', detail: string): UpstreamRequest {
  let aborted = false;
  queueMicrotask(() => {
    if (!aborted) handler.onFailure(failure, detail);
  });
  return {
    write: () => true,
    end: () => undefined,
    abort: () => {
      aborted = true;
    },
    onDrain: () => undefined,
    pauseResponse: () => undefined,
    resumeResponse: () => undefined,
  };
}

/** Counts the response status class (upstream_rq_2xx…) like Envoy's upstream stats. */
export function countStatus(stats: ClusterStats, status: number): void {
  if (status < 200) stats.upstream_rq_1xx++;
  else if (status < 300) stats.upstream_rq_2xx++;
  else if (status < 400) stats.upstream_rq_3xx++;
  else if (status < 500) stats.upstream_rq_4xx++;
  else stats.upstream_rq_5xx++;
}

/** What the shared request accounting needs of a pool's stream. */
export interface AccountedStream {
  /** Finished (response ended, failed or aborted); counted once. */
  done: boolean;
  /** Counted in max_pending_requests / upstream_rq_pending_active: waiting for a connection. */
  pending: boolean;
}

/**
 * Circuit-breaker admission of a new request, the same for every pool: max_requests, and max_pending_requests when
 * it has to wait for a connection. Returns the failed request on overflow (counted), undefined when admitted.
 */
export function admitRequest(s: PoolSettings, handler: UpstreamResponseHandler, needsConnection: boolean): UpstreamRequest | undefined {
  if (s.resources.requests >= s.limits.maxRequests) {
    s.stats.upstream_rq_pending_overflow++;
    return failedRequest(handler, 'overflow', `max_requests (${s.limits.maxRequests}) reached for cluster ${s.clusterName}`);
  }
  if (needsConnection && s.resources.pendingRequests >= s.limits.maxPendingRequests) {
    s.stats.upstream_rq_pending_overflow++;
    return failedRequest(handler, 'overflow', `max_pending_requests (${s.limits.maxPendingRequests}) reached for cluster ${s.clusterName}`);
  }
  return undefined;
}

/** Counts an admitted request as started (cluster and host counters, the max_requests resource). */
export function countRequestStart(s: PoolSettings, hostStats: HostStats): void {
  s.resources.requests++;
  s.stats.upstream_rq_total++;
  s.stats.upstream_rq_active++;
  hostStats.rqTotal++;
  hostStats.rqActive++;
}

export function enterPending(s: PoolSettings, stream: AccountedStream): void {
  if (stream.pending) return;
  stream.pending = true;
  s.resources.pendingRequests++;
  s.stats.upstream_rq_pending_active++;
}

export function leavePending(s: PoolSettings, stream: AccountedStream): void {
  if (!stream.pending) return;
  stream.pending = false;
  s.resources.pendingRequests--;
  s.stats.upstream_rq_pending_active--;
}

/** Counts a request's end once (resets by direction, host success/error); false if it was already counted. */
export function countRequestEnd(s: PoolSettings, hostStats: HostStats, stream: AccountedStream, ok: boolean, failure?: UpstreamFailure): boolean {
  if (stream.done) return false;
  stream.done = true;
  leavePending(s, stream);
  s.resources.requests--;
  s.stats.upstream_rq_active--;
  hostStats.rqActive--;
  if (failure === 'remote_reset' || failure === 'refused_stream') s.stats.upstream_rq_rx_reset++;
  else if (failure === 'local_reset') s.stats.upstream_rq_tx_reset++;
  if (ok) hostStats.rqSuccess++;
  else hostStats.rqError++;
  return true;
}
