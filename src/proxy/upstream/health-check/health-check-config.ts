// Cluster.health_checks (envoy.config.core.v3.HealthCheck) validated into the settings the health checker and its
// HTTP, TCP and gRPC probes run with, with Envoy's defaults and every unsupported field refused with its path.
import type { envoy } from '../../../xds/generated/types.js';
import { durationMs } from '../../../common/duration.js';
import { rejectUnsupported, wrapped } from '../config-values.js';

type HealthCheck = envoy.config.core.v3.HealthCheck;
type Payload = envoy.config.core.v3.HealthCheck.Payload;
type Int64Range = envoy.type.v3.Int64Range;

/** [start, end) status ranges, Envoy's Int64Range. */
export type StatusRanges = readonly (readonly [number, number])[];

export interface HttpProbeConfig {
  readonly kind: 'http';
  /** :authority; Envoy's default is the cluster's name. */
  readonly host: string;
  readonly path: string;
  readonly method: string;
  readonly http2: boolean;
  readonly headersToAdd: readonly { readonly name: string; readonly value: string; readonly append: boolean }[];
  readonly headersToRemove: readonly string[];
  readonly expectedStatuses: StatusRanges;
  readonly retriableStatuses: StatusRanges;
}

export interface TcpProbeConfig {
  readonly kind: 'tcp';
  /** Empty: a connect-only check. */
  readonly send: Buffer;
  /** Each must be found in the response, in order (Envoy's TcpHealthCheckMatcher). */
  readonly receive: readonly Buffer[];
}

export interface GrpcProbeConfig {
  readonly kind: 'grpc';
  readonly serviceName: string;
  /** :authority; Envoy's default is the cluster's name. */
  readonly authority: string;
  readonly initialMetadata: readonly { readonly name: string; readonly value: string }[];
}

export type ProbeConfig = HttpProbeConfig | TcpProbeConfig | GrpcProbeConfig;

export interface HealthCheckConfig {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly initialJitterMs: number;
  readonly intervalJitterMs: number;
  readonly intervalJitterPercent: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
  readonly altPort: number | undefined;
  readonly reuseConnection: boolean;
  readonly noTrafficIntervalMs: number;
  readonly noTrafficHealthyIntervalMs: number;
  readonly unhealthyIntervalMs: number;
  readonly unhealthyEdgeIntervalMs: number;
  readonly healthyEdgeIntervalMs: number;
  readonly alwaysLogFailures: boolean;
  /** tls_options.alpn_protocols: offered on TLS health-check connections instead of the cluster's own. */
  readonly alpnProtocols: readonly string[] | undefined;
  readonly probe: ProbeConfig;
}

const SUPPORTED = [
  'timeout', 'interval', 'initial_jitter', 'interval_jitter', 'interval_jitter_percent', 'unhealthy_threshold', 'healthy_threshold',
  'alt_port', 'reuse_connection', 'http_health_check', 'tcp_health_check', 'grpc_health_check', 'no_traffic_interval',
  'no_traffic_healthy_interval', 'unhealthy_interval', 'unhealthy_edge_interval', 'healthy_edge_interval', 'always_log_health_check_failures',
  'always_log_health_check_success', 'tls_options',
];

const METHODS = ['METHOD_UNSPECIFIED', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

function statusRanges(ranges: readonly Int64Range[] | undefined, path: string, problems: string[]): [number, number][] {
  return (ranges ?? []).map((r, i) => {
    const start = Number(r.start ?? 0);
    const end = Number(r.end ?? 0);
    if (start < 100) problems.push(`${path}[${i}].start: must be at least 100, got ${start}`);
    if (end > 600) problems.push(`${path}[${i}].end: must be at most 600, got ${end}`);
    if (end <= start) problems.push(`${path}[${i}]: end (${end}) must be greater than start (${start})`);
    return [start, end];
  });
}

function payload(p: Payload | undefined, path: string, problems: string[]): Buffer {
  if (!p) return Buffer.alloc(0);
  rejectUnsupported(p, ['text', 'binary'], path, problems);
  if (p.binary !== undefined && p.binary.length > 0) return Buffer.from(p.binary);
  const text = p.text ?? '';
  // Envoy's Payload.text is hex ("000000FF"), not literal text.
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    problems.push(`${path}.text: must be hex-encoded bytes (an even number of 0-9a-f digits), got "${text}"`);
    return Buffer.alloc(0);
  }
  return Buffer.from(text, 'hex');
}

