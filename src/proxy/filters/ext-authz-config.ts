// ext_authz's config compiled once (envoy.extensions.filters.http.ext_authz.v3.ExtAuthz and ExtAuthzPerRoute): which service, header allow-lists, status_on_error, enablement.
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, durationMs, fieldPath, fractionOf, isValidHeaderName, rejectUnsupportedFields } from '../router/config-problems.js';
import { textPredicate, compileStringMatcher, type StringPredicate } from '../router/string-matcher.js';
import { compileMetadataMatcher } from './rbac/metadata-matcher.js';

type ExtAuthz = envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
type ExtAuthzPerRoute = envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute;
type ListStringMatcher = envoy.type.matcher.v3.ListStringMatcher;
type StringMatcher = envoy.type.matcher.v3.StringMatcher;

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

export type KeyMatcher = (name: string) => boolean;

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

/** Compiles an ExtAuthz config (HTTP or gRPC service); every problem with its field path in one XdsValidationError. */
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
