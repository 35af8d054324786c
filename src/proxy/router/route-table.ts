// The compiled RouteConfiguration the router matches against: virtual hosts by authority, routes in order, actions.
// Compiled once per RDS/inline config (compile-route-table.ts); matching allocates nothing for the common case.
import type { HttpHeaders } from '../http/headers.js';

/** A retry policy with its defaults resolved (Envoy: num_retries 1, per_try_timeout = route timeout, back-off 25 ms base, 250 ms max). */
export interface CompiledRetryPolicy {
  /** Envoy's retry_on conditions: 5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, … */
  readonly retryOn: ReadonlySet<string>;
  readonly numRetries: number;
  /** 0 = no per-try timeout. */
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly backOffBaseMs: number;
  readonly backOffMaxMs: number;
  /** retry_host_predicate previous_hosts. */
  readonly avoidPreviousHosts: boolean;
  readonly hostSelectionRetryMaxAttempts: number;
  /**
   * retry_priority previous_priorities: every this many attempts, the priorities tried so far are left out of the
   * priority load for the next attempt (undefined: no retry priority).
   */
  readonly previousPrioritiesUpdateFrequency?: number;
}

export interface CompiledHashPolicy {
  /**
   * Computes this policy's part of the hash, or undefined when its input is absent. `sourceAddress` is the downstream
   * remote IP without port (Envoy hashes `addressAsString()`, e.g. `10.0.0.1` or `::1`).
   */
  hash(headers: HttpHeaders, sourceAddress: string): bigint | undefined;
  /** Stop at this policy if it produced a hash. */
  readonly terminal: boolean;
  /**
   * For cookie policies with a TTL: the cookie to set when absent (hash-policy.ts `generateHashCookie` makes its value and
   * hash the way Envoy's router does). `attributes` are the Set-Cookie attributes configured on the policy.
   */
  readonly cookie?: {
    readonly name: string;
    readonly ttlSeconds: number;
    readonly path?: string;
    readonly attributes?: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  };
}

export interface CompiledMirrorPolicy {
  readonly cluster: string;
  /** 0..1 */
  readonly fraction: number;
  /** Envoy appends `-shadow` to the mirrored request's host unless this is set. */
  readonly disableShadowHostSuffixAppend?: boolean;
}

/** A header mutation list with substitutions (%DOWNSTREAM_REMOTE_ADDRESS% …) compiled to functions. */
export interface CompiledHeaderMutation {
  apply(headers: HttpHeaders, context: HeaderFormatterContext): void;
}

export interface HeaderFormatterContext {
  /** `ip:port` (`[v6]:port`). */
  readonly downstreamRemoteAddress: string;
  readonly downstreamLocalAddress: string;
  /** The upstream host's `ip:port`, once one was picked (%UPSTREAM_REMOTE_ADDRESS%); empty before. */
  readonly upstreamHost?: string;
  /** `HTTP/1.1`, `HTTP/2` (%PROTOCOL%). */
  readonly protocol: string;
  readonly requestId?: string;
  readonly hostname: string;
  /** The request's start, epoch milliseconds (%START_TIME%); now when absent. */
  readonly startTimeMs?: number;
  /** The request headers, for %REQ(x)% in response header mutations (request mutations read the headers they mutate). */
  readonly requestHeaders?: HttpHeaders;
}

/**
 * The cluster a request goes to, with what a weighted_clusters entry adds. Envoy applies the entry's request headers
 * before the route's (and its response headers before the route's), and its host_rewrite_literal over the route's.
 */
export interface ClusterTarget {
  readonly cluster: string;
  readonly requestHeaders?: CompiledHeaderMutation;
  readonly responseHeaders?: CompiledHeaderMutation;
  readonly hostRewrite?: string;
  /** The entry's typed_per_filter_config, more specific than the route's. */
  readonly perFilterConfig?: ReadonlyMap<string, unknown>;
}

/** Envoy's max_stream_duration: the stream's whole-life limit and how the grpc-timeout header bounds it. */
export interface CompiledMaxStreamDuration {
  /** undefined = the HCM's; 0 = none. */
  readonly maxStreamDurationMs?: number;
  /** Set: honour grpc-timeout as the stream duration, capped at this (0 = uncapped). */
  readonly grpcTimeoutHeaderMaxMs?: number;
  readonly grpcTimeoutHeaderOffsetMs?: number;
}

