// envoy.filters.http.ext_authz: asks an authorization server (HTTP service, or envoy.service.auth.v3 over gRPC) about each request; denied → its status, body and headers, allowed → its headers upstream.
import type { envoy } from '../../xds/generated/types.js';
import type { FilterStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../http/filter.js';
import { HOP_BY_HOP_HEADERS, type HttpHeaders } from '../http/headers.js';
import type { DownstreamTlsInfo } from '../http/stream-info.js';
import { ConfigProblems, durationMs, fieldPath, fractionOf, isValidHeaderName, rejectUnsupportedFields } from '../router/config-problems.js';
import { textPredicate, compileStringMatcher, type StringPredicate } from '../router/string-matcher.js';
import type { ClusterManager } from '../upstream/types.js';
import { CHECK_METHOD_PATH, decodeCheckAnswer, encodeCheckRequest, type CheckAttributes, type GrpcCheckOutcome, type HeaderOption } from './ext-authz-grpc.js';
import { sendHttpRequest, type CheckCall, type HttpCheckAnswer } from './ext-authz-http-client.js';
import { peerIdentityOf } from './rbac/rbac-input.js';
import { compileMetadataMatcher } from './rbac/metadata-matcher.js';

type ExtAuthz = envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
type ExtAuthzPerRoute = envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute;
type ListStringMatcher = envoy.type.matcher.v3.ListStringMatcher;
type StringMatcher = envoy.type.matcher.v3.StringMatcher;

export const EXT_AUTHZ_FILTER_NAME = 'envoy.filters.http.ext_authz';
export const EXT_AUTHZ_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const EXT_AUTHZ_PER_ROUTE_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
/** Added to the upstream request when the check failed and failure_mode_allow let it through (failure_mode_allow_header_add). */
export const FAILURE_MODE_ALLOWED_HEADER = 'x-envoy-auth-failure-mode-allowed';
/** An OK authorization response may list request headers to remove in this header. */
export const HEADERS_TO_REMOVE_HEADER = 'x-envoy-auth-headers-to-remove';

const SUPPORTED = new Set([
  'http_service', 'grpc_service', 'transport_api_version', 'failure_mode_allow', 'failure_mode_allow_header_add', 'clear_route_cache', 'status_on_error',
  'include_peer_certificate', 'include_tls_session', 'stat_prefix', 'allowed_headers', 'disallowed_headers', 'filter_enabled', 'filter_enabled_metadata',
]);
const REFUSED: Record<string, string> = {
  with_request_body: 'sending the request body to the authorization server is not supported by Trellis',
};

/** envoy.type.v3.StatusCode names (proto JSON may give either the name or the number). */
const STATUS_CODES: Record<string, number> = {
  Continue: 100, OK: 200, Created: 201, Accepted: 202, NonAuthoritativeInformation: 203, NoContent: 204, ResetContent: 205, PartialContent: 206,
  MultiStatus: 207, AlreadyReported: 208, IMUsed: 226, MultipleChoices: 300, MovedPermanently: 301, Found: 302, SeeOther: 303, NotModified: 304,
  UseProxy: 305, TemporaryRedirect: 307, PermanentRedirect: 308, BadRequest: 400, Unauthorized: 401, PaymentRequired: 402, Forbidden: 403,
  NotFound: 404, MethodNotAllowed: 405, NotAcceptable: 406, ProxyAuthenticationRequired: 407, RequestTimeout: 408, Conflict: 409, Gone: 410,
  LengthRequired: 411, PreconditionFailed: 412, PayloadTooLarge: 413, URITooLong: 414, UnsupportedMediaType: 415, RangeNotSatisfiable: 416,
  ExpectationFailed: 417, MisdirectedRequest: 421, UnprocessableEntity: 422, Locked: 423, FailedDependency: 424, UpgradeRequired: 426,
  PreconditionRequired: 428, TooManyRequests: 429, RequestHeaderFieldsTooLarge: 431, InternalServerError: 500, NotImplemented: 501,
  BadGateway: 502, ServiceUnavailable: 503, GatewayTimeout: 504, HTTPVersionNotSupported: 505, VariantAlsoNegotiates: 506,
  InsufficientStorage: 507, LoopDetected: 508, NotExtended: 510, NetworkAuthenticationRequired: 511,
};

type KeyMatcher = (name: string) => boolean;

/**
 * A ListStringMatcher over header names. Header names are lower-case on the wire, so exact/prefix/suffix/contains
 * patterns compare case-insensitively (Envoy's HTTP service lower-cases them the same way); safe_regex stays as given.
 */
function compileKeyMatcher(list: ListStringMatcher | undefined, path: string, problems: ConfigProblems): KeyMatcher[] {
  return (list?.patterns ?? []).flatMap((m: StringMatcher, i) => {
    const p = `${fieldPath(path, 'patterns')}[${i}]`;
    const kind = (['exact', 'prefix', 'suffix', 'contains'] as const).find((k) => m[k] !== undefined);
    if (kind && m.safe_regex === undefined) return [textPredicate(kind, m[kind] as string, true)];
    const f: StringPredicate | undefined = compileStringMatcher(m, p, problems);
    return f ? [f] : [];
  });
}

function anyOf(matchers: readonly KeyMatcher[]): KeyMatcher {
  return (name) => matchers.some((m) => m(name));
}

/** Envoy's default timeout of a gRPC check (ext_authz's DefaultTimeout) when grpc_service.timeout is unset. */
const DEFAULT_GRPC_TIMEOUT_MS = 200;

export interface CompiledExtAuthz {
  /** Which authorization API: the raw HTTP service or envoy.service.auth.v3.Authorization over gRPC. */
  readonly kind: 'http' | 'grpc';
  readonly cluster: string;
  /** gRPC: the :authority of the call (envoy_grpc.authority, default the cluster name) and initial_metadata. */
  readonly grpcAuthority: string;
  readonly initialMetadata: readonly (readonly [string, string])[];
  readonly includePeerCertificate: boolean;
  readonly includeTlsSession: boolean;
  readonly timeoutMs: number;
  readonly pathPrefix: string;
  /** Request headers copied into the check request: authorization, :method, :path, :authority and the allowed ones. */
  readonly requestHeader: KeyMatcher;
  readonly headersToAdd: readonly (readonly [string, string])[];
  readonly upstreamHeader: KeyMatcher;
  readonly upstreamHeaderToAppend: KeyMatcher;
  /** Headers of a denied authorization response that reach the client. */
  readonly clientHeader: KeyMatcher;
  readonly clientHeaderOnSuccess: KeyMatcher;
  readonly failureModeAllow: boolean;
  readonly failureModeAllowHeaderAdd: boolean;
  readonly statusOnError: number;
  readonly clearRouteCache: boolean;
  readonly statPrefix: string;
  readonly enabledFraction: number;
  readonly enabledByMetadata?: (filterState: ReadonlyMap<string, unknown>) => boolean;
}

/** Compiles an ExtAuthz config (HTTP service only); every problem with its field path in one XdsValidationError. */
export function compileExtAuthz(config: ExtAuthz): CompiledExtAuthz {
  const problems = new ConfigProblems();
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined || value === null || value === false || value === '' || (Array.isArray(value) && value.length === 0)) continue;
    if (REFUSED[key]) problems.add(key, REFUSED[key]!);
    else if (!SUPPORTED.has(key)) problems.add(key, 'not supported by Trellis');
  }
  const api = String(config.transport_api_version ?? 'V3');
  if (api !== 'V3' && api !== 'AUTO' && api !== '2' && api !== '0') problems.add('transport_api_version', `only V3 is supported (got ${api})`);
  const http = config.http_service;
  const grpc = config.grpc_service;
  if (!http && !grpc) problems.add('http_service', 'one of http_service or grpc_service is required');
  if (http && grpc) problems.add('grpc_service', 'only one of http_service or grpc_service may be set');
  let grpcCluster = '';
  let grpcAuthority = '';
  let grpcTimeoutMs: number | undefined;
  const initialMetadata: [string, string][] = [];
  if (grpc) {
    rejectUnsupportedFields(grpc, new Set(['envoy_grpc', 'timeout', 'initial_metadata']), 'grpc_service', problems);
    if (grpc.google_grpc) problems.add('grpc_service.google_grpc', 'not supported by Trellis: use envoy_grpc (the call goes through the cluster)');
    else if (!grpc.envoy_grpc?.cluster_name) problems.add('grpc_service.envoy_grpc.cluster_name', 'required');
    if (grpc.envoy_grpc) rejectUnsupportedFields(grpc.envoy_grpc, new Set(['cluster_name', 'authority']), 'grpc_service.envoy_grpc', problems);
    grpcCluster = grpc.envoy_grpc?.cluster_name ?? '';
    grpcAuthority = grpc.envoy_grpc?.authority || grpcCluster;
    grpcTimeoutMs = durationMs(grpc.timeout, 'grpc_service.timeout', problems);
    (grpc.initial_metadata ?? []).forEach((h, i) => {
      const key = (h.key ?? '').toLowerCase();
      if (!isValidHeaderName(key) || key.startsWith(':')) problems.add(`grpc_service.initial_metadata[${i}].key`, 'a valid header name is required');
      else initialMetadata.push([key, h.value ?? '']);
    });
  }
  const hp = 'http_service';
  if (http) rejectUnsupportedFields(http, new Set(['server_uri', 'path_prefix', 'authorization_request', 'authorization_response']), hp, problems);
  const uri = http?.server_uri;
  if (http && !uri?.uri) problems.add(fieldPath(hp, 'server_uri.uri'), 'required');
  if (http && !uri?.cluster) problems.add(fieldPath(hp, 'server_uri.cluster'), 'required');
  const timeoutMs = durationMs(uri?.timeout, fieldPath(hp, 'server_uri.timeout'), problems);
  if (http && uri?.timeout === undefined) problems.add(fieldPath(hp, 'server_uri.timeout'), 'required');
  const pathPrefix = http?.path_prefix ?? '';
  if (pathPrefix && !pathPrefix.startsWith('/')) problems.add(fieldPath(hp, 'path_prefix'), `must start with '/' (got ${JSON.stringify(pathPrefix)})`);

  const areq = http?.authorization_request;
  const ap = fieldPath(hp, 'authorization_request');
  if (areq) rejectUnsupportedFields(areq, new Set(['allowed_headers', 'headers_to_add']), ap, problems);
  const allowed = [
    ...compileKeyMatcher(areq?.allowed_headers, fieldPath(ap, 'allowed_headers'), problems),
    ...compileKeyMatcher(config.allowed_headers, 'allowed_headers', problems),
  ];
  const disallowed = compileKeyMatcher(config.disallowed_headers, 'disallowed_headers', problems);
  const always = new Set(['authorization', ':method', ':path', ':authority', 'host']);
  // HTTP service: these four always, plus the allowed ones. gRPC: every header unless allowed_headers narrows them.
  const requestHeader: KeyMatcher = grpc
    ? (name) => (allowed.length === 0 || allowed.some((m) => m(name))) && !disallowed.some((m) => m(name))
    : (name) => (always.has(name) || allowed.some((m) => m(name))) && !disallowed.some((m) => m(name));
  const headersToAdd = (areq?.headers_to_add ?? []).flatMap((h, i): [string, string][] => {
    const key = (h.key ?? '').toLowerCase();
    if (!isValidHeaderName(key)) {
      problems.add(`${fieldPath(ap, 'headers_to_add')}[${i}].key`, 'a valid header name is required');
      return [];
    }
    return [[key, h.value ?? '']];
  });

  const ares = http?.authorization_response;
  const rp = fieldPath(hp, 'authorization_response');
  if (ares) rejectUnsupportedFields(ares, new Set(['allowed_upstream_headers', 'allowed_upstream_headers_to_append', 'allowed_client_headers', 'allowed_client_headers_on_success']), rp, problems);
  const upstream = compileKeyMatcher(ares?.allowed_upstream_headers, fieldPath(rp, 'allowed_upstream_headers'), problems);
  const upstreamAppend = compileKeyMatcher(ares?.allowed_upstream_headers_to_append, fieldPath(rp, 'allowed_upstream_headers_to_append'), problems);
  const client = compileKeyMatcher(ares?.allowed_client_headers, fieldPath(rp, 'allowed_client_headers'), problems);
  const clientOnSuccess = compileKeyMatcher(ares?.allowed_client_headers_on_success, fieldPath(rp, 'allowed_client_headers_on_success'), problems);
  // Envoy: without allowed_client_headers every header but Host goes to the client; with it, these always do too.
  const clientDefaults = new Set([':status', 'content-length', 'www-authenticate', 'location']);
  const clientHeader: KeyMatcher = client.length === 0 ? (name) => name !== 'host' && name !== ':authority' : (name) => clientDefaults.has(name) || client.some((m) => m(name));

  let statusOnError = 403;
  if (config.status_on_error) {
    const code = config.status_on_error.code;
    const n = typeof code === 'number' ? code : STATUS_CODES[String(code)];
    if (n === undefined || n === 0 || n < 100 || n > 599) problems.add('status_on_error.code', `expected an HTTP status code (got ${String(code)})`);
    else statusOnError = n;
  }
  let enabledFraction = 1;
  if (config.filter_enabled) {
    rejectUnsupportedFields(config.filter_enabled, new Set(['default_value', 'runtime_key']), 'filter_enabled', problems);
    enabledFraction = fractionOf(config.filter_enabled.default_value, 'filter_enabled.default_value', problems);
  }
  const enabledByMetadata = config.filter_enabled_metadata ? compileMetadataMatcher(config.filter_enabled_metadata, 'filter_enabled_metadata', problems) : undefined;
  problems.throwIfAny();
  return {
    kind: grpc ? 'grpc' : 'http',
    cluster: grpc ? grpcCluster : uri!.cluster!,
    grpcAuthority,
    initialMetadata,
    includePeerCertificate: config.include_peer_certificate === true,
    includeTlsSession: config.include_tls_session === true,
    timeoutMs: grpc ? (grpcTimeoutMs ?? DEFAULT_GRPC_TIMEOUT_MS) : (timeoutMs ?? 0),
    pathPrefix,
    requestHeader,
    headersToAdd,
    upstreamHeader: anyOf(upstream),
    upstreamHeaderToAppend: anyOf(upstreamAppend),
    clientHeader,
    clientHeaderOnSuccess: anyOf(clientOnSuccess),
    failureModeAllow: config.failure_mode_allow === true,
    failureModeAllowHeaderAdd: config.failure_mode_allow_header_add === true,
    statusOnError,
    clearRouteCache: config.clear_route_cache === true,
    statPrefix: config.stat_prefix ?? '',
    enabledFraction,
    ...(enabledByMetadata ? { enabledByMetadata } : {}),
  };
}

