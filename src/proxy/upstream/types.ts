// The upstream side as the router sees it: clusters, hosts, load-balancer input and HTTP streams to a host.
// The router depends on this file only (Envoy: router.h vs the cluster manager's implementation).
import type { HttpHeaders } from '../http/headers.js';

export type HostHealth = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'DEGRADED' | 'TIMEOUT' | 'UNKNOWN';

/**
 * The health flags a host carries besides its EDS status (Envoy's Host::HealthFlag): set by active health checking and
 * outlier detection. Any failed flag makes the host unhealthy for load balancing, degradedActiveHc makes it degraded.
 */
export interface HostHealthFlags {
  /** FAILED_ACTIVE_HC: the health checker says unhealthy (new hosts start so until their first check passes). */
  readonly failedActiveHc: boolean;
  /** DEGRADED_ACTIVE_HC: the last HTTP check answered with `x-envoy-degraded`. */
  readonly degradedActiveHc: boolean;
  /** PENDING_ACTIVE_HC: added with active health checking and not checked yet. */
  readonly pendingActiveHc: boolean;
  /** ACTIVE_HC_TIMEOUT: the last failed check timed out. */
  readonly activeHcTimeout: boolean;
  /** FAILED_OUTLIER_CHECK: ejected by outlier detection. */
  readonly failedOutlierCheck: boolean;
  /** PENDING_DYNAMIC_REMOVAL: removed by discovery, kept while its active health checks pass. */
  readonly pendingDynamicRemoval: boolean;
}

export interface HostLocality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** Live counters of one host, shown by the admin /clusters page. */
export interface HostStats {
  cxActive: number;
  cxTotal: number;
  cxConnectFail: number;
  rqActive: number;
  rqTotal: number;
  rqError: number;
  rqSuccess: number;
  rqTimeout: number;
}

export interface UpstreamHost {
  /** `ip:port` (or `[ipv6]:port`), also the access log's %UPSTREAM_HOST%. */
  readonly addressText: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly priority: number;
  readonly locality: HostLocality;
  /** EDS health status; the cluster combines it with healthFlags (see coarseHealth in host.ts). */
  readonly health: HostHealth;
  readonly healthFlags: HostHealthFlags;
  /**
   * Outlier detection's last success rates in percent (external and local origin), -1 when not computed — the admin
   * /clusters page's success_rate and local_origin_success_rate.
   */
  readonly successRate: number;
  readonly localOriginSuccessRate: number;
  /** LbEndpoint metadata filter_metadata (e.g. `istio`, `envoy.transport_socket_match`), as plain JSON. */
  readonly metadata: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly stats: HostStats;
}

/** What the router gives a load balancer to choose a host with. */
export interface LoadBalancerContext {
  /** The request hash from the route's hash_policy (RING_HASH / MAGLEV), if any. */
  readonly hashKey?: bigint;
  /** Hosts to avoid (retry_host_predicate previous_hosts) and how many times to re-pick. */
  readonly avoidHosts?: ReadonlySet<UpstreamHost>;
  readonly hostSelectionRetryMaxAttempts?: number;
  /**
   * Priorities a retry should leave out (retry_priority previous_priorities): their hosts count as unavailable when
   * the priority load is computed; when that leaves nothing, the normal load applies (Envoy).
   */
  readonly excludedPriorities?: ReadonlySet<number>;
  /**
   * ORIGINAL_DST clusters: the downstream connection's original destination (`ip:port`, `[ipv6]:port`), as recovered
   * from SO_ORIGINAL_DST or the listener's address.
   */
  readonly originalDestination?: string;
  /** ORIGINAL_DST clusters with use_http_header: the request headers carrying `x-envoy-original-dst-host` (or http_header_name). */
  readonly requestHeaders?: HttpHeaders;
}

/** Per-request options of UpstreamCluster.request. */
export interface UpstreamRequestOptions {
  /** The downstream protocol, for clusters with use_downstream_protocol_config (HTTP/2 upstream only when downstream is HTTP/2). */
  readonly downstreamProtocol?: 'HTTP/1.1' | 'HTTP/2';
}

/** Why an upstream request failed before or instead of a response; each maps to an Envoy response flag. */
export type UpstreamFailure =
  | 'overflow' // UO: circuit breaker (max_pending_requests / max_requests / max_connections)
  | 'connect_failure' // UF
  | 'connect_timeout' // UF
  | 'remote_reset' // UR / UC: the upstream closed or reset the stream
  | 'refused_stream' // UR: HTTP/2 RST_STREAM REFUSED_STREAM, the upstream did not process the request (retry_on refused-stream)
  | 'protocol_error' // UPE: malformed upstream response
  | 'local_reset'; // LR: the proxy aborted it (timeout, downstream went away)

/** Callbacks for one upstream request; exactly one of onEnd/onFailure ends it. */
export interface UpstreamResponseHandler {
  /** `endStream`: the response has no body or trailers (an HTTP/2 HEADERS frame with END_STREAM, e.g. gRPC trailers-only). */
  onHeaders(status: number, headers: HttpHeaders, endStream?: boolean): void;
  /** Called before onHeaders when the response came over TLS: the certificates' URI SANs (istio.stats' principals). */
  onUpstreamTls?(identity: import('./pool/connect.js').UpstreamTlsIdentity): void;
  onData(chunk: Buffer): void;
  onTrailers?(trailers: HttpHeaders): void;
  onEnd(): void;
  onFailure(failure: UpstreamFailure, detail: string): void;
}

