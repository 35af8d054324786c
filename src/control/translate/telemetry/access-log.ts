// The HCM `access_log` entries of one proxy and direction, from the Telemetry resources that select it (Istio's accessLogging) or else MeshConfig accessLogFile.
//
// Levels and directions are chosen as for tracing (telemetry-selection.ts); each more specific level overrides the
// providers it names (an entry without providers names the providers in effect, or MeshConfig
// defaultProviders.accessLogging).
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { AccessLogging } from '../../../api/telemetry/telemetry.js';
import type { Telemetry } from '../../../api/kinds.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import { toStruct } from '../common/protobuf-values.js';
import { extensionProvider, modeApplies, telemetryLevels, type TelemetryDirection, type TelemetryProxy } from './telemetry-selection.js';

export type AccessLog = envoy.config.accesslog.v3.AccessLog;

export const FILE_ACCESS_LOG_NAME = 'envoy.access_loggers.file';
export const FILE_ACCESS_LOG_MESSAGE = 'envoy.extensions.access_loggers.file.v3.FileAccessLog';
export const CEL_FILTER_NAME = 'envoy.access_loggers.extension_filters.cel';
export const CEL_FILTER_MESSAGE = 'envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';
/** Istio's built-in provider: `envoy`, Envoy's file logger to /dev/stdout with Istio's default text format. */
export const BUILTIN_ENVOY_PROVIDER = 'envoy';

/** Istio's default text format (EnvoyTextLogFormat), used when a provider or MeshConfig gives none. */
export const ISTIO_TEXT_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  '%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% ' +
  '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% ' +
  '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ' +
  '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON format (EnvoyJSONLogFormatIstio). */
export const ISTIO_JSON_LOG_FORMAT: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
};

interface ProviderState {
  disabled: boolean;
  filter?: string;
}

/** The providers (by name) that log, each with its CEL filter, after merging the levels; undefined when no Telemetry configures access logging. */
export function mergeAccessLogging(levels: readonly Telemetry[], direction: TelemetryDirection, mesh: MeshConfig): Map<string, ProviderState> | undefined {
  let state: Map<string, ProviderState> | undefined;
  for (const telemetry of levels) {
    const entries = (telemetry.spec.accessLogging ?? []).filter((e: AccessLogging) => modeApplies(e.match?.mode, direction));
    if (entries.length === 0) continue;
    const next = new Map(state ?? []);
    for (const entry of entries) {
      let names = (entry.providers ?? []).map((p) => p.name).filter((n) => n !== '');
      if (names.length === 0) {
        const inEffect = [...next].filter(([, s]) => !s.disabled).map(([n]) => n);
        names = inEffect.length > 0 ? inEffect : [...(mesh.defaultProviders?.accessLogging ?? [])];
      }
      for (const name of names) {
        const expression = entry.filter?.expression;
        next.set(name, { disabled: entry.disabled === true, ...(expression ? { filter: expression } : {}) });
      }
    }
    state = next;
  }
  return state;
}

function fileAccessLog(path: string, format: envoy.config.core.v3.SubstitutionFormatString, filter?: string): AccessLog {
  const config: envoy.extensions.access_loggers.file.v3.FileAccessLog = { path, log_format: format };
  return {
    name: FILE_ACCESS_LOG_NAME,
    ...(filter ? { filter: { extension_filter: { name: CEL_FILTER_NAME, typed_config: packAny(CEL_FILTER_MESSAGE, { expression: filter }) } } } : {}),
    typed_config: packAny(FILE_ACCESS_LOG_MESSAGE, config),
  };
}

function textFormat(text: string | undefined): envoy.config.core.v3.SubstitutionFormatString {
  const inline = text === undefined || text === '' ? ISTIO_TEXT_LOG_FORMAT : text.endsWith('\n') ? text : `${text}\n`;
  return { text_format_source: { inline_string: inline } };
}

function jsonFormat(labels: Readonly<Record<string, unknown>> | undefined): envoy.config.core.v3.SubstitutionFormatString {
  return { json_format: toStruct(labels && Object.keys(labels).length > 0 ? labels : ISTIO_JSON_LOG_FORMAT) };
}

/** MeshConfig accessLogFile / accessLogEncoding / accessLogFormat: Istio's mesh-wide default logging. */
export function meshAccessLogs(mesh: MeshConfig): AccessLog[] {
  if (!mesh.accessLogFile) return [];
  if (mesh.accessLogEncoding === 'JSON') {
    let labels: Record<string, unknown> | undefined;
    if (mesh.accessLogFormat) {
      // Istio reads a JSON accessLogFormat as the object of keys to formats (and falls back to its default when it is not JSON).
      try {
        const parsed: unknown = JSON.parse(mesh.accessLogFormat);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) labels = parsed as Record<string, unknown>;
      } catch {
        labels = undefined;
      }
    }
    return [fileAccessLog(mesh.accessLogFile, jsonFormat(labels))];
  }
  return [fileAccessLog(mesh.accessLogFile, textFormat(mesh.accessLogFormat))];
}

/**
 * The `access_log` list for one HTTP connection manager of `proxy` in `direction`: from Telemetry when any applies
 * (providers other than file access logs are skipped: Trellis's proxy has no gRPC or OpenTelemetry access logger),
 * otherwise MeshConfig accessLogFile.
 */
export function buildAccessLogs(telemetries: readonly Telemetry[], proxy: TelemetryProxy, direction: TelemetryDirection, mesh: MeshConfig): AccessLog[] {
  return accessLogsOfLevels(telemetryLevels(telemetries, proxy, mesh.rootNamespace), direction, mesh);
}

/** buildAccessLogs from the proxy's Telemetry levels (telemetryLevels): nothing else of the proxy is read. */
export function accessLogsOfLevels(levels: readonly Telemetry[], direction: TelemetryDirection, mesh: MeshConfig): AccessLog[] {
  const merged = mergeAccessLogging(levels, direction, mesh);
  if (merged === undefined) return meshAccessLogs(mesh);
  const logs: AccessLog[] = [];
  for (const [name, state] of merged) {
    if (state.disabled) continue;
    const provider = extensionProvider(mesh, name);
    const file = provider?.envoyFileAccessLog ?? (name === BUILTIN_ENVOY_PROVIDER && !provider ? {} : undefined);
    if (!file) continue;
    const format = file.logFormat?.labels !== undefined ? jsonFormat(file.logFormat.labels) : textFormat(file.logFormat?.text);
    logs.push(fileAccessLog(file.path ?? '/dev/stdout', format, state.filter));
  }
  return logs;
}

/** `{ accessLog }` for HttpConnectionManagerOptions: the proxy's access logs in `direction` (none without a proxy). */
export function accessLogOption(context: { mesh: MeshConfig; proxy?: Proxy; push?: PushContext }, direction: TelemetryDirection): { accessLog?: AccessLog[] } {
  const telemetries = context.proxy && context.push ? context.push.telemetry(context.proxy) : [];
  const logs = context.proxy ? buildAccessLogs(telemetries, context.proxy, direction, context.mesh) : meshAccessLogs(context.mesh);
  return logs.length > 0 ? { accessLog: logs } : {};
}