/** Per-route settings: `disabled` skips the check on the route; context_extensions go into the gRPC CheckRequest. */
export interface CompiledExtAuthzPerRoute {
  readonly disabled: boolean;
  readonly contextExtensions: Readonly<Record<string, string>>;
}

export function compileExtAuthzPerRoute(config: ExtAuthzPerRoute): CompiledExtAuthzPerRoute {
  const problems = new ConfigProblems();
  rejectUnsupportedFields(config, new Set(['disabled', 'check_settings']), '', problems);
  if (config.check_settings) {
    // The HTTP service never sends context_extensions (as in Envoy); without body buffering the last flag changes nothing.
    rejectUnsupportedFields(config.check_settings, new Set(['context_extensions', 'disable_request_body_buffering']), 'check_settings', problems);
  }
  problems.throwIfAny();
  return { disabled: config.disabled === true, contextExtensions: { ...(config.check_settings?.context_extensions ?? {}) } };
}

function headerList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : typeof value === 'string' ? [value] : value;
}

/** Response headers a denied or successful check passes to the client: never pseudo-headers or framing headers. */
function isPassableResponseHeader(name: string): boolean {
  return !name.startsWith(':') && name !== 'content-length' && name !== 'transfer-encoding' && !HOP_BY_HOP_HEADERS.has(name);
}