/** The request side of one upstream stream: the router writes the request body through it. */
export interface UpstreamRequest {
  /** Returns false when the caller should wait for `onDrain` (back-pressure). */
  write(chunk: Buffer): boolean;
  end(trailers?: HttpHeaders): void;
  /** Resets the stream (timeout, downstream reset); no callbacks follow. */
  abort(): void;
  onDrain(callback: () => void): void;
  /**
   * Response back-pressure: stop reading the response from the upstream until resumeResponse (the downstream cannot
   * take more yet), so a slow client never makes the proxy hold a whole large body in memory.
   */
  pauseResponse(): void;
  resumeResponse(): void;
}

/** A circuit breaker's retry_budget: concurrent retries as a share of active + pending requests (Envoy). */
export interface RetryBudget {
  /** budget_percent (default 20). */
  readonly budgetPercent: number;
  /** min_retry_concurrency (default 3): the limit never goes below it. */
  readonly minRetryConcurrency: number;
  /** The concurrent-retry limit now, from the cluster's live request counts. */
  limit(): number;
}

/** Circuit-breaker thresholds of one priority (Envoy defaults: 1024 connections/pending/requests, 3 retries). */
export interface CircuitBreakerState {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  /** When set, replaces maxRetries as the limit on concurrent retries. */
  readonly retryBudget?: RetryBudget;
  /**
   * Retries in progress: counted from the moment a retry is scheduled (back-off included) until the retried attempt's
   * outcome is known, as Envoy's RetryStateImpl holds the retries resource. The router checks it against the limit.
   */
  retriesActive: number;
}

/** Cluster counters with Envoy's names (cluster.<name>.upstream_rq_total, …), read by the admin stats. */
export interface ClusterStats {
  upstream_rq_total: number;
  upstream_rq_active: number;
  upstream_rq_pending_active: number;
  upstream_rq_pending_overflow: number;
  upstream_rq_timeout: number;
  upstream_rq_retry: number;
  upstream_rq_retry_success: number;
  upstream_rq_retry_overflow: number;
  upstream_rq_retry_limit_exceeded: number;
  /** Requests whose body outgrew the retry/shadow buffer limit, so they could no longer be retried. */
  retry_or_shadow_abandoned: number;
  upstream_rq_rx_reset: number;
  upstream_rq_tx_reset: number;
  upstream_cx_total: number;
  upstream_cx_active: number;
  upstream_cx_connect_fail: number;
  upstream_cx_connect_timeout: number;
  upstream_cx_overflow: number;
  upstream_cx_destroy: number;
  upstream_rq_1xx: number;
  upstream_rq_2xx: number;
  upstream_rq_3xx: number;
  upstream_rq_4xx: number;
  upstream_rq_5xx: number;
  membership_healthy: number;
  membership_total: number;
}

export interface UpstreamCluster {
  readonly name: string;
  readonly stats: ClusterStats;
  readonly circuitBreakers: CircuitBreakerState;
  /** Picks a host for one attempt; undefined when there is no healthy host (→ 503 UH). */
  chooseHost(context: LoadBalancerContext): UpstreamHost | undefined;
  /**
   * upstream_bind_config.source_address, for connections made outside the pools (tcp_proxy): Istio's inbound passthrough
   * leaves from 127.0.0.6 so the capture rules do not redirect it again.
   */
  readonly upstreamBindAddress?: string | undefined;
  /** The cluster's `filters` hold istio.metadata_exchange: tcp_proxy exchanges peer metadata on connections that negotiate istio-peer-exchange. */
  readonly upstreamMetadataExchange?: boolean;
  /**
   * One connection to `host` for tcp_proxy, over the cluster's transport socket (TLS, ALPN from its context unless
   * `alpn` is given); counts upstream_cx_* as pooled connections do. `connected` is set once TCP (and TLS) is up.
   */
  connect?(host: UpstreamHost, alpn?: readonly string[]): import('node:net').Socket & { connected?: boolean };
  /**
   * Starts an HTTP request to `host` over the cluster's pooled connections (HTTP/1.1 or HTTP/2 per the
   * cluster's protocol options, TLS per its transport socket). Headers are in HttpHeaders shape with
   * pseudo-headers; the pool applies max_requests / max_pending_requests and reports overflow via onFailure.
   */
  request(host: UpstreamHost, headers: HttpHeaders, handler: UpstreamResponseHandler, options?: UpstreamRequestOptions): UpstreamRequest;
  /**
   * Reports the outcome of a request to a host for outlier detection (status or failure); the TCP proxy reports
   * `tcp_connected` for a connection that is up (Envoy's LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL).
   */
  reportResult?(host: UpstreamHost, result: number | UpstreamFailure | 'tcp_connected'): void;
  /**
   * Stats beyond ClusterStats, by their name under `cluster.<name>.`: `outlier_detection.*` and `health_check.*` when the
   * cluster has them, and membership_degraded.
   */
  healthStats?(): Readonly<Record<string, number>>;
}

/** Read-only lookup of the clusters currently applied; swapped atomically on config change. */
export interface ClusterManager {
  get(name: string): UpstreamCluster | undefined;
}
