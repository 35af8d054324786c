// The request headers Bookinfo's services copy from an inbound request onto their outbound calls (Istio's propagation list).
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The union of the lists in Istio's sample (productpage.py, LibertyRestEndpoint.java, details.rb): request id,
 * Lightstep, Datadog, W3C trace context, Cloud Trace, gRPC binary, B3 multi and single header, SkyWalking, the
 * application's `end-user` and `user-agent`, and the session headers. productpage's OpenTracing tracer
 * re-injects the x-b3-* headers; with no tracer here they are copied as they came.
 */
export const PROPAGATED_HEADERS: readonly string[] = [
  'x-request-id',
  'x-ot-span-context',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'traceparent',
  'tracestate',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'b3',
  'sw8',
  'end-user',
  'user-agent',
  'cookie',
  'authorization',
  'jwt',
];

/** The propagated headers present on `incoming`, ready to send on an outbound call. */
export function forwardHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROPAGATED_HEADERS) {
    const value = incoming[name];
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value) && value.length > 0) out[name] = value.join(', ');
  }
  return out;
}