type HeaderEdit = readonly [name: string, value: string, action: HeaderOption['action']];

/** The authorization decision in Envoy's terms (ExtAuthz::Response), whichever service gave it. */
export type Decision =
  | {
      readonly status: 'ok';
      /** Request header edits before the request goes upstream. */
      readonly requestEdits: readonly HeaderEdit[];
      readonly headersToRemove: readonly string[];
      /** Headers for the client's response. */
      readonly responseHeaders: readonly (readonly [string, string])[];
      readonly dynamicMetadata?: Record<string, unknown>;
    }
  | { readonly status: 'denied'; readonly code: number; readonly headers: HttpHeaders; readonly body: string; readonly dynamicMetadata?: Record<string, unknown> }
  | { readonly status: 'error'; readonly reason: string };

/** Envoy's RawHttpClientImpl::toResponse: 5xx is an error, 200 allowed (matched headers apply), anything else denied. */
export function decisionFromHttp(answer: HttpCheckAnswer, c: CompiledExtAuthz): Decision {
  if (answer.status === 'error') return answer;
  if (answer.code >= 500 && answer.code < 600) return { status: 'error', reason: `authorization server answered ${answer.code}` };
  if (answer.code === 200) {
    const requestEdits: HeaderEdit[] = [];
    const responseHeaders: [string, string][] = [];
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined || name.startsWith(':') || name === HEADERS_TO_REMOVE_HEADER) continue;
      for (const v of headerList(value)) {
        if (c.upstreamHeader(name)) requestEdits.push([name, v, 'set']);
        if (c.upstreamHeaderToAppend(name)) requestEdits.push([name, v, 'append']);
        if (c.clientHeaderOnSuccess(name) && isPassableResponseHeader(name)) responseHeaders.push([name, v]);
      }
    }
    const headersToRemove = headerList(answer.headers[HEADERS_TO_REMOVE_HEADER]).flatMap((v) => v.split(',')).map((x) => x.trim().toLowerCase()).filter(Boolean);
    return { status: 'ok', requestEdits, headersToRemove, responseHeaders };
  }
  const headers: HttpHeaders = {};
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value !== undefined && c.clientHeader(name) && isPassableResponseHeader(name)) headers[name] = value;
  }
  return { status: 'denied', code: answer.code, headers, body: answer.body.toString('utf8') };
}

