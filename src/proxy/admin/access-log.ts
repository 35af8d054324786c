// Access logs from an HCM's access_log config: Envoy's command operators (%START_TIME%, %REQ(...)% …), text and JSON formats, stdout/stderr/file sinks.
//
// Formats are compiled once per config apply into a list of small functions; logging a request runs them
// and writes one line. Sinks are shared per path so listeners and HCMs logging to the same file append to one stream.
import { createWriteStream, type WriteStream } from 'node:fs';
import { XdsValidationError } from '../../common/errors.js';
import { unpackAny, type Any } from '../../xds/codec.js';
import type { envoy, google } from '../../xds/generated/types.js';
import { headerValue, type HttpHeaders } from '../http/headers.js';
import { formatResponseFlags } from '../http/response-flags.js';
import type { StreamInfo } from '../http/stream-info.js';
import { ConfigProblems } from '../router/config-problems.js';
import { compileAccessLogFilter, type AccessLogPredicate } from './access-log-filter.js';

/** Envoy's default format for HTTP (access_log_format docs, "Default format string"). */
export const DEFAULT_ACCESS_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  '%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

export const STDOUT_ACCESS_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
export const STDERR_ACCESS_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog';
export const FILE_ACCESS_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

type SubstitutionFormat = envoy.config.core.v3.SubstitutionFormatString;

/** What a compiled format reads: the stream, plus the wall-clock start (StreamInfo's times are performance.now()). */
export interface AccessLogEntry {
  readonly info: StreamInfo;
  /** Date.now() at the request start. */
  readonly startWallTime: number;
}

export type AccessLogFormatter = (entry: AccessLogEntry) => string;

/** One line sink (stdout, stderr, a file). */
export interface AccessLogSink {
  write(line: string): void;
}

export interface AccessLogger {
  log(entry: AccessLogEntry): void;
}

// --- command operators ---------------------------------------------------------------------------------------

type Operator = (entry: AccessLogEntry) => string | number | undefined;

const WALL_OFFSET = Date.now() - performance.now();

function durationMs(entry: AccessLogEntry): number | undefined {
  const end = entry.info.endTime;
  return end === undefined ? undefined : Math.round(end - entry.info.startTime);
}

function header(headers: HttpHeaders | undefined, spec: string, maxLength: number | undefined): string | undefined {
  if (!headers) return undefined;
  // REQ(X?Y): X, else Y. Names are case-insensitive; PATH and METHOD etc. may be written without the colon.
  for (const name of spec.split('?')) {
    const lower = name.toLowerCase();
    const value = headerValue(headers, lower) ?? (lower.startsWith(':') ? undefined : PSEUDO.has(lower) ? headerValue(headers, `:${lower}`) : undefined);
    if (value !== undefined) return maxLength !== undefined ? value.slice(0, maxLength) : value;
  }
  return undefined;
}

const PSEUDO = new Set(['path', 'method', 'authority', 'scheme']);

function hostOf(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const match = /^\[?([^\]]*?)\]?:\d+$/.exec(address);
  return match ? match[1] : address;
}

