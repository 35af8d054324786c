// envoy.filters.http.ext_authz: asks an authorization server (HTTP service, or envoy.service.auth.v3 over gRPC) about each request; denied → its status, body and headers, allowed → its headers upstream.
import type { envoy } from '../../xds/generated/types.js';
import type { FilterStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../http/filter.js';
import { HOP_BY_HOP_HEADERS, type HttpHeaders } from '../http/headers.js';
import type { DownstreamTlsInfo } from '../http/stream-info.js';
import type { ClusterManager } from '../upstream/types.js';
import { compileExtAuthz, compileExtAuthzPerRoute, type CompiledExtAuthz, type CompiledExtAuthzPerRoute } from './ext-authz-config.js';
import { CHECK_METHOD_PATH, decodeCheckAnswer, encodeCheckRequest, type CheckAttributes, type GrpcCheckOutcome, type HeaderOption } from './ext-authz-grpc.js';
import { sendHttpRequest, type CheckCall, type HttpCheckAnswer } from './ext-authz-http-client.js';
import { peerIdentityOf } from './rbac/rbac-input.js';

type ExtAuthz = envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
type ExtAuthzPerRoute = envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute;

export const EXT_AUTHZ_FILTER_NAME = 'envoy.filters.http.ext_authz';
export const EXT_AUTHZ_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const EXT_AUTHZ_PER_ROUTE_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
/** Added to the upstream request when the check failed and failure_mode_allow let it through (failure_mode_allow_header_add). */
export const FAILURE_MODE_ALLOWED_HEADER = 'x-envoy-auth-failure-mode-allowed';
/** An OK authorization response may list request headers to remove in this header. */
export const HEADERS_TO_REMOVE_HEADER = 'x-envoy-auth-headers-to-remove';

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