/** A CheckResponse as a decision: its headers apply as given (the gRPC API has no header allow-lists). */
export function decisionFromGrpc(outcome: GrpcCheckOutcome): Decision {
  if (outcome.status === 'error') return outcome;
  const meta = outcome.dynamicMetadata ? { dynamicMetadata: outcome.dynamicMetadata } : {};
  if (outcome.status === 'ok') {
    return {
      status: 'ok',
      requestEdits: outcome.headers.map((h) => [h.key, h.value, h.action] as const),
      headersToRemove: outcome.headersToRemove,
      responseHeaders: outcome.responseHeadersToAdd.filter((h) => isPassableResponseHeader(h.key)).map((h) => [h.key, h.value] as const),
      ...meta,
    };
  }
  const headers: HttpHeaders = {};
  for (const h of outcome.headers) {
    if (!isPassableResponseHeader(h.key)) continue;
    headers[h.key] = h.action === 'append' && headers[h.key] !== undefined ? [...headerList(headers[h.key]), h.value] : h.value;
  }
  return { status: 'denied', code: outcome.code, headers, body: outcome.body, ...meta };
}

/** Envoy's principal of a peer: the first URI SAN, else the first DNS SAN, else the subject. */
function principalOf(tls: DownstreamTlsInfo | undefined): string {
  if (!tls) return '';
  const peer = peerIdentityOf(tls);
  return peer.uriSans[0] ?? peer.dnsSans[0] ?? peer.subject;
}