function simpleOperators(): Map<string, Operator> {
  const ops = new Map<string, Operator>();
  ops.set('PROTOCOL', (e) => e.info.protocol);
  ops.set('RESPONSE_CODE', (e) => e.info.responseCode ?? 0);
  ops.set('RESPONSE_CODE_DETAILS', (e) => e.info.responseCodeDetails);
  ops.set('RESPONSE_FLAGS', (e) => formatResponseFlags(e.info.responseFlags));
  ops.set('BYTES_RECEIVED', (e) => e.info.bytesReceived);
  ops.set('BYTES_SENT', (e) => e.info.bytesSent);
  ops.set('DURATION', durationMs);
  ops.set('REQUEST_DURATION', durationMs);
  ops.set('RESPONSE_DURATION', (e) => (e.info.upstreamResponseStart === undefined ? undefined : Math.round(e.info.upstreamResponseStart - e.info.startTime)));
  ops.set('UPSTREAM_HOST', (e) => e.info.upstreamHost);
  ops.set('UPSTREAM_CLUSTER', (e) => e.info.upstreamCluster);
  // Istio's default formats use these two: the cluster name unescaped (Trellis never escapes it) and the upstream
  // connection's local address, which StreamInfo does not record yet ('-').
  ops.set('UPSTREAM_CLUSTER_RAW', (e) => e.info.upstreamCluster);
  ops.set('UPSTREAM_LOCAL_ADDRESS', () => undefined);
  ops.set('UPSTREAM_REQUEST_ATTEMPT_COUNT', (e) => e.info.attemptCount);
  ops.set('ROUTE_NAME', (e) => e.info.routeName);
  ops.set('REQUEST_ID', (e) => e.info.requestId);
  ops.set('STREAM_ID', (e) => e.info.requestId);
  ops.set('DOWNSTREAM_REMOTE_ADDRESS', (e) => joinHostPort(e.info.downstreamRemoteAddress, e.info.downstreamRemotePort));
  ops.set('DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT', (e) => e.info.downstreamRemoteAddress);
  ops.set('DOWNSTREAM_REMOTE_PORT', (e) => e.info.downstreamRemotePort);
  ops.set('DOWNSTREAM_DIRECT_REMOTE_ADDRESS', (e) => joinHostPort(e.info.downstreamRemoteAddress, e.info.downstreamRemotePort));
  ops.set('DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT', (e) => e.info.downstreamRemoteAddress);
  ops.set('DOWNSTREAM_LOCAL_ADDRESS', (e) => joinHostPort(e.info.downstreamLocalAddress, e.info.downstreamLocalPort));
  ops.set('DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', (e) => e.info.downstreamLocalAddress);
  ops.set('DOWNSTREAM_LOCAL_PORT', (e) => e.info.downstreamLocalPort);
  ops.set('UPSTREAM_REMOTE_ADDRESS', (e) => e.info.upstreamHost);
  ops.set('UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT', (e) => hostOf(e.info.upstreamHost));
  ops.set('REQUESTED_SERVER_NAME', (e) => e.info.downstreamTls?.sni);
  ops.set('DOWNSTREAM_PEER_URI_SAN', (e) => e.info.downstreamTls?.peerUriSans.join(','));
  ops.set('DOWNSTREAM_TLS_VERSION', () => undefined);
  ops.set('CONNECTION_TERMINATION_DETAILS', () => undefined);
  ops.set('UPSTREAM_TRANSPORT_FAILURE_REASON', () => undefined);
  ops.set('HOSTNAME', () => HOSTNAME);
  ops.set('LISTENER_NAME', (e) => e.info.listenerName);
  return ops;
}

const HOSTNAME = process.env.HOSTNAME ?? 'localhost';

function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** %START_TIME% with an optional strftime-like format; the default is Envoy's `%Y-%m-%dT%H:%M:%E3SZ`. */
function startTime(format: string | undefined): Operator {
  if (!format) return (e) => new Date(e.startWallTime).toISOString();
  return (e) => strftime(format, new Date(e.startWallTime));
}

function strftime(format: string, date: Date): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return format.replace(/%(\d?)(E?)([A-Za-z%])/g, (match, digits: string, e: string, c: string) => {
    switch (c) {
      case 'Y': return String(date.getUTCFullYear());
      case 'm': return pad(date.getUTCMonth() + 1);
      case 'd': return pad(date.getUTCDate());
      case 'H': return pad(date.getUTCHours());
      case 'M': return pad(date.getUTCMinutes());
      case 'S': {
        const seconds = pad(date.getUTCSeconds());
        if (e && digits) return `${seconds}.${pad(date.getUTCMilliseconds(), 3).padEnd(Number(digits), '0').slice(0, Number(digits))}`;
        return seconds;
      }
      case 's': return String(Math.floor(date.getTime() / 1000));
      case 'f': return pad(date.getUTCMilliseconds(), 3).padEnd(Number(digits || 9), '0').slice(0, Number(digits || 9));
      case 'z': return '+0000';
      case 'Z': return 'UTC';
      case '%': return '%';
      default: return match;
    }
  });
}

// %NAME%, %NAME(arg)%, %NAME(arg):len%
const OPERATOR = /%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%/g;

/** Compiles one operator; undefined (with a problem) when unknown. */
function compileOperator(name: string, arg: string | undefined, maxLength: number | undefined, problems: string[], path: string): Operator | undefined {
  switch (name) {
    case 'REQ':
      if (!arg) break;
      return (e) => header(e.info.requestHeaders, arg, maxLength);
    case 'RESP':
      if (!arg) break;
      return (e) => header(e.info.responseHeaders, arg, maxLength);
    case 'TRAILER':
      return () => undefined;
    case 'START_TIME':
      return startTime(arg);
    case 'FILTER_STATE':
      if (!arg) break;
      return (e) => {
        const value = e.info.filterState.get(arg.split(':')[0]!);
        return value === undefined ? undefined : typeof value === 'string' ? value : JSON.stringify(value);
      };
    case 'ENVIRONMENT':
      if (!arg) break;
      return () => process.env[arg];
    default: {
      const op = SIMPLE.get(name);
      if (op) return maxLength === undefined ? op : (e) => String(op(e) ?? '-').slice(0, maxLength);
      problems.push(`${path}: unknown command operator %${name}%`);
      return undefined;
    }
  }
  problems.push(`${path}: %${name}% needs an argument, like %${name}(x-request-id)%`);
  return undefined;
}

