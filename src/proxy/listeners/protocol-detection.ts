// Envoy's inspecting listener filters (tls_inspector, http_inspector): per-connection enablement (filter_disabled), what they read, and their timeout.
import type { Socket } from 'node:net';
import { durationMs } from '../../common/duration.js';
import type { envoy } from '../../xds/generated/types.js';
import { detectHttp2Preface, MAX_CLIENT_HELLO, parseClientHello, peekSocket } from '../transport/tls-inspector.js';

type MatchPredicate = envoy.config.listener.v3.ListenerFilterChainMatchPredicate;

/** Whether a listener filter is switched off for a connection (ListenerFilterChainMatchPredicate on its destination port). */
export type FilterDisabled = (destinationPort: number) => boolean;

const NEVER: FilterDisabled = () => false;

/**
 * Compiles a filter_disabled predicate. Envoy's predicate also matches on destination IP ranges through the newer
 * matcher API; the port-range form Istio uses (destination_port_range with or/and/not/any) is what is supported.
 */
export function compileFilterDisabled(predicate: MatchPredicate | undefined, path: string, problems: string[]): FilterDisabled {
  if (!predicate) return NEVER;
  const compile = (p: MatchPredicate, at: string): FilterDisabled => {
    if (p.destination_port_range) {
      const start = p.destination_port_range.start ?? 0;
      const end = p.destination_port_range.end ?? 0;
      if (end <= start) problems.push(`${at}.destination_port_range: end (${end}) must be greater than start (${start}); the range is [start, end)`);
      return (port) => port >= start && port < end;
    }
    if (p.or_match) {
      const rules = (p.or_match.rules ?? []).map((r, i) => compile(r, `${at}.or_match.rules[${i}]`));
      if (rules.length < 2) problems.push(`${at}.or_match.rules: at least 2 rules are required (Envoy's validation)`);
      return (port) => rules.some((r) => r(port));
    }
    if (p.and_match) {
      const rules = (p.and_match.rules ?? []).map((r, i) => compile(r, `${at}.and_match.rules[${i}]`));
      if (rules.length < 2) problems.push(`${at}.and_match.rules: at least 2 rules are required (Envoy's validation)`);
      return (port) => rules.every((r) => r(port));
    }
    if (p.not_match) {
      const inner = compile(p.not_match, `${at}.not_match`);
      return (port) => !inner(port);
    }
    if (p.any_match !== undefined) {
      if (p.any_match !== true) problems.push(`${at}.any_match: must be true`);
      return () => true;
    }
    const other = Object.keys(p).filter((k) => (p as Record<string, unknown>)[k] !== undefined);
    problems.push(other.length > 0 ? `${at}: unsupported rule ${other.join(', ')} (supported: destination_port_range, or_match, and_match, not_match, any_match)` : `${at}: a rule is required`);
    return NEVER;
  };
  return compile(predicate, path);
}

/** The inspectors a listener runs; undefined when it has none. */
export interface InspectorConfig {
  readonly tls?: FilterDisabled;
  readonly http?: FilterDisabled;
  /** Envoy's listener_filters_timeout (default 15 s); 0 waits without limit. */
  readonly timeoutMs: number;
  /** Envoy's continue_on_listener_filters_timeout: on timeout, pick a chain with what is known instead of closing. */
  readonly continueOnTimeout: boolean;
}

