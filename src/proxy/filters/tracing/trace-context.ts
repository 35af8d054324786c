// Trace context on the wire: W3C traceparent/tracestate and B3 (multi-header and single `b3`), parsed and written as Envoy's tracers do.
import { randomBytes } from 'node:crypto';
import { headerValue, type HttpHeaders } from '../../http/headers.js';

/** One span's identity as it travels between hops. Ids are lower-case hex; a B3 trace id may be 64-bit (16 hex). */
export interface SpanContext {
  readonly traceId: string;
  readonly spanId: string;
  /** The span that the sender's span descends from (B3 `x-b3-parentspanid`); W3C does not carry it. */
  readonly parentSpanId?: string;
  /** The sender's sampling decision; undefined when the sender deferred it. */
  readonly sampled?: boolean;
  /** B3 debug (`x-b3-flags: 1` or `b3: …-d`): always sampled. */
  readonly debug?: boolean;
  /** W3C tracestate, forwarded unchanged. */
  readonly traceState?: string;
}

/** Where an incoming context came from. */
export type TraceContextFormat = 'w3c' | 'b3' | 'b3-single';

export interface ExtractedContext {
  readonly context?: SpanContext;
  readonly format?: TraceContextFormat;
  /** A sampling decision without ids (`x-b3-sampled` alone, `b3: 0`): B3 lets a caller only decide. */
  readonly sampled?: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO = /^0+$/;

function validId(id: string | undefined, lengths: readonly number[]): id is string {
  return id !== undefined && lengths.includes(id.length) && HEX.test(id) && !ZERO.test(id);
}

/** W3C Trace Context level 1 `traceparent`: `version-traceid-parentid-flags`; undefined if malformed. */
export function parseTraceparent(value: string | undefined, traceState?: string): SpanContext | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  const parts = v.split('-');
  if (parts.length < 4) return undefined;
  const [version, traceId, spanId, flags] = parts as [string, string, string, string];
  if (version.length !== 2 || !HEX.test(version) || version === 'ff') return undefined;
  // Version 00 has exactly four fields; later versions may append more (the spec says parse the first four).
  if (version === '00' && parts.length !== 4) return undefined;
  if (!validId(traceId, [32]) || !validId(spanId, [16])) return undefined;
  if (flags.length !== 2 || !HEX.test(flags)) return undefined;
  const sampled = (parseInt(flags, 16) & 1) === 1;
  return { traceId, spanId, sampled, ...(traceState ? { traceState } : {}) };
}

export function formatTraceparent(ctx: SpanContext): string {
  return `00-${ctx.traceId.padStart(32, '0')}-${ctx.spanId}-${ctx.sampled ? '01' : '00'}`;
}

function b3Sampled(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (v === '1' || v === 'true' || v === 'd') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

/** B3 single header `{TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}`, or a bare sampling state (`0`, `1`, `d`). */
export function parseB3Single(value: string | undefined): ExtractedContext | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (v === '0' || v === '1' || v === 'd') return { sampled: v !== '0' };
  const parts = v.split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const [traceId, spanId, state, parent] = parts;
  if (!validId(traceId, [16, 32]) || !validId(spanId, [16])) return undefined;
  if (state !== undefined && state !== '0' && state !== '1' && state !== 'd') return undefined;
  if (parent !== undefined && !validId(parent, [16])) return undefined;
  const sampled = state === undefined ? undefined : state !== '0';
  return {
    format: 'b3-single',
    context: { traceId, spanId, ...(parent ? { parentSpanId: parent } : {}), ...(sampled !== undefined ? { sampled } : {}), ...(state === 'd' ? { debug: true } : {}) },
  };
}

/** B3 multi-header: x-b3-traceid, x-b3-spanid, x-b3-parentspanid, x-b3-sampled, x-b3-flags. */
export function parseB3Multi(headers: HttpHeaders): ExtractedContext | undefined {
  const traceId = headerValue(headers, 'x-b3-traceid')?.trim().toLowerCase();
  const spanId = headerValue(headers, 'x-b3-spanid')?.trim().toLowerCase();
  const parent = headerValue(headers, 'x-b3-parentspanid')?.trim().toLowerCase();
  const debug = headerValue(headers, 'x-b3-flags')?.trim() === '1';
  const sampledHeader = b3Sampled(headerValue(headers, 'x-b3-sampled'));
  const sampled = debug ? true : sampledHeader;
  if (traceId === undefined && spanId === undefined) return sampled === undefined ? undefined : { sampled };
  if (!validId(traceId, [16, 32]) || !validId(spanId, [16])) return sampled === undefined ? undefined : { sampled };
  return {
    format: 'b3',
    context: {
      traceId,
      spanId,
      ...(validId(parent, [16]) ? { parentSpanId: parent } : {}),
      ...(sampled !== undefined ? { sampled } : {}),
      ...(debug ? { debug: true } : {}),
    },
  };
}

/**
 * The incoming context: W3C `traceparent` first (OpenTelemetry's propagator), then `b3`, then the x-b3-* headers
 * (Zipkin's). A malformed header counts as absent, as in Envoy: the hop starts a new trace.
 */
export function extractContext(headers: HttpHeaders): ExtractedContext {
  const w3c = parseTraceparent(headerValue(headers, 'traceparent'), headerValue(headers, 'tracestate'));
  if (w3c) return { context: w3c, format: 'w3c' };
  const single = parseB3Single(headerValue(headers, 'b3'));
  if (single?.context) return single;
  const multi = parseB3Multi(headers);
  if (multi?.context) return multi;
  const sampled = single?.sampled ?? multi?.sampled;
  return sampled === undefined ? {} : { sampled };
}

/** Names of every header this module reads or writes; injectContext replaces them all. */
export const TRACE_HEADERS = ['traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'] as const;

/**
 * Writes `ctx` (the span this hop created) for the next hop: traceparent (+ tracestate) and the B3 multi-headers, so
 * applications and proxies using either propagator continue the trace. An incoming single `b3` header is replaced by the
 * multi-headers, as Envoy's Zipkin tracer does.
 */
export function injectContext(headers: HttpHeaders, ctx: SpanContext): void {
  for (const name of TRACE_HEADERS) delete headers[name];
  headers['traceparent'] = formatTraceparent(ctx);
  if (ctx.traceState) headers['tracestate'] = ctx.traceState;
  headers['x-b3-traceid'] = ctx.traceId;
  headers['x-b3-spanid'] = ctx.spanId;
  if (ctx.parentSpanId) headers['x-b3-parentspanid'] = ctx.parentSpanId;
  if (ctx.debug) headers['x-b3-flags'] = '1';
  else headers['x-b3-sampled'] = ctx.sampled ? '1' : '0';
}

/** A random non-zero id of `bytes` bytes in lower-case hex. */
export function randomId(bytes: 8 | 16): string {
  for (;;) {
    const id = randomBytes(bytes).toString('hex');
    if (!ZERO.test(id)) return id;
  }
}