const SIMPLE = simpleOperators();

/** Compiles a text format (Envoy's substitution format string) into a formatter. */
export function compileTextFormat(format: string, path = 'text_format', omitEmptyValues = false): AccessLogFormatter {
  const problems: string[] = [];
  const parts: (string | Operator)[] = [];
  let last = 0;
  for (const match of format.matchAll(OPERATOR)) {
    if (match.index > last) parts.push(format.slice(last, match.index));
    const op = compileOperator(match[1]!, match[2], match[3] === undefined ? undefined : Number(match[3]), problems, path);
    if (op) parts.push(op);
    last = match.index + match[0].length;
  }
  if (last < format.length) parts.push(format.slice(last));
  if (problems.length > 0) throw new XdsValidationError(problems);
  const empty = omitEmptyValues ? '' : '-';
  return (entry) => {
    let line = '';
    for (const part of parts) {
      if (typeof part === 'string') line += part;
      else {
        const value = part(entry);
        line += value === undefined || value === '' ? empty : String(value);
      }
    }
    return line;
  };
}

type JsonTemplate = (entry: AccessLogEntry) => unknown;

/** Compiles a json_format Struct: each string value is a format; a value that is exactly one operator keeps its type (numbers stay numbers). */
export function compileJsonFormat(format: google.protobuf.Struct, path = 'json_format', omitEmptyValues = false): AccessLogFormatter {
  const problems: string[] = [];
  const template = compileStruct(format, path, problems);
  if (problems.length > 0) throw new XdsValidationError(problems);
  return (entry) => `${JSON.stringify(template(entry))}\n`;

  function compileStruct(struct: google.protobuf.Struct, here: string, list: string[]): JsonTemplate {
    const fields = Object.entries(struct.fields ?? {}).map(([key, value]) => [key, compileValue(value, `${here}.${key}`, list)] as const);
    return (entry) => {
      const out: Record<string, unknown> = {};
      for (const [key, compiled] of fields) {
        const value = compiled(entry);
        if (value === undefined || value === null) {
          if (!omitEmptyValues) out[key] = null;
        } else out[key] = value;
      }
      return out;
    };
  }

  function compileValue(value: google.protobuf.Value, here: string, list: string[]): JsonTemplate {
    if (value.struct_value) return compileStruct(value.struct_value, here, list);
    if (value.string_value !== undefined) {
      const whole = /^%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%$/.exec(value.string_value);
      if (whole) {
        const op = compileOperator(whole[1]!, whole[2], whole[3] === undefined ? undefined : Number(whole[3]), list, here);
        return op ? (entry) => op(entry) ?? null : () => null;
      }
      const before = list.length;
      let text: AccessLogFormatter = () => '';
      try {
        text = compileTextFormat(value.string_value, here, true);
      } catch (err) {
        if (err instanceof XdsValidationError) list.push(...err.details);
      }
      return list.length > before ? () => null : text;
    }
    if (value.number_value !== undefined) return () => value.number_value;
    if (value.bool_value !== undefined) return () => value.bool_value;
    if (value.list_value) {
      list.push(`${here}: lists are not supported in json_format`);
      return () => null;
    }
    return () => null;
  }
}

/** Compiles a log_format (text_format, text_format_source inline, json_format), or Envoy's default when absent. */
export function compileLogFormat(format: SubstitutionFormat | undefined, path = 'log_format'): AccessLogFormatter {
  if (!format) return compileTextFormat(DEFAULT_ACCESS_LOG_FORMAT, path);
  const omit = format.omit_empty_values === true;
  if (format.json_format) return compileJsonFormat(format.json_format, `${path}.json_format`, omit);
  if (format.text_format !== undefined) return compileTextFormat(format.text_format, `${path}.text_format`, omit);
  const source = format.text_format_source;
  if (source) {
    if (source.inline_string !== undefined) return compileTextFormat(source.inline_string, `${path}.text_format_source.inline_string`, omit);
    throw new XdsValidationError([`${path}.text_format_source: only inline_string is supported`]);
  }
  return compileTextFormat(DEFAULT_ACCESS_LOG_FORMAT, path);
}

// --- sinks -----------------------------------------------------------------------------------------------------