function headerOptions(list: readonly envoy.config.core.v3.HeaderValueOption[] | undefined, path: string, problems: string[]): { name: string; value: string; append: boolean }[] {
  return (list ?? []).map((o, i) => {
    const p = `${path}[${i}]`;
    rejectUnsupported(o, ['header', 'append', 'append_action'], p, problems);
    const name = (o.header?.key ?? '').toLowerCase();
    const value = o.header?.value ?? '';
    if (!name) problems.push(`${p}.header.key: required`);
    if (name.startsWith(':')) problems.push(`${p}.header.key: pseudo-header ${name} cannot be added`);
    // Health checks have no request to take %FORMATTER% values from; only literal values are supported.
    if (value.includes('%')) problems.push(`${p}.header.value: header formatters (%...%) are not supported in health checks`);
    const action = o.append_action ?? 'APPEND_IF_EXISTS_OR_ADD';
    const append = o.append !== undefined ? o.append.value !== false : action === 'APPEND_IF_EXISTS_OR_ADD' || action === 0;
    return { name, value, append };
  });
}

function compileOne(hc: HealthCheck, path: string, clusterName: string, problems: string[]): HealthCheckConfig {
  rejectUnsupported(hc, SUPPORTED, path, problems);
  const required = (field: 'timeout' | 'interval'): number => {
    if (!hc[field]) {
      problems.push(`${path}.${field}: required`);
      return 1000;
    }
    const v = durationMs(hc[field], 0);
    if (v <= 0) problems.push(`${path}.${field}: must be greater than 0`);
    return v;
  };
  const timeoutMs = required('timeout');
  const intervalMs = required('interval');
  const threshold = (field: 'unhealthy_threshold' | 'healthy_threshold'): number => {
    if (!hc[field]) {
      problems.push(`${path}.${field}: required`);
      return 1;
    }
    const v = wrapped(hc[field], 0);
    // Envoy treats 0 as 1: the first result makes the transition.
    return Math.max(1, v);
  };
  const unhealthyThreshold = threshold('unhealthy_threshold');
  const healthyThreshold = threshold('healthy_threshold');
  const altPort = hc.alt_port?.value;
  if (altPort !== undefined && !(altPort >= 1 && altPort <= 65535)) problems.push(`${path}.alt_port: must be 1-65535, got ${altPort}`);
  const optionalMs = (field: 'no_traffic_interval' | 'no_traffic_healthy_interval' | 'unhealthy_interval' | 'unhealthy_edge_interval' | 'healthy_edge_interval', fallback: number): number => {
    const v = durationMs(hc[field], fallback);
    if (v <= 0) problems.push(`${path}.${field}: must be greater than 0`);
    return v;
  };
  const noTrafficIntervalMs = optionalMs('no_traffic_interval', 60_000);
  const unhealthyIntervalMs = optionalMs('unhealthy_interval', intervalMs);
  const jitterPercent = hc.interval_jitter_percent ?? 0;
  if (jitterPercent > 100) problems.push(`${path}.interval_jitter_percent: must be at most 100, got ${jitterPercent}`);
  rejectUnsupported(hc.tls_options, ['alpn_protocols'], `${path}.tls_options`, problems);

  let probe: ProbeConfig | undefined;
  const kinds = (['http_health_check', 'tcp_health_check', 'grpc_health_check'] as const).filter((k) => hc[k] !== undefined);
  if (kinds.length !== 1) problems.push(`${path}: exactly one of http_health_check, tcp_health_check, grpc_health_check is required${kinds.length > 1 ? `, got ${kinds.join(' and ')}` : ''}`);
  if (hc.http_health_check) {
    const h = hc.http_health_check;
    const hp = `${path}.http_health_check`;
    rejectUnsupported(h, ['host', 'path', 'request_headers_to_add', 'request_headers_to_remove', 'expected_statuses', 'retriable_statuses', 'codec_client_type', 'method'], hp, problems);
    const p = h.path ?? '';
    if (!p) problems.push(`${hp}.path: required`);
    else if (!p.startsWith('/')) problems.push(`${hp}.path: must start with "/", got "${p}"`);
    const codec = h.codec_client_type ?? 'HTTP1';
    if (codec !== 'HTTP1' && codec !== 'HTTP2' && codec !== 0 && codec !== 1) problems.push(`${hp}.codec_client_type: only HTTP1 and HTTP2 are supported, got ${String(codec)}`);
    const methodName = typeof h.method === 'number' ? METHODS[h.method] : (h.method ?? 'METHOD_UNSPECIFIED');
    if (methodName === 'CONNECT') problems.push(`${hp}.method: CONNECT is not allowed`);
    else if (!methodName || !METHODS.includes(methodName)) problems.push(`${hp}.method: unknown method ${String(h.method)}`);
    const expected = statusRanges(h.expected_statuses, `${hp}.expected_statuses`, problems);
    probe = {
      kind: 'http',
      host: h.host || clusterName,
      path: p,
      method: !methodName || methodName === 'METHOD_UNSPECIFIED' ? 'GET' : methodName,
      http2: codec === 'HTTP2' || codec === 1,
      headersToAdd: headerOptions(h.request_headers_to_add, `${hp}.request_headers_to_add`, problems),
      headersToRemove: (h.request_headers_to_remove ?? []).map((n) => n.toLowerCase()),
      // Envoy: 200 only when no range is given.
      expectedStatuses: expected.length > 0 ? expected : [[200, 201]],
      retriableStatuses: statusRanges(h.retriable_statuses, `${hp}.retriable_statuses`, problems),
    };
  }
  if (hc.tcp_health_check) {
    const t = hc.tcp_health_check;
    const tp = `${path}.tcp_health_check`;
    rejectUnsupported(t, ['send', 'receive'], tp, problems);
    probe = { kind: 'tcp', send: payload(t.send, `${tp}.send`, problems), receive: (t.receive ?? []).map((r, i) => payload(r, `${tp}.receive[${i}]`, problems)) };
  }
  if (hc.grpc_health_check) {
    const g = hc.grpc_health_check;
    const gp = `${path}.grpc_health_check`;
    rejectUnsupported(g, ['service_name', 'authority', 'initial_metadata'], gp, problems);
    probe = {
      kind: 'grpc',
      serviceName: g.service_name ?? '',
      authority: g.authority || clusterName,
      initialMetadata: headerOptions(g.initial_metadata, `${gp}.initial_metadata`, problems).map(({ name, value }) => ({ name, value })),
    };
  }
  return {
    timeoutMs,
    intervalMs,
    initialJitterMs: durationMs(hc.initial_jitter, 0),
    intervalJitterMs: durationMs(hc.interval_jitter, 0),
    intervalJitterPercent: jitterPercent,
    unhealthyThreshold,
    healthyThreshold,
    altPort,
    reuseConnection: wrapped(hc.reuse_connection, true),
    noTrafficIntervalMs,
    noTrafficHealthyIntervalMs: optionalMs('no_traffic_healthy_interval', noTrafficIntervalMs),
    unhealthyIntervalMs,
    unhealthyEdgeIntervalMs: optionalMs('unhealthy_edge_interval', unhealthyIntervalMs),
    healthyEdgeIntervalMs: optionalMs('healthy_edge_interval', intervalMs),
    alwaysLogFailures: hc.always_log_health_check_failures === true,
    alpnProtocols: hc.tls_options?.alpn_protocols && hc.tls_options.alpn_protocols.length > 0 ? [...hc.tls_options.alpn_protocols] : undefined,
    probe: probe ?? { kind: 'tcp', send: Buffer.alloc(0), receive: [] },
  };
}

/** Validates Cluster.health_checks; Envoy supports one health checker per cluster and so does Trellis. */
export function compileHealthChecks(list: readonly HealthCheck[] | undefined, path: string, clusterName: string, problems: string[]): HealthCheckConfig | undefined {
  if (!list || list.length === 0) return undefined;
  if (list.length > 1) problems.push(`${path}: only one health check per cluster is supported (Envoy: "Multiple health checks not supported"), got ${list.length}`);
  return compileOne(list[0]!, `${path}[0]`, clusterName, problems);
}
