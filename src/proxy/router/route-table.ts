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
}

export interface CompiledHashPolicy {
  /** Computes this policy's part of the hash, or undefined when its input is absent. */
  hash(headers: HttpHeaders, sourceAddress: string): bigint | undefined;
  /** Stop at this policy if it produced a hash. */
  readonly terminal: boolean;
  /** For cookie policies with a TTL: the cookie to set when absent. */
  readonly cookie?: { readonly name: string; readonly ttlSeconds: number; readonly path?: string };
}

export interface CompiledMirrorPolicy {
  readonly cluster: string;
  /** 0..1 */
  readonly fraction: number;
}

/** A header mutation list with substitutions (%DOWNSTREAM_REMOTE_ADDRESS% …) compiled to functions. */
export interface CompiledHeaderMutation {
  apply(headers: HttpHeaders, context: HeaderFormatterContext): void;
}

export interface HeaderFormatterContext {
  readonly downstreamRemoteAddress: string;
  readonly downstreamLocalAddress: string;
  readonly upstreamHost?: string;
  readonly protocol: string;
  readonly requestId?: string;
  readonly hostname: string;
}

export interface ClusterRouteAction {
  readonly kind: 'cluster';
  /** The cluster for this request: fixed, weighted pick (using `random`), or from cluster_header. Undefined → 503 NC / 404. */
  pickCluster(headers: HttpHeaders, random: number): string | undefined;
  /** Rewrites :path (prefix_rewrite / regex_rewrite) in place; no-op when the route has none. */
  rewritePath(headers: HttpHeaders): void;
  /** host_rewrite_literal / auto_host_rewrite target, if any. */
  readonly hostRewrite?: string;
  /** 0 = disabled. Envoy's default route timeout is 15 s. */
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly retryPolicy?: CompiledRetryPolicy;
  readonly hashPolicies: readonly CompiledHashPolicy[];
  readonly mirrorPolicies: readonly CompiledMirrorPolicy[];
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
}

export interface RouteEntry {
  readonly name: string;
  readonly virtualHost: VirtualHostEntry;
  readonly action: RouteAction;
  readonly requestHeaders: CompiledHeaderMutation;
  readonly responseHeaders: CompiledHeaderMutation;
  /** typed_per_filter_config compiled by each filter's factory, route over virtual host over route config. */
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** The route's `decorator.operation`, for tracing. */
  readonly operation?: string;
}

export interface RouteTable {
  readonly name: string;
  /**
   * Finds the virtual host for `:authority` (exact, `*.suffix`, `prefix.*`, `*`; with or without port) and the first
   * route whose match holds. `random` (0..1) decides runtime_fraction matches. Undefined → 404 NR.
   */
  match(headers: HttpHeaders, random: number): RouteEntry | undefined;
}