const stdoutSink: AccessLogSink = { write: (line) => void process.stdout.write(line) };
const stderrSink: AccessLogSink = { write: (line) => void process.stderr.write(line) };
const fileSinks = new Map<string, { stream: WriteStream; sink: AccessLogSink }>();

function fileSink(path: string): AccessLogSink {
  if (path === '/dev/stdout') return stdoutSink;
  if (path === '/dev/stderr') return stderrSink;
  let entry = fileSinks.get(path);
  if (!entry) {
    const stream = createWriteStream(path, { flags: 'a' });
    // A log file that cannot be written must not take the proxy down; Envoy keeps serving too.
    stream.on('error', (err) => process.stderr.write(`access log ${path}: ${err.message}\n`));
    entry = { stream, sink: { write: (line) => void stream.write(line) } };
    fileSinks.set(path, entry);
  }
  return entry.sink;
}

/** Flushes and closes the file sinks (at exit). */
export async function closeAccessLogFiles(): Promise<void> {
  const entries = [...fileSinks.values()];
  fileSinks.clear();
  await Promise.all(entries.map((e) => new Promise<void>((resolve) => e.stream.end(resolve))));
}

// --- loggers from config ----------------------------------------------------------------------------------------

type AccessLogConfig = envoy.config.accesslog.v3.AccessLog;

/** Compiles an HCM's access_log list; throws XdsValidationError naming every unsupported logger or bad format. */
export function compileAccessLogs(configs: readonly AccessLogConfig[], path = 'access_log', sinkFor: (kind: 'stdout' | 'stderr' | 'file', file?: string) => AccessLogSink = defaultSink): AccessLogger[] {
  const problems: string[] = [];
  const loggers: AccessLogger[] = [];
  configs.forEach((config, i) => {
    const here = `${path}[${i}]`;
    let filter: AccessLogPredicate | undefined;
    if (config.filter) {
      const filterProblems = new ConfigProblems();
      filter = compileAccessLogFilter(config.filter, `${here}.filter`, filterProblems);
      problems.push(...filterProblems.details);
    }
    const typed = config.typed_config as Any | undefined;
    if (!typed) {
      problems.push(`${here}.typed_config: must be set (envoy.access_loggers.stdout, stderr or file)`);
      return;
    }
    try {
      let sink: AccessLogSink;
      let format: SubstitutionFormat | undefined;
      if (typed.type_url === STDOUT_ACCESS_LOG || typed.type_url === STDERR_ACCESS_LOG) {
        const stream = unpackAny<envoy.extensions.access_loggers.stream.v3.StdoutAccessLog>(typed);
        format = stream.log_format;
        sink = sinkFor(typed.type_url === STDOUT_ACCESS_LOG ? 'stdout' : 'stderr');
      } else if (typed.type_url === FILE_ACCESS_LOG) {
        const file = unpackAny<envoy.extensions.access_loggers.file.v3.FileAccessLog>(typed);
        if (!file.path) {
          problems.push(`${here}.typed_config.path: must be set`);
          return;
        }
        if (file.format !== undefined || file.json_format || file.typed_json_format) {
          problems.push(`${here}.typed_config: the deprecated format/json_format fields are not supported; use log_format`);
          return;
        }
        format = file.log_format;
        sink = sinkFor('file', file.path);
      } else {
        problems.push(`${here}.typed_config: unsupported access logger ${typed.type_url} (supported: ${[STDOUT_ACCESS_LOG, STDERR_ACCESS_LOG, FILE_ACCESS_LOG].join(', ')})`);
        return;
      }
      const formatter = compileLogFormat(format, `${here}.typed_config.log_format`);
      const write = (entry: AccessLogEntry): void => sink.write(ensureNewline(formatter(entry)));
      loggers.push({ log: filter ? (entry) => void (filter(entry.info) && write(entry)) : write });
    } catch (err) {
      if (err instanceof XdsValidationError) problems.push(...err.details);
      else problems.push(`${here}: ${(err as Error).message}`);
    }
  });
  if (problems.length > 0) throw new XdsValidationError(problems);
  return loggers;
}

function defaultSink(kind: 'stdout' | 'stderr' | 'file', file?: string): AccessLogSink {
  return kind === 'stdout' ? stdoutSink : kind === 'stderr' ? stderrSink : fileSink(file!);
}

function ensureNewline(line: string): string {
  return line.endsWith('\n') ? line : `${line}\n`;
}

/** The entry for a finished stream: its wall-clock start is recovered from the monotonic start time. */
export function accessLogEntry(info: StreamInfo): AccessLogEntry {
  return { info, startWallTime: Math.round(WALL_OFFSET + info.startTime) };
}
