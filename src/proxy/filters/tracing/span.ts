// A finished span as the tracing filter records it, and its two wire shapes: Zipkin v2 JSON and OTLP/HTTP JSON.

export type SpanKind = 'SERVER' | 'CLIENT';

export interface FinishedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  /** The operation name (route decorator, else Envoy's `ingress` / `egress <host>`). */
  readonly name: string;
  readonly kind: SpanKind;
  /** Wall-clock start, microseconds since the epoch. */
  readonly startMicros: number;
  readonly durationMicros: number;
  readonly tags: Readonly<Record<string, string>>;
  readonly debug?: boolean;
}

/** Who reports the spans (Zipkin localEndpoint, OTLP resource). */
export interface SpanSource {
  /** Envoy: the node's cluster (`--service-cluster`); Istio sets it to `<app>.<namespace>`. */
  readonly serviceName: string;
  readonly ipv4?: string;
}

/** Zipkin API v2 `POST /api/v2/spans` body (a JSON list of spans), as Envoy's zipkin tracer sends with HTTP_JSON. */
export function toZipkinV2(spans: readonly FinishedSpan[], source: SpanSource): unknown[] {
  return spans.map((s) => ({
    traceId: s.traceId,
    id: s.spanId,
    ...(s.parentSpanId ? { parentId: s.parentSpanId } : {}),
    name: s.name,
    kind: s.kind,
    timestamp: s.startMicros,
    duration: Math.max(1, s.durationMicros),
    localEndpoint: { serviceName: source.serviceName, ...(source.ipv4 ? { ipv4: source.ipv4 } : {}) },
    tags: s.tags,
    ...(s.debug ? { debug: true } : {}),
  }));
}

/** OTLP span kinds (opentelemetry.proto.trace.v1.Span.SpanKind). */
const OTLP_KIND: Record<SpanKind, number> = { SERVER: 2, CLIENT: 3 };

function microsToNanosString(micros: number): string {
  return (BigInt(Math.round(micros)) * 1000n).toString();
}

/**
 * OTLP/HTTP JSON `POST /v1/traces` body (ExportTraceServiceRequest): ids as hex strings, times as decimal strings of
 * nanoseconds, `service.name` on the resource, status ERROR when the span has `error=true`, as Envoy's OpenTelemetry tracer.
 */
export function toOtlpJson(spans: readonly FinishedSpan[], source: SpanSource): unknown {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: source.serviceName } }] },
        scopeSpans: [
          {
            scope: { name: 'envoy', version: 'trellis' },
            spans: spans.map((s) => ({
              traceId: s.traceId.padStart(32, '0'),
              spanId: s.spanId,
              ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name,
              kind: OTLP_KIND[s.kind],
              startTimeUnixNano: microsToNanosString(s.startMicros),
              endTimeUnixNano: microsToNanosString(s.startMicros + s.durationMicros),
              attributes: Object.entries(s.tags).map(([key, value]) => ({ key, value: { stringValue: value } })),
              status: s.tags['error'] === 'true' ? { code: 2 } : {},
            })),
          },
        ],
      },
    ],
  };
}