class ExtAuthzFilter implements HttpFilter {
  readonly name = EXT_AUTHZ_FILTER_NAME;
  private readonly stat: { ok: string; denied: string; error: string; failureModeAllowed: string; disabled: string };
  /** Headers for the downstream response of allowed requests (allowed_client_headers_on_success), per stream. */
  private readonly onSuccessHeaders = new WeakMap<HttpFilterContext, (readonly [string, string])[]>();
  /** The check in flight per stream, cancelled if the stream ends first (the client went away). */
  private readonly pending = new WeakMap<HttpFilterContext, CheckCall>();

  constructor(
    private readonly config: CompiledExtAuthz,
    private readonly clusters: ClusterManager,
    private readonly stats: Record<string, number>,
  ) {
    // Envoy: http.<stat_prefix>.ext_authz.[<filter stat_prefix>.]ok
    const base = config.statPrefix ? `ext_authz.${config.statPrefix}.` : 'ext_authz.';
    this.stat = { ok: `${base}ok`, denied: `${base}denied`, error: `${base}error`, failureModeAllowed: `${base}failure_mode_allowed`, disabled: `${base}disabled` };
    for (const x of Object.values(this.stat)) stats[x] ??= 0;
  }

  private count(stat: string): void {
    this.stats[stat] = (this.stats[stat] ?? 0) + 1;
  }