export interface ClusterRouteAction {
  readonly kind: 'cluster';
  /** The cluster for this request: fixed, weighted pick (using `random`), or from cluster_header. Undefined → 503 NC / 404. */
  pickCluster(headers: HttpHeaders, random: number): string | undefined;
  /** Like pickCluster, with the picked weighted cluster's own header mutations, host rewrite and per-filter config. */
  pickTarget(headers: HttpHeaders, random: number): ClusterTarget | undefined;
  /** cluster_not_found_response_code: 503 (default), 404 or 500 when pickCluster finds none. */
  readonly clusterNotFoundStatus: number;
  /** Rewrites :path (prefix_rewrite / regex_rewrite) in place; no-op when the route has none. */
  rewritePath(headers: HttpHeaders): void;
  /** host_rewrite_literal target, if any. */
  readonly hostRewrite?: string;
  /** auto_host_rewrite: Host becomes the picked upstream host's hostname (STRICT_DNS / LOGICAL_DNS clusters). */
  readonly autoHostRewrite: boolean;
  /** host_rewrite_header: Host becomes this request header's value, when present and non-empty. */
  readonly hostRewriteHeader?: string;
  /** 0 = disabled. Envoy's default route timeout is 15 s. */
  readonly timeoutMs: number;
  /** undefined = not set on the route (the HCM's stream_idle_timeout applies); 0 = disabled. */
  readonly idleTimeoutMs?: number;
  /** max_grpc_timeout: set → a gRPC request's grpc-timeout header becomes the route timeout, capped at this (0 = uncapped). */
  readonly maxGrpcTimeoutMs?: number;
  /** grpc_timeout_offset, subtracted from grpc-timeout. */
  readonly grpcTimeoutOffsetMs?: number;
  readonly maxStreamDuration?: CompiledMaxStreamDuration;
  readonly retryPolicy?: CompiledRetryPolicy;
  readonly hashPolicies: readonly CompiledHashPolicy[];
  readonly mirrorPolicies: readonly CompiledMirrorPolicy[];
  /** upgrade_configs: upgrade type (lower-case, e.g. `websocket`) → enabled; absent types follow the HCM. */
  readonly upgrades: ReadonlyMap<string, boolean>;
}

export interface RedirectRouteAction {
  readonly kind: 'redirect';
  /** The Location for this request and the status (301 default). */
  location(headers: HttpHeaders): string;
  readonly status: number;
}

export interface DirectResponseRouteAction {
  readonly kind: 'direct_response';
  readonly status: number;
  readonly body: string;
}

export type RouteAction = ClusterRouteAction | RedirectRouteAction | DirectResponseRouteAction;

export interface VirtualHostEntry {
  readonly name: string;
  /** require_tls ALL / EXTERNAL_ONLY: plain requests get a 301 to https. */
  readonly requireTls: 'NONE' | 'EXTERNAL_ONLY' | 'ALL';
  readonly retryPolicy?: CompiledRetryPolicy;
  /** include_request_attempt_count: send x-envoy-attempt-count upstream. */
  readonly includeRequestAttemptCount: boolean;
  /** include_attempt_count_in_response: send x-envoy-attempt-count downstream. */
  readonly includeAttemptCountInResponse: boolean;
  /** per_request_buffer_limit_bytes: the most request body a retry or mirror may hold; the listener's limit when unset. */
  readonly perRequestBufferLimitBytes?: number;
}

/** A typed_per_filter_config entry wrapped in FilterConfig with `disabled: true`: the filter is off for this route. */
export const FILTER_DISABLED: unique symbol = Symbol.for('trellis.router.filter-disabled');

export interface RouteEntry {
  readonly name: string;
  readonly virtualHost: VirtualHostEntry;
  readonly action: RouteAction;
  readonly requestHeaders: CompiledHeaderMutation;
  readonly responseHeaders: CompiledHeaderMutation;
  /**
   * typed_per_filter_config compiled by each filter's factory, route over virtual host over route config (most specific
   * wins per filter name). A value of FILTER_DISABLED means FilterConfig `disabled: true`: skip that filter.
   */
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** The route's `decorator.operation`, for tracing. */
  readonly operation?: string;
  /** The route's stat_prefix (Envoy's `vhost.<vhost>.route.<prefix>.` stats), if set. */
  readonly statPrefix?: string;
  /** per_request_buffer_limit_bytes of the route (over the virtual host's); the listener's limit when neither is set. */
  readonly perRequestBufferLimitBytes?: number;
}

export interface RouteTable {
  readonly name: string;
  /**
   * Finds the virtual host for `:authority` (exact, `*.suffix`, `prefix.*`, `*`; with or without port) and the first
   * route whose match holds. `random` (0..1) decides runtime_fraction matches. Undefined → 404 NR.
   */
  match(headers: HttpHeaders, random: number): RouteEntry | undefined;
}
