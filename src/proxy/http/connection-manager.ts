// The HTTP connection manager (envoy.filters.network.http_connection_manager): compiled once per listener apply,
// it turns codec streams into filter-chain runs: standard headers, limits, HTTP filters in order, then the router.
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import { FILTER_DISABLED, type RouteTable, type RouteEntry } from '../router/route-table.js';
import { unpackAny } from '../../xds/codec.js';
import type { HttpFilter, HttpFilterContext, HttpFilterFactory, HttpTerminalStream, LocalReplyOptions } from './filter.js';
import type { HttpHeaders } from './headers.js';
import type { StreamInfo } from './stream-info.js';
import type { ResponseFlag } from './response-flags.js';
import type { DownstreamCodec, DownstreamConnectionInfo, RequestBodySink, ServerStream } from './server-stream.js';
import type { DownstreamCodecOptions, DownstreamProtocolError } from './codec-options.js';
import { Http1Codec } from './http1-codec.js';
import { Http1LeanCodec } from './http1-lean-codec.js';
import { Http2Codec } from './http2-codec.js';
import { ensureRequestId } from './request-id.js';
import { applyForwardedHeaders } from './forwarded-headers.js';
import { applyClientCertDetails, compileClientCertDetails, type ClientCertDetailsConfig } from './client-cert-details.js';
import { buildLocalReply, isGrpcRequest } from './local-reply.js';
import { ActiveStreamInfo } from './active-stream-info.js';
import { scheduleDeadline, scheduleTimer, type Deadline } from '../../common/deadline-list.js';
import { compilePathNormalization, normalizePath, type PathNormalizationOptions } from './path-normalization.js';

type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

export const HTTP_CONNECTION_MANAGER_NAME = 'envoy.filters.network.http_connection_manager';
export const HTTP_CONNECTION_MANAGER_TYPE_URL =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** What an HCM is built with (ListenerContext provides it). */
export interface HttpConnectionManagerDeps {
  readonly routes: { get(name: string): RouteTable | undefined };
  readonly httpFilters: { byName(name: string): HttpFilterFactory | undefined; byTypeUrl(typeUrl: string): HttpFilterFactory | undefined };
  /** Compiles an inline route_config (the router's compiler); without it inline route configs are refused. */
  readonly compileRouteConfiguration?: (config: RouteConfiguration) => RouteTable;
  readonly onHttpStreamComplete?: (info: StreamInfo) => void;
  readonly nodeId: string;
}

export interface HttpConnectionManagerSettings {
  readonly listenerName: string;
  /** The listener's per_connection_buffer_limit_bytes (Envoy default 1 MiB): the most a retry can replay. */
  readonly bufferLimitBytes: number;
}