  onRequestHeaders(ctx: HttpFilterContext): FilterStatus {
    const perRoute = ctx.routeConfig<CompiledExtAuthzPerRoute>(EXT_AUTHZ_FILTER_NAME);
    if (perRoute?.disabled) return 'continue';
    const c = this.config;
    const enabled = (c.enabledFraction >= 1 || Math.random() < c.enabledFraction) && (!c.enabledByMetadata || c.enabledByMetadata(ctx.info.filterState));
    if (!enabled) {
      this.count(this.stat.disabled);
      return 'continue';
    }
    const finish = (decision: Decision): void => {
      this.pending.delete(ctx);
      if (!ctx.aborted) this.onComplete(ctx, decision);
    };
    let call: CheckCall;
    if (c.kind === 'http') {
      call = sendHttpRequest(this.clusters, c.cluster, this.checkRequestHeaders(ctx.requestHeaders), undefined, c.timeoutMs, (answer) => finish(decisionFromHttp(answer, c)));
    } else {
      let trailers: HttpHeaders | undefined;
      const headers: HttpHeaders = {
        ':method': 'POST',
        ':path': CHECK_METHOD_PATH,
        ':authority': c.grpcAuthority,
        ':scheme': 'http',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${Math.max(1, c.timeoutMs)}m`,
      };
      for (const [k, v] of c.initialMetadata) headers[k] = v;
      call = sendHttpRequest(
        this.clusters,
        c.cluster,
        headers,
        encodeCheckRequest(this.checkAttributes(ctx, perRoute)),
        c.timeoutMs,
        (answer) => finish(decisionFromGrpc(decodeCheckAnswer(answer, trailers))),
        (t) => (trailers = t),
      );
    }
    this.pending.set(ctx, call);
    return 'stop';
  }

  /** The HTTP service's check request: the allowed request headers, path_prefix + :path, headers_to_add, no body. */
  private checkRequestHeaders(request: HttpHeaders): HttpHeaders {
    const c = this.config;
    const out: HttpHeaders = { ':scheme': 'http', 'content-length': '0' };
    for (const [name, value] of Object.entries(request)) {
      if (value === undefined || name === 'content-length' || name === ':scheme' || name === 'transfer-encoding') continue;
      if (!c.requestHeader(name)) continue;
      out[name] = name === ':path' && c.pathPrefix ? `${c.pathPrefix}${String(value)}` : value;
    }
    out[':method'] ??= 'GET';
    out[':path'] ??= c.pathPrefix || '/';
    for (const [k, v] of c.headersToAdd) out[k] = v;
    return out;
  }

  /** Envoy's CheckRequestUtils::createHttpCheck: peers, the HTTP request with its (allowed) headers, context extensions. */
  private checkAttributes(ctx: HttpFilterContext, perRoute: CompiledExtAuthzPerRoute | undefined): CheckAttributes {
    const c = this.config;
    const info = ctx.info;
    const h = ctx.requestHeaders;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(h)) {
      if (value !== undefined && c.requestHeader(name)) headers[name] = headerList(value).join(',');
    }
    const tls = info.downstreamTls;
    const local = tls as (DownstreamTlsInfo & { localUriSans?: readonly string[] }) | undefined;
    const length = h['content-length'];
    return {
      source: {
        address: info.downstreamRemoteAddress,
        port: info.downstreamRemotePort,
        principal: principalOf(tls),
        ...(c.includePeerCertificate && tls?.peerCertificatePem ? { certificate: encodeURIComponent(tls.peerCertificatePem) } : {}),
      },
      destination: { address: info.downstreamLocalAddress, port: info.downstreamLocalPort, principal: local?.localUriSans?.[0] ?? '' },
      requestId: info.requestId,
      method: String(h[':method'] ?? ''),
      path: String(h[':path'] ?? ''),
      host: String(h[':authority'] ?? ''),
      scheme: String(h[':scheme'] ?? (tls ? 'https' : 'http')),
      protocol: info.protocol,
      size: typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : -1,
      headers,
      contextExtensions: perRoute?.contextExtensions ?? {},
      ...(c.includeTlsSession && tls?.sni ? { sni: tls.sni } : {}),
    };
  }

  private onComplete(ctx: HttpFilterContext, decision: Decision): void {
    const c = this.config;
    if (decision.status !== 'error' && decision.dynamicMetadata) ctx.info.filterState.set(EXT_AUTHZ_FILTER_NAME, decision.dynamicMetadata);
    if (decision.status === 'ok') {
      this.count(this.stat.ok);
      const h = ctx.requestHeaders;
      let changed = false;
      for (const [name, value, action] of decision.requestEdits) {
        if (action === 'add_if_absent' && h[name] !== undefined) continue;
        h[name] = action === 'append' && h[name] !== undefined ? [...headerList(h[name]), value] : value;
        changed = true;
      }
      // Pseudo-headers and Host are not the authorization server's to remove.
      for (const name of decision.headersToRemove) {
        if (name.startsWith(':') || name === 'host' || h[name] === undefined) continue;
        delete h[name];
        changed = true;
      }
      if (decision.responseHeaders.length > 0) this.onSuccessHeaders.set(ctx, [...decision.responseHeaders]);
      if (changed && c.clearRouteCache) ctx.clearRouteCache();
      ctx.continueDecoding();
      return;
    }
    if (decision.status === 'denied') {
      this.count(this.stat.denied);
      ctx.sendLocalReply(decision.code, decision.body, { headers: decision.headers, flag: 'UAEX', details: 'ext_authz_denied' });
      return;
    }
    this.count(this.stat.error);
    if (c.failureModeAllow) {
      this.count(this.stat.failureModeAllowed);
      if (c.failureModeAllowHeaderAdd) ctx.requestHeaders[FAILURE_MODE_ALLOWED_HEADER] = 'true';
      ctx.continueDecoding();
      return;
    }
    ctx.sendLocalReply(c.statusOnError, '', { flag: 'UAEX', details: 'ext_authz_error' });
  }

  onStreamComplete(ctx: HttpFilterContext): void {
    this.pending.get(ctx)?.cancel();
    this.pending.delete(ctx);
  }

  onResponseHeaders(ctx: HttpFilterContext, headers: HttpHeaders): void {
    const add = this.onSuccessHeaders.get(ctx);
    if (!add) return;
    for (const [name, value] of add) headers[name] = headers[name] === undefined ? value : [...headerList(headers[name]), value];
  }
}

/** The ext_authz factory; the check requests go through the live cluster manager. */
export function extAuthzFilterFactory(clusters: ClusterManager): HttpFilterFactory {
  return {
    name: EXT_AUTHZ_FILTER_NAME,
    typeUrl: EXT_AUTHZ_TYPE_URL,
    routeConfigTypeUrl: EXT_AUTHZ_PER_ROUTE_TYPE_URL,
    create(config, context) {
      return new ExtAuthzFilter(compileExtAuthz((config ?? {}) as ExtAuthz), clusters, context.stats ?? {});
    },
    createRouteConfig(config) {
      return compileExtAuthzPerRoute((config ?? {}) as ExtAuthzPerRoute);
    },
  };
}
