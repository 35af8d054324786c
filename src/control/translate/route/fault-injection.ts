// VirtualService fault injection as the per-route config of envoy.filters.http.fault (Istio's TranslateFault).
import type { HTTPFaultInjection } from '../../../api/index.js';
import type { envoy } from '../../../xds/generated/types.js';
import { durationFromIstio, integerPercentToFractional, percentToFractional } from '../common/route-duration.js';

export type HTTPFault = envoy.extensions.filters.http.fault.v3.HTTPFault;

/** gRPC status names Istio accepts in `abort.grpcStatus`, by code. */
const GRPC_STATUS: Readonly<Record<string, number>> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

/**
 * Delay: fixedDelay with `percentage` (per million) or the deprecated integer `percent`; exponential delays are
 * dropped, as in Istio. Abort: httpStatus or grpcStatus with `percentage`. Undefined when nothing is left.
 */
export function translateFault(fault: HTTPFaultInjection): HTTPFault | undefined {
  const out: HTTPFault = {};
  const delay = fault.delay;
  if (delay) {
    const fixed = durationFromIstio(delay.fixedDelay);
    if (fixed) {
      out.delay = {
        fixed_delay: fixed,
        percentage: delay.percentage !== undefined ? percentToFractional(delay.percentage.value ?? 0) : integerPercentToFractional(delay.percent ?? 0),
      };
    }
  }
  const abort = fault.abort;
  if (abort) {
    const percentage = abort.percentage !== undefined ? percentToFractional(abort.percentage.value ?? 0) : undefined;
    if (abort.httpStatus !== undefined) {
      out.abort = { http_status: abort.httpStatus };
    } else if (abort.grpcStatus !== undefined) {
      const code = GRPC_STATUS[abort.grpcStatus.toUpperCase()] ?? (/^\d+$/.test(abort.grpcStatus) ? Number(abort.grpcStatus) : undefined);
      if (code !== undefined) out.abort = { grpc_status: code };
    }
    if (out.abort && percentage) out.abort.percentage = percentage;
  }
  return out.delay || out.abort ? out : undefined;
}