function durationMs(d: { seconds?: number; nanos?: number } | undefined, fallback: number): number {
  if (!d) return fallback;
  return (d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
}

/**
 * Fields of HttpConnectionManager this implementation accepts; anything else set is refused (NACK). `access_log` is
 * compiled by main (src/proxy/admin/access-log.ts), the rest here; forward_client_cert_details and
 * set_current_client_cert_details in ./client-cert-details.ts.
 */
const SUPPORTED_HCM_FIELDS = new Set([
  'codec_type', 'stat_prefix', 'rds', 'route_config', 'http_filters', 'common_http_protocol_options', 'http_protocol_options',
  'http2_protocol_options', 'server_name', 'server_header_transformation', 'max_request_headers_kb', 'stream_idle_timeout',
  'request_timeout', 'request_headers_timeout', 'use_remote_address', 'xff_num_trusted_hops',
  'skip_xff_append', 'via', 'generate_request_id', 'preserve_external_request_id', 'always_set_request_id_in_response',
  'upgrade_configs', 'normalize_path', 'merge_slashes', 'access_log', 'forward_client_cert_details',
  'set_current_client_cert_details', 'path_with_escaped_slashes_action',
]);
/** Fields refused with the reason (instead of accepted and ignored). */
const REFUSED_HCM_FIELDS: Record<string, string> = {
  tracing: 'tracing is not supported by Trellis',
  local_reply_config: 'local reply mappers and body formats are not supported by Trellis (local replies use Envoy\'s default bodies)',
  drain_timeout: 'not supported: HTTP/2 connections get one GOAWAY when a listener drains, and the listener drain time governs the rest',
  delayed_close_timeout: 'not supported: connections close as soon as the response is written',
  internal_address_config: 'not supported: internal addresses are the RFC 1918 / loopback ranges',
  request_id_extension: 'not supported: x-request-id is a UUID v4',
  access_log_options: 'not supported: access logs are written when the stream completes',
  add_user_agent: 'not supported (x-envoy-downstream-service-cluster/node are not added)',
  proxy_100_continue: 'not supported: 100-continue is answered by the proxy',
  strip_any_host_port: 'not supported: the port stays in :authority (virtual hosts match with and without port)',
  strip_matching_host_port: 'not supported: the port stays in :authority (virtual hosts match with and without port)',
};

interface CompiledFilter {
  readonly name: string;
  readonly filter: HttpFilter;
}

/** An HttpConnectionManager validated and compiled; `instantiate` per listener socket set. */
export interface CompiledHttpConnectionManager {
  readonly statPrefix: string;
  readonly stats: Record<string, number>;
  readonly codecType: 'AUTO' | 'HTTP1' | 'HTTP2';
  createConnectionManager(settings: HttpConnectionManagerSettings): HttpConnectionManager;
  /** Frees filter instances when this config is replaced. */
  close(): void;
}

/**
 * Counters of one HCM (Envoy's names under http.<stat_prefix>.), shared with its filters. Declared fields, not a
 * dictionary filled by key: V8 turns an object that gets dozens of properties by keyed stores into a hash table, and
 * every per-request `stats[name]++` then hashes the name (the profile's "string-keyed counters"). Filters may add
 * their own counters by name.
 */
export class HttpConnectionManagerStats {
  [name: string]: number;
  downstream_cx_total = 0;
  downstream_cx_active = 0;
  downstream_cx_http1_total = 0;
  downstream_cx_http1_active = 0;
  downstream_cx_http2_total = 0;
  downstream_cx_http2_active = 0;
  downstream_cx_protocol_error = 0;
  downstream_cx_upgrades_total = 0;
  downstream_cx_upgrades_active = 0;
  downstream_rq_total = 0;
  downstream_rq_http1_total = 0;
  downstream_rq_http2_total = 0;
  downstream_rq_active = 0;
  downstream_rq_completed = 0;
  downstream_rq_1xx = 0;
  downstream_rq_2xx = 0;
  downstream_rq_3xx = 0;
  downstream_rq_4xx = 0;
  downstream_rq_5xx = 0;
  downstream_rq_rx_reset = 0;
  downstream_rq_tx_reset = 0;
  downstream_rq_header_timeout = 0;
  downstream_rq_too_large = 0;
  downstream_rq_non_relative_path = 0;
  downstream_rq_ws_on_non_ws_route = 0;
  downstream_cx_drain_close = 0;
  rq_direct_response = 0;
  rq_redirect = 0;
  no_route = 0;
  no_cluster = 0;
  rq_total = 0;
  rq_reset_after_downstream_response_started = 0;
  downstream_rq_failed_path_normalization = 0;
  downstream_rq_redirected_with_normalized_path = 0;
  downstream_rq_idle_timeout = 0;
  downstream_rq_timeout = 0;
}

/** Validates and compiles an HttpConnectionManager; throws XdsValidationError listing every problem. */
export function compileHttpConnectionManager(config: Hcm, path: string, deps: HttpConnectionManagerDeps): CompiledHttpConnectionManager {
  const problems: string[] = [];
  for (const key of Object.keys(config)) {
    const v = (config as Record<string, unknown>)[key];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (v === false && (key === 'add_user_agent' || key === 'proxy_100_continue' || key === 'strip_any_host_port' || key === 'strip_matching_host_port')) continue;
    if ((key === 'add_user_agent' || key === 'proxy_100_continue') && (v as { value?: boolean }).value === false) continue;
    if (REFUSED_HCM_FIELDS[key]) problems.push(`${path}.${key}: ${REFUSED_HCM_FIELDS[key]}`);
    else if (!SUPPORTED_HCM_FIELDS.has(key)) problems.push(`${path}.${key}: not supported by Trellis`);
  }
  const pathNormalization = compilePathNormalization(config, path, problems);
  if (config.scoped_routes) problems.push(`${path}.scoped_routes: not supported (use rds or route_config)`);
  const statPrefix = config.stat_prefix ?? '';
  if (!statPrefix) problems.push(`${path}.stat_prefix: required`);
  const codecType = String(config.codec_type ?? 'AUTO');
  if (codecType !== 'AUTO' && codecType !== 'HTTP1' && codecType !== 'HTTP2') problems.push(`${path}.codec_type: ${codecType} is not supported (AUTO, HTTP1, HTTP2)`);

  // Routes: RDS by name (looked up per request so RDS updates apply at once) or inline.
  let routeSource: () => RouteTable | undefined = () => undefined;
  if (config.rds) {
    const name = config.rds.route_config_name ?? '';
    if (!name) problems.push(`${path}.rds.route_config_name: required`);
    routeSource = () => deps.routes.get(name);
  } else if (config.route_config) {
    if (!deps.compileRouteConfiguration) problems.push(`${path}.route_config: inline route configurations need the route compiler`);
    else {
      try {
        const table = deps.compileRouteConfiguration(config.route_config);
        routeSource = () => table;
      } catch (err) {
        if (err instanceof XdsValidationError) problems.push(...err.details.map((d) => `${path}.route_config: ${d}`));
        else problems.push(`${path}.route_config: ${(err as Error).message}`);
      }
    }
  } else {
    problems.push(`${path}: expected rds or route_config`);
  }

  const stats = new HttpConnectionManagerStats();
  const filters: CompiledFilter[] = [];
  const httpFilters = config.http_filters ?? [];
  httpFilters.forEach((f, i) => {
    const fp = `${path}.http_filters[${i}]`;
    if (f.disabled) return;
    if (f.config_discovery) {
      problems.push(`${fp}.config_discovery: ECDS is not supported`);
      return;
    }
    const typeUrl = f.typed_config?.type_url;
    const factory = (typeUrl ? deps.httpFilters.byTypeUrl(typeUrl) : undefined) ?? deps.httpFilters.byName(f.name ?? '');
    if (!factory) {
      if (!f.is_optional) problems.push(`${fp}: unknown HTTP filter ${f.name ?? ''}${typeUrl ? ` (${typeUrl})` : ''}`);
      return;
    }
    let decoded: unknown = {};
    try {
      if (f.typed_config) decoded = unpackAny(f.typed_config);
    } catch (err) {
      problems.push(`${fp}.typed_config: ${(err as Error).message}`);
      return;
    }
    try {
      filters.push({ name: f.name || factory.name, filter: factory.create(decoded, { statPrefix, stats }) });
    } catch (err) {
      if (err instanceof XdsValidationError) problems.push(...err.details.map((d) => `${fp}.typed_config: ${d}`));
      else problems.push(`${fp}.typed_config: ${(err as Error).message}`);
    }
  });
  const last = filters[filters.length - 1];
  if (!last || !last.filter.decodeStream) problems.push(`${path}.http_filters: the last filter must be a terminal filter (envoy.filters.http.router)`);
  filters.slice(0, -1).forEach((f, i) => {
    if (f.filter.decodeStream) problems.push(`${path}.http_filters[${i}]: terminal filter ${f.name} must be last`);
  });

  const maxKb = config.max_request_headers_kb?.value ?? 60;
  if (maxKb < 1 || maxKb > 8192) problems.push(`${path}.max_request_headers_kb: expected 1..8192, got ${maxKb}`);
  const common = config.common_http_protocol_options ?? {};
  const maxHeadersCount = common.max_headers_count?.value ?? 100;
  if (maxHeadersCount < 1) problems.push(`${path}.common_http_protocol_options.max_headers_count: must be at least 1`);
  const underscores = String(common.headers_with_underscores_action ?? 'ALLOW');
  const websocket = (config.upgrade_configs ?? []).some((u) => (u.upgrade_type ?? '').toLowerCase() === 'websocket' && u.enabled?.value !== false);
  for (const [i, u] of (config.upgrade_configs ?? []).entries()) {
    if ((u.upgrade_type ?? '').toLowerCase() !== 'websocket') problems.push(`${path}.upgrade_configs[${i}].upgrade_type: only websocket is supported`);
    if (u.filters?.length) problems.push(`${path}.upgrade_configs[${i}].filters: not supported`);
  }
  if (problems.length > 0) {
    for (const f of filters) f.filter.close?.();
    throw new XdsValidationError(problems);
  }

  const options: CompiledOptions = {
    statPrefix,
    stats,
    filters: filters.map((f) => f.filter),
    routeSource,
    maxRequestHeadersKb: maxKb,
    maxHeadersCount,
    requestHeadersTimeoutMs: durationMs(config.request_headers_timeout, 0),
    // Envoy's defaults: stream_idle_timeout 5 min, request_timeout off; 0 disables either.
    streamIdleTimeoutMs: durationMs(config.stream_idle_timeout, 300_000),
    requestTimeoutMs: durationMs(config.request_timeout, 0),
    pathNormalization,
    idleTimeoutMs: durationMs(common.idle_timeout, 3_600_000),
    useRemoteAddress: config.use_remote_address?.value === true,
    xffNumTrustedHops: config.xff_num_trusted_hops ?? 0,
    skipXffAppend: config.skip_xff_append === true,
    clientCertDetails: compileClientCertDetails(config),
    generateRequestId: config.generate_request_id?.value !== false,
    preserveExternalRequestId: config.preserve_external_request_id === true,
    alwaysSetRequestIdInResponse: config.always_set_request_id_in_response === true,
    serverName: config.server_name || 'envoy',
    serverHeaderTransformation: String(config.server_header_transformation ?? 'OVERWRITE'),
    via: config.via ?? '',
    underscores,
    websocket,
    deps,
  };
  return {
    statPrefix,
    stats,
    codecType: codecType as 'AUTO' | 'HTTP1' | 'HTTP2',
    createConnectionManager: (settings) => new HttpConnectionManager(options, settings),
    close: () => {
      for (const f of filters) f.filter.close?.();
    },
  };
}

interface CompiledOptions {
  readonly statPrefix: string;
  readonly stats: HttpConnectionManagerStats;
  readonly filters: readonly HttpFilter[];
  readonly routeSource: () => RouteTable | undefined;
  readonly maxRequestHeadersKb: number;
  readonly maxHeadersCount: number;
  readonly requestHeadersTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** normalize_path, merge_slashes, path_with_escaped_slashes_action; undefined when all are off. */
  readonly pathNormalization: PathNormalizationOptions | undefined;
  readonly idleTimeoutMs: number;
  readonly useRemoteAddress: boolean;
  readonly xffNumTrustedHops: number;
  readonly skipXffAppend: boolean;
  readonly clientCertDetails: ClientCertDetailsConfig;
  readonly generateRequestId: boolean;
  readonly preserveExternalRequestId: boolean;
  readonly alwaysSetRequestIdInResponse: boolean;
  readonly serverName: string;
  readonly serverHeaderTransformation: string;
  readonly via: string;
  readonly underscores: string;
  readonly websocket: boolean;
  readonly deps: HttpConnectionManagerDeps;
}

/** TRELLIS_DOWNSTREAM_HTTP1_CODEC=node serves HTTP/1.1 with node:http's server instead of the lean codec (to compare). */
const NODE_HTTP1_CODEC = process.env['TRELLIS_DOWNSTREAM_HTTP1_CODEC'] === 'node';

/** One HCM instance on one listener: owns the codecs and their connections. */
export class HttpConnectionManager {
  private readonly http1: DownstreamCodec;
  private readonly http2: Http2Codec;
  private draining = false;

  constructor(readonly options: CompiledOptions, readonly settings: HttpConnectionManagerSettings) {
    const stats = options.stats;
    const codecOptions: DownstreamCodecOptions = {
      maxRequestHeadersKb: options.maxRequestHeadersKb,
      maxHeadersCount: options.maxHeadersCount,
      requestHeadersTimeoutMs: options.requestHeadersTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      onStream: (stream, conn) => this.onStream(stream, conn),
      onProtocolError: (kind: DownstreamProtocolError) => {
        stats['downstream_cx_protocol_error']!++;
        if (kind === 'header_timeout') {
          stats['downstream_rq_header_timeout']!++;
          stats['downstream_rq_4xx']!++;
        } else stats['downstream_rq_4xx']!++;
      },
      onConnectionOpen: (p) => {
        stats['downstream_cx_total']!++;
        stats['downstream_cx_active']!++;
        stats[`downstream_cx_${p}_total`]!++;
        stats[`downstream_cx_${p}_active`]!++;
      },
      onConnectionClose: (p) => {
        stats['downstream_cx_active']!--;
        stats[`downstream_cx_${p}_active`]!--;
      },
    };
    this.http1 = NODE_HTTP1_CODEC ? new Http1Codec(codecOptions) : new Http1LeanCodec(codecOptions);
    this.http2 = new Http2Codec(codecOptions);
  }

  get activeConnections(): number {
    return this.http1.activeConnections + this.http2.activeConnections;
  }

  /** Serves one accepted (and, for TLS, decrypted) connection with the codec the ALPN or preface chose. */
  serve(socket: import('node:stream').Duplex, info: DownstreamConnectionInfo, protocol: 'http1' | 'http2', initialBytes?: Buffer): void {
    const codec: DownstreamCodec = protocol === 'http2' ? this.http2 : this.http1;
    codec.serve(socket, info, initialBytes);
  }

  drain(): void {
    this.draining = true;
    this.http1.drain();
    this.http2.drain();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  destroy(): void {
    this.http1.destroy();
    this.http2.destroy();
  }

  private onStream(stream: ServerStream, conn: DownstreamConnectionInfo): void {
    new ActiveStream(this, stream, conn).start();
  }
}

const NOOP = (): void => {};

/** One request through the filter chain. Implements what filters and the router see. */
class ActiveStream implements HttpFilterContext, HttpTerminalStream, RequestBodySink {
  readonly requestHeaders: HttpHeaders;
  readonly info: StreamInfo;
  private routeCached = false;
  private cachedRoute: RouteEntry | undefined;
  private readonly random = Math.random();
  private filterIndex = 0;
  private localReplied = false;
  private completed = false;
  private responseStartedFlag = false;
  private downstreamResetCallback: () => void = NOOP;
  private readonly grpc: boolean;
  abortedFlag = false;
  /** stream_idle_timeout (or the route's idle_timeout): runs from the last request or response activity. */
  private idleTimer: Deadline | undefined;
  /** Date.now() of the last activity; the timer, when it fires, re-arms for what is left. */
  private lastActivity = 0;
  private idleTimeoutMs: number;
  /** request_timeout: until the whole request was received or the response started. */
  private requestTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly hcm: HttpConnectionManager,
    private readonly stream: ServerStream,
    conn: DownstreamConnectionInfo,
  ) {
    this.requestHeaders = stream.headers;
    this.grpc = isGrpcRequest(stream.headers);
    this.info = new ActiveStreamInfo(stream.protocol, conn, hcm.settings.listenerName, hcm.options.statPrefix, stream.headers);
    this.idleTimeoutMs = hcm.options.streamIdleTimeoutMs;
    stream.onReset(() => this.onDownstreamGone());
  }

  private touch(): void {
    // Upgraded (WebSocket) streams are tunnels: their lifetime is the connection's.
    if (this.idleTimeoutMs <= 0 || this.completed || this.stream.upgrade) return;
    // One timer per stream, armed once: activity only records the time (a refresh() per chunk relinks Node's timer
    // list each time); when the timer fires it re-arms for the rest if there was activity since.
    // Date.now(): ms resolution is all a timeout needs, and performance.now() allocates (process.hrtime) per call.
    this.lastActivity = Date.now();
    // The configured duration goes on the list all streams with it share (src/common/deadline-list.ts).
    if (!this.idleTimer) this.idleTimer = scheduleDeadline(this.idleTimeoutMs, () => this.onIdleTimer());
  }

  private onIdleTimer(): void {
    this.idleTimer = undefined;
    if (this.completed) return;
    const left = this.lastActivity + this.idleTimeoutMs - Date.now();
    // Activity since it was armed: a one-off timer for what is left (rare: a stream that lives this long).
    if (left >= 1) this.idleTimer = scheduleTimer(left, () => this.onIdleTimer());
    else this.onTimeout('idle');
  }

  private onTimeout(kind: 'idle' | 'request'): void {
    if (this.completed) return;
    const stats = this.hcm.options.stats;
    stats[kind === 'idle' ? 'downstream_rq_idle_timeout' : 'downstream_rq_timeout']!++;
    if (kind === 'idle') this.info.responseFlags.add('SI');
    const cb = this.downstreamResetCallback;
    this.downstreamResetCallback = NOOP;
    if (this.responseStartedFlag) {
      this.info.responseCodeDetails = kind === 'idle' ? 'stream_idle_timeout' : 'request_overall_timeout';
      cb();
      this.resetDownstream();
      return;
    }
    // The router (or a filter) stops its upstream work before the local reply goes out.
    cb();
    this.stream.closeConnectionAfterResponse();
    this.sendLocalReply(408, kind === 'idle' ? 'stream timeout' : 'request timeout', { details: kind === 'idle' ? 'stream_idle_timeout' : 'request_overall_timeout' });
  }

  get aborted(): boolean {
    return this.abortedFlag;
  }
  get upgrade(): { readonly socket: import('node:stream').Duplex; readonly head: Buffer } | undefined {
    return this.stream.upgrade;
  }
  get bufferLimitBytes(): number {
    return this.hcm.settings.bufferLimitBytes;
  }
  get responseStarted(): boolean {
    return this.responseStartedFlag;
  }

  start(): void {
    const o = this.hcm.options;
    const stats = o.stats;
    stats.downstream_rq_total++;
    if (this.stream.protocol === 'HTTP/2') stats.downstream_rq_http2_total++;
    else stats.downstream_rq_http1_total++;
    stats.downstream_rq_active++;
    const h = this.requestHeaders;
    this.touch();
    if (o.requestTimeoutMs > 0 && !this.stream.upgrade) (this.requestTimer = setTimeout(() => this.onTimeout('request'), o.requestTimeoutMs)).unref();

    // Limits: Envoy's 431 for too many or too large headers (HTTP/1 size is enforced by the parser).
    if (this.stream.headerCount > o.maxHeadersCount || this.stream.headerBytes > o.maxRequestHeadersKb * 1024) {
      this.stream.closeConnectionAfterResponse();
      this.sendLocalReply(431, 'Request Header Fields Too Large', { details: 'http1.too_many_headers', flag: 'DPE' });
      return;
    }
    if (o.underscores !== 'ALLOW') {
      for (const name of Object.keys(h)) {
        if (name.includes('_') && name.charCodeAt(0) !== 58) {
          if (o.underscores === 'REJECT_REQUEST') {
            this.stream.closeConnectionAfterResponse();
            this.sendLocalReply(400, 'Bad Request', { details: 'http1.invalid_characters', flag: 'DPE' });
            return;
          }
          delete h[name];
        }
      }
    }
    let path = h[':path'];
    if (typeof path === 'string' && !path.startsWith('/')) {
      // HTTP/1.1 absolute-form (proxy requests): use its authority and path, like Envoy.
      const m = /^https?:\/\/([^/?#]+)([^#]*)$/i.exec(path);
      if (m) {
        h[':authority'] = m[1]!;
        path = m[2] || '/';
        h[':path'] = path;
      } else if (!(path === '*' && h[':method'] === 'OPTIONS') && h[':method'] !== 'CONNECT') {
        stats['downstream_rq_non_relative_path']!++;
        this.sendLocalReply(404, '', { details: 'absolute_path_rejected' });
        return;
      }
    }

    if (o.pathNormalization && typeof h[':path'] === 'string' && (h[':path'] as string).startsWith('/')) {
      const normalized = normalizePath(h[':path'] as string, o.pathNormalization);
      // Envoy answers a gRPC request that would be redirected with 400: gRPC clients do not follow redirects.
      if (normalized.action === 'reject' || (normalized.action === 'redirect' && this.grpc)) {
        stats['downstream_rq_failed_path_normalization']!++;
        this.stream.closeConnectionAfterResponse();
        this.sendLocalReply(400, 'Bad Request', { details: 'path_normalization_failed' });
        return;
      }
      h[':path'] = normalized.path;
      if (normalized.action === 'redirect') {
        stats['downstream_rq_redirected_with_normalized_path']!++;
        this.sendLocalReply(307, '', { details: 'path_normalization_failed', headers: { location: normalized.path } });
        return;
      }
    }

    // Hop-by-hop headers: those named in Connection, then the standard set (te: trailers survives for gRPC).
    const connection = this.stream.connectionHeader ?? h['connection'];
    if (typeof connection === 'string') {
      for (const token of connection.split(',')) {
        const name = token.trim().toLowerCase();
        if (name && name !== 'upgrade' && !name.startsWith(':')) delete h[name];
      }
    }
    const upgrade = this.stream.upgrade;
    // `delete` of an absent name is still a runtime call per name; most requests carry none of these.
    if (h['connection'] !== undefined) delete h['connection'];
    if (h['keep-alive'] !== undefined) delete h['keep-alive'];
    if (h['proxy-connection'] !== undefined) delete h['proxy-connection'];
    if (h['transfer-encoding'] !== undefined) delete h['transfer-encoding'];
    if (h['te'] !== undefined && h['te'] !== 'trailers') delete h['te'];
    if (upgrade) {
      stats['downstream_cx_upgrades_total']!++;
      const kind = String(h['upgrade'] ?? '').toLowerCase();
      if (kind !== 'websocket' || !o.websocket) {
        stats['downstream_rq_ws_on_non_ws_route']!++;
        this.sendLocalReply(403, '', { details: 'upgrade_failed' });
        return;
      }
    } else if (h['upgrade'] !== undefined) delete h['upgrade'];

    const scheme = this.info.downstreamTls ? 'https' : 'http';
    h[':scheme'] = scheme;
    const internal = applyForwardedHeaders(h, this.info.downstreamRemoteAddress, scheme, {
      useRemoteAddress: o.useRemoteAddress,
      xffNumTrustedHops: o.xffNumTrustedHops,
      skipXffAppend: o.skipXffAppend,
    });
    applyClientCertDetails(h, this.info.downstreamTls, o.clientCertDetails);
    this.info.requestId = ensureRequestId(h, o.generateRequestId, o.useRemoteAddress && !internal && !o.preserveExternalRequestId);
    if (o.via) {
      const via = h['via'];
      h['via'] = via ? `${Array.isArray(via) ? via.join(', ') : via}, ${o.via}` : o.via;
    }
    this.runFilters();
  }

  private runFilters(): void {
    const filters = this.hcm.options.filters;
    while (this.filterIndex < filters.length - 1) {
      const filter = filters[this.filterIndex++]!;
      if (!filter.onRequestHeaders) continue;
      // FilterConfig { disabled: true } on the route turns this filter off for the request.
      if (this.route()?.perFilterConfig.get(filter.name) === FILTER_DISABLED) continue;
      let status;
      try {
        status = filter.onRequestHeaders(this);
      } catch (err) {
        this.sendLocalReply(500, 'filter error', { details: `filter_error{${filter.name}}` });
        return;
      }
      if (this.localReplied || this.completed) return;
      if (status === 'stop') return;
    }
    if (this.localReplied || this.completed || this.abortedFlag) return;
    const terminal = filters[filters.length - 1]!;
    this.filterIndex = filters.length;
    terminal.decodeStream!(this, this);
  }

  continueDecoding(): void {
    if (this.localReplied || this.completed || this.abortedFlag) return;
    this.runFilters();
  }

  routeConfig<T>(filterName: string): T | undefined {
    const v = this.route()?.perFilterConfig.get(filterName);
    return v === FILTER_DISABLED ? undefined : (v as T | undefined);
  }
  clearRouteCache(): void {
    this.routeCached = false;
    this.cachedRoute = undefined;
  }
  route(): RouteEntry | undefined {
    if (!this.routeCached) {
      this.routeCached = true;
      const table = this.hcm.options.routeSource();
      this.cachedRoute = table?.match(this.requestHeaders, this.random);
      if (this.cachedRoute) {
        this.info.routeName = this.cachedRoute.name;
        const action = this.cachedRoute.action;
        // A route's idle_timeout replaces the HCM's stream_idle_timeout (0 disables it).
        if (action.kind === 'cluster' && action.idleTimeoutMs !== undefined && action.idleTimeoutMs !== this.idleTimeoutMs) {
          this.idleTimeoutMs = action.idleTimeoutMs;
          this.idleTimer?.cancel();
          this.idleTimer = undefined;
          this.touch();
        }
      }
    }
    return this.cachedRoute;
  }

  sendLocalReply(status: number, body: string, options?: LocalReplyOptions): void {
    if (this.completed) return;
    this.localReplied = true;
    if (options?.flag) this.info.responseFlags.add(options.flag);
    this.info.responseCodeDetails = options?.details ?? 'via_upstream';
    if (this.responseStartedFlag) {
      this.resetDownstream();
      return;
    }
    const reply = buildLocalReply(status, body, this.grpc, options?.grpcStatus, options?.headers);
    const empty = reply.body.length === 0;
    this.encodeHeaders(reply.status, reply.headers, empty);
    if (!empty) {
      this.encodeData(reply.body);
      this.encodeEnd();
    }
  }

  setBodySink(sink: { onData(chunk: Buffer): void; onEnd(trailers?: HttpHeaders): void }): void {
    // This stream is the codec's sink (no wrapper closures per request): it counts and forwards to the router's.
    this.bodySink = sink;
    this.stream.setBodySink(this);
  }
  private bodySink: RequestBodySink | undefined;
  /** RequestBodySink, for the codec. */
  onData(chunk: Buffer): void {
    this.info.bytesReceived += chunk.length;
    this.touch();
    this.bodySink!.onData(chunk);
  }
  /** RequestBodySink, for the codec. */
  onEnd(trailers?: HttpHeaders): void {
    this.touch();
    this.clearRequestTimer();
    this.bodySink!.onEnd(trailers);
  }
  pauseBody(): void {
    this.stream.pauseBody();
  }
  resumeBody(): void {
    this.stream.resumeBody();
  }
  onDownstreamReset(callback: () => void): void {
    this.downstreamResetCallback = callback;
  }

  encodeHeaders(status: number, headers: HttpHeaders, endStream: boolean): void {
    if (this.responseStartedFlag || this.completed) return;
    this.responseStartedFlag = true;
    this.clearRequestTimer();
    this.touch();
    const o = this.hcm.options;
    const filters = o.filters;
    for (let i = Math.min(this.filterIndex, filters.length) - 1; i >= 0; i--) {
      const f = filters[i]!;
      if (f.onResponseHeaders) {
        try {
          f.onResponseHeaders(this, headers);
        } catch {
          // A filter failing on the response must not take the stream down.
        }
      }
    }
    if (o.serverHeaderTransformation === 'OVERWRITE' || (o.serverHeaderTransformation === 'APPEND_IF_ABSENT' && headers['server'] === undefined)) {
      headers['server'] = o.serverName;
    } else if (o.serverHeaderTransformation === 'PASS_THROUGH') {
      // keep upstream's
    }
    if (o.alwaysSetRequestIdInResponse && this.info.requestId) headers['x-request-id'] = this.info.requestId;
    if (o.via) {
      const via = headers['via'];
      headers['via'] = via ? `${Array.isArray(via) ? via.join(', ') : via}, ${o.via}` : o.via;
    }
    this.info.responseCode = status;
    this.info.responseHeaders = headers;
    if (this.info.responseCodeDetails === undefined) this.info.responseCodeDetails = 'via_upstream';
    const stats = o.stats;
    if (status < 100) {
      // not counted
    } else if (status < 200) stats.downstream_rq_1xx++;
    else if (status < 300) stats.downstream_rq_2xx++;
    else if (status < 400) stats.downstream_rq_3xx++;
    else if (status < 500) stats.downstream_rq_4xx++;
    else if (status < 600) stats.downstream_rq_5xx++;
    if (this.hcm.isDraining) {
      this.stream.closeConnectionAfterResponse();
      stats['downstream_cx_drain_close']!++;
    }
    this.stream.respond(status, headers, endStream);
    if (endStream) this.complete();
  }
  encodeData(chunk: Buffer): boolean {
    if (this.completed) return true;
    this.info.bytesSent += chunk.length;
    this.touch();
    return this.stream.write(chunk);
  }
  onEncoderDrain(callback: () => void): void {
    this.stream.onDrain(callback);
  }
  encodeEnd(trailers?: HttpHeaders): void {
    if (this.completed) return;
    this.stream.end(trailers);
    this.complete();
  }
  resetDownstream(): void {
    if (this.completed) return;
    this.hcm.options.stats['downstream_rq_tx_reset']!++;
    if (this.responseStartedFlag) this.hcm.options.stats['rq_reset_after_downstream_response_started']!++;
    this.stream.reset();
    this.complete();
  }

  private clearRequestTimer(): void {
    if (this.requestTimer) clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
  }

  private onDownstreamGone(): void {
    if (this.completed) return;
    this.abortedFlag = true;
    this.info.responseFlags.add('DC');
    this.hcm.options.stats['downstream_rq_rx_reset']!++;
    if (this.info.responseCode === undefined) this.info.responseCodeDetails ??= 'downstream_remote_disconnect';
    const cb = this.downstreamResetCallback;
    this.downstreamResetCallback = NOOP;
    cb();
    this.complete();
  }

  private complete(): void {
    if (this.completed) return;
    this.completed = true;
    this.idleTimer?.cancel();
    this.clearRequestTimer();
    const o = this.hcm.options;
    o.stats.downstream_rq_active--;
    o.stats.downstream_rq_completed++;
    this.info.endTime = performance.now();
    const filters = o.filters;
    for (let i = 0; i < Math.min(this.filterIndex, filters.length); i++) {
      try {
        filters[i]!.onStreamComplete?.(this);
      } catch {
        // stats/log filters must not break completion
      }
    }
    o.deps.onHttpStreamComplete?.(this.info);
  }
}
