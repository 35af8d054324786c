// The HTTP filter interface: what the connection manager calls, in order, so JWT, RBAC or stats filters plug in without touching the router.
import type { HttpHeaders } from './headers.js';
import type { ResponseFlag } from './response-flags.js';
import type { StreamInfo } from './stream-info.js';
import type { Duplex } from 'node:stream';
import type { RouteEntry } from '../router/route-table.js';

/** `continue`: run the next filter now. `stop`: this filter replied locally or will call `continueDecoding()` later. */
export type FilterStatus = 'continue' | 'stop';

export interface LocalReplyOptions {
  readonly headers?: HttpHeaders;
  readonly flag?: ResponseFlag;
  /** Envoy's response code details (`fault_filter_abort`, `rbac_access_denied_matched_policy[none]`, …). */
  readonly details?: string;
  /** gRPC requests get `grpc-status`/`grpc-message` trailers-only responses, as Envoy does, when given. */
  readonly grpcStatus?: number;
}

/**
 * One request as a filter sees it. The object lives for the stream; filters keep no per-request state of
 * their own elsewhere (they may keep it in `info.filterState`).
 */
export interface HttpFilterContext {
  readonly requestHeaders: HttpHeaders;
  readonly info: StreamInfo;
  /** The per-route config of this filter (typed_per_filter_config, compiled by its factory), if the matched route has one. */
  routeConfig<T>(filterName: string): T | undefined;
  /** Forgets the cached route so the next filter (or the router) matches again after headers changed. */
  clearRouteCache(): void;
  /** The route for the current request headers (matched once and cached until clearRouteCache), or undefined (NR). */
  route(): RouteEntry | undefined;
  /** Replies from the proxy and ends the request; later filters and the router do not run. */
  sendLocalReply(status: number, body: string, options?: LocalReplyOptions): void;
  /** Resumes the filter chain after a filter returned `stop` (e.g. a fault delay timer fired). */
  continueDecoding(): void;
  /** True once the downstream went away; a filter waiting on a timer checks it. */
  readonly aborted: boolean;
}

export interface HttpFilter {
  readonly name: string;
  /** Request headers arrived. */
  onRequestHeaders?(ctx: HttpFilterContext): FilterStatus;
  /** Response headers are about to be sent downstream; the filter may edit them. Runs in reverse filter order. */
  onResponseHeaders?(ctx: HttpFilterContext, headers: HttpHeaders): void;
  /** The stream finished (completed, reset or replied locally): for stats and access logs. */
  onStreamComplete?(ctx: HttpFilterContext): void;
  /** The connection manager stops using this filter instance (config replaced); free timers and handles. */
  close?(): void;
  /**
   * Terminal filters only (the router, last in the chain): takes the stream over once every decoder filter
   * continued; from then on it owns the request body and the response.
   */
  decodeStream?(ctx: HttpFilterContext, stream: HttpTerminalStream): void;
}

/** The downstream stream as a terminal filter drives it; response headers still pass every filter's onResponseHeaders. */
export interface HttpTerminalStream {
  /** An HTTP/1.1 Upgrade (WebSocket) the HCM allowed: the raw downstream socket and bytes read past the headers. */
  readonly upgrade?: { readonly socket: Duplex; readonly head: Buffer };
  /** Request bytes a retry may replay (the listener's per_connection_buffer_limit_bytes, Envoy default 1 MiB). */
  readonly bufferLimitBytes: number;
  /** Starts the request body flowing. */
  setBodySink(sink: { onData(chunk: Buffer): void; onEnd(trailers?: HttpHeaders): void }): void;
  pauseBody(): void;
  resumeBody(): void;
  /** Called once if the downstream goes away before the response ended. */
  onDownstreamReset(callback: () => void): void;
  readonly responseStarted: boolean;
  encodeHeaders(status: number, headers: HttpHeaders, endStream: boolean): void;
  /** False → wait for onEncoderDrain (back-pressure). */
  encodeData(chunk: Buffer): boolean;
  onEncoderDrain(callback: () => void): void;
  encodeEnd(trailers?: HttpHeaders): void;
  /** Resets the downstream stream (a failure after the response started). */
  resetDownstream(): void;
}

/** What a filter factory may use when it builds a filter from config. */
export interface FilterFactoryContext {
  /** The listener or HCM stat prefix, for filters that count. */
  readonly statPrefix: string;
  /** The HCM's counters (`http.<stat_prefix>.`); a filter adds its own under its Envoy prefix (`fault.aborts_injected`). */
  readonly stats?: Record<string, number>;
  /** The HCM's xff_num_trusted_hops (default 0), for filters that need the client address Envoy derives from x-forwarded-for (RBAC remote_ip). */
  readonly xffNumTrustedHops?: number;
  /** The listener's traffic_direction (Envoy derives the tracing operation, ingress or egress, from it). */
  readonly trafficDirection?: 'INBOUND' | 'OUTBOUND';
}

/**
 * Turns an Envoy filter's typed_config into a filter, once per config apply (never per request).
 * Registered by Envoy's filter name and config type URL in the filter registry.
 */
export interface HttpFilterFactory {
  /** Envoy's extension name, e.g. `envoy.filters.http.fault`. */
  readonly name: string;
  /** The typed_config type URL it accepts. */
  readonly typeUrl: string;
  /** Validates and compiles; throws XdsValidationError listing every problem (with field paths) otherwise. */
  create(config: unknown, context: FilterFactoryContext): HttpFilter;
  /** Compiles a typed_per_filter_config entry for this filter; throws XdsValidationError on bad input. */
  createRouteConfig?(config: unknown): unknown;
  /** The per-route config type URL, when it differs from `typeUrl`. */
  readonly routeConfigTypeUrl?: string;
}