/** tls_inspector by its filter name or its typed_config type URL. */
export const TLS_INSPECTOR_NAMES: ReadonlySet<string> = new Set(['envoy.filters.listener.tls_inspector', 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector']);
/** http_inspector by its filter name or its typed_config type URL. */
export const HTTP_INSPECTOR_NAMES: ReadonlySet<string> = new Set(['envoy.filters.listener.http_inspector', 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector']);

/**
 * The inspectors of a listener: the tls_inspector and http_inspector it lists, each with its filter_disabled. Where
 * the listener's chains match on what an inspector finds (SNI, transport or application protocols) but it lists no
 * such inspector, Trellis runs it on every connection (as Envoy once injected the TLS inspector), so such chains can
 * match at all. Undefined: nothing to inspect.
 */
export function compileInspectors(
  listener: envoy.config.listener.v3.Listener,
  chainsNeed: { readonly tls: boolean; readonly http: boolean },
  defaultTimeoutMs: number,
  path: string,
  problems: string[],
): InspectorConfig | undefined {
  let tls: FilterDisabled | undefined;
  let http: FilterDisabled | undefined;
  (listener.listener_filters ?? []).forEach((f, i) => {
    const names = [f.name ?? '', f.typed_config?.type_url ?? ''];
    if (names.some((n) => TLS_INSPECTOR_NAMES.has(n))) tls = compileFilterDisabled(f.filter_disabled, `${path}.listener_filters[${i}].filter_disabled`, problems);
    else if (names.some((n) => HTTP_INSPECTOR_NAMES.has(n))) http = compileFilterDisabled(f.filter_disabled, `${path}.listener_filters[${i}].filter_disabled`, problems);
  });
  if (!tls && chainsNeed.tls) tls = NEVER;
  if (!http && chainsNeed.http) http = NEVER;
  if (!tls && !http) return undefined;
  const timeoutMs = durationMs(listener.listener_filters_timeout, defaultTimeoutMs);
  return { ...(tls ? { tls } : {}), ...(http ? { http } : {}), timeoutMs, continueOnTimeout: listener.continue_on_listener_filters_timeout === true };
}

/** Envoy's http_inspector gives up after this many bytes without a request line (MAX_INSPECT_SIZE). */
export const MAX_HTTP_INSPECT = 8 * 1024;

/** Methods Envoy's HTTP/1 parser knows (llhttp's list of request methods). */
const METHODS = [
  'DELETE', 'GET', 'HEAD', 'POST', 'PUT', 'CONNECT', 'OPTIONS', 'TRACE', 'COPY', 'LOCK', 'MKCOL', 'MOVE', 'PROPFIND', 'PROPPATCH', 'SEARCH',
  'UNLOCK', 'BIND', 'REBIND', 'UNBIND', 'ACL', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE',
  'PATCH', 'PURGE', 'MKCALENDAR', 'LINK', 'UNLINK', 'QUERY',
];
const LONGEST_METHOD = Math.max(...METHODS.map((m) => m.length));

export type HttpDetection = 'need_more' | 'h2c' | 'http/1.1' | 'http/1.0' | 'none';

/**
 * Envoy's http_inspector on the first bytes: the HTTP/2 connection preface is `h2c`; a request line `METHOD target
 * HTTP/1.x` is `http/1.x`; anything that cannot become either is `none` as soon as that is certain, so opaque TCP is
 * not held waiting for a line end that may never come.
 */
export function detectHttpProtocol(bytes: Buffer): HttpDetection {
  if (bytes.length === 0) return 'need_more';
  const h2 = detectHttp2Preface(bytes);
  if (h2 === 'h2') return 'h2c';
  if (h2 === 'need_more') return 'need_more'; // a prefix of "PRI * HTTP/2.0…"; PRI is no HTTP/1 method either way
  const space = bytes.indexOf(0x20);
  const methodEnd = space < 0 ? Math.min(bytes.length, LONGEST_METHOD + 1) : space;
  const method = bytes.toString('latin1', 0, methodEnd);
  if (space < 0) {
    if (bytes.length > LONGEST_METHOD || !METHODS.some((m) => m.startsWith(method))) return 'none';
    return 'need_more';
  }
  if (!METHODS.includes(method)) return 'none';
  const targetEnd = bytes.indexOf(0x20, space + 1);
  const lineEnd = bytes.indexOf(0x0a, space + 1);
  if (targetEnd < 0) {
    // A line end before the version (HTTP/0.9's `GET /`) or control bytes in the target: not HTTP/1.x.
    if (lineEnd >= 0 || bytes.subarray(space + 1).some((b) => b < 0x21 || b === 0x7f)) return 'none';
    return bytes.length >= MAX_HTTP_INSPECT ? 'none' : 'need_more';
  }
  if (targetEnd === space + 1 || bytes.subarray(space + 1, targetEnd).some((b) => b < 0x21 || b === 0x7f)) return 'none';
  const versionEnd = bytes.indexOf(0x0a, targetEnd + 1);
  const version = bytes.toString('latin1', targetEnd + 1, versionEnd < 0 ? bytes.length : versionEnd).replace(/\r$/, '');
  if (versionEnd < 0) {
    if (version.length > 8 || !('HTTP/1.1'.startsWith(version) || 'HTTP/1.0'.startsWith(version))) return 'none';
    return 'need_more';
  }
  if (version === 'HTTP/1.1') return 'http/1.1';
  if (version === 'HTTP/1.0') return 'http/1.0';
  return 'none';
}

/** What the inspectors learnt, for filter chain selection. */
export interface Detection {
  /** Bytes read while inspecting; they go to whatever handles the connection next. */
  readonly initial: Buffer | undefined;
  readonly transportProtocol: 'tls' | 'raw_buffer';
  readonly serverName?: string;
  readonly applicationProtocols: readonly string[];
}

export type InspectionOutcome =
  | { readonly kind: 'detected'; readonly detection: Detection }
  /** The peer closed before the inspectors were done. */
  | { readonly kind: 'closed' }
  /** The timeout passed and the listener does not continue on it. */
  | { readonly kind: 'timeout' };

/** Counters Envoy's inspectors keep (tls_inspector.*, http_inspector.*), by their stat names. */
export type InspectorStats = Record<string, number>;

function count(stats: InspectorStats, name: string): void {
  stats[name] = (stats[name] ?? 0) + 1;
}

const RAW: Detection = { initial: undefined, transportProtocol: 'raw_buffer', applicationProtocols: [] };

/**
 * Runs the inspectors enabled for `destinationPort` on `socket` (the TLS inspector first; the HTTP inspector only when
 * the connection is not TLS, as in Envoy). With none enabled nothing is read, so a server-first protocol is not held.
 */
export async function inspectConnection(socket: Socket, config: InspectorConfig, destinationPort: number, stats: InspectorStats): Promise<InspectionOutcome> {
  const tlsOn = config.tls !== undefined && !config.tls(destinationPort);
  const httpOn = config.http !== undefined && !config.http(destinationPort);
  if (!tlsOn && !httpOn) return { kind: 'detected', detection: RAW };
  const peek = await peekSocket(
    socket,
    (bytes) => {
      if (tlsOn) {
        const hello = parseClientHello(bytes);
        if (hello.kind === 'need_more') return bytes.length >= MAX_CLIENT_HELLO;
        if (hello.kind === 'tls') return true;
      }
      return !httpOn || detectHttpProtocol(bytes) !== 'need_more' || bytes.length >= MAX_HTTP_INSPECT;
    },
    config.timeoutMs,
  );
  if (peek.closed) {
    if (tlsOn) count(stats, 'tls_inspector.connection_closed');
    return { kind: 'closed' };
  }
  if (peek.timedOut && !config.continueOnTimeout) return { kind: 'timeout' };
  const bytes = peek.bytes;
  const initial = bytes.length > 0 ? bytes : undefined;
  if (tlsOn) {
    const hello = parseClientHello(bytes);
    if (hello.kind === 'tls') {
      count(stats, 'tls_inspector.tls_found');
      count(stats, hello.serverName !== undefined ? 'tls_inspector.sni_found' : 'tls_inspector.sni_not_found');
      count(stats, hello.alpn.length > 0 ? 'tls_inspector.alpn_found' : 'tls_inspector.alpn_not_found');
      return {
        kind: 'detected',
        detection: { initial, transportProtocol: 'tls', ...(hello.serverName !== undefined ? { serverName: hello.serverName } : {}), applicationProtocols: hello.alpn },
      };
    }
    if (hello.kind === 'not_tls') count(stats, 'tls_inspector.tls_not_found');
  }
  let applicationProtocols: readonly string[] = [];
  if (httpOn && bytes.length > 0) {
    const http = detectHttpProtocol(bytes);
    if (http === 'h2c' || http === 'http/1.1' || http === 'http/1.0') {
      applicationProtocols = [http];
      count(stats, http === 'h2c' ? 'http_inspector.http2_found' : http === 'http/1.1' ? 'http_inspector.http11_found' : 'http_inspector.http10_found');
    } else if (http === 'none') count(stats, 'http_inspector.http_not_found');
  }
  return { kind: 'detected', detection: { initial, transportProtocol: 'raw_buffer', applicationProtocols } };
}
