// DestinationRule outlierDetection → Envoy outlier_detection and the panic threshold (Istio's applyOutlierDetection).
import type { OutlierDetection } from '../../../api/index.js';
import { durationFromText, uint32 } from '../common/protobuf-values.js';
import type { Cluster } from './cluster-wrapper.js';

/**
 * Success-rate ejection is always off; a consecutive-error count enforces at 100 % (0 when the count is 0, which turns
 * that detector off); `minHealthPercent` becomes healthy_panic_threshold, written even when 0 so Envoy's default of 50 %
 * does not apply (Istio: panic mode rarely helps with few pods per service).
 */
export function applyOutlierDetection(cluster: Cluster, outlier: OutlierDetection | undefined, sendUnhealthyEndpoints: boolean): void {
  if (!outlier) return;
  const out: NonNullable<Cluster['outlier_detection']> = { enforcing_success_rate: uint32(0) };
  if (outlier.consecutive5xxErrors !== undefined) {
    const v = outlier.consecutive5xxErrors;
    out.consecutive_5xx = uint32(v);
    out.enforcing_consecutive_5xx = uint32(v > 0 ? 100 : 0);
  }
  if (outlier.consecutiveGatewayErrors !== undefined) {
    const v = outlier.consecutiveGatewayErrors;
    out.consecutive_gateway_failure = uint32(v);
    out.enforcing_consecutive_gateway_failure = uint32(v > 0 ? 100 : 0);
  }
  const interval = durationFromText(outlier.interval);
  if (interval) out.interval = interval;
  const baseEjectionTime = durationFromText(outlier.baseEjectionTime);
  if (baseEjectionTime) out.base_ejection_time = baseEjectionTime;
  if ((outlier.maxEjectionPercent ?? 0) > 0) out.max_ejection_percent = uint32(outlier.maxEjectionPercent!);
  if (outlier.splitExternalLocalOriginErrors) {
    out.split_external_local_origin_errors = true;
    if ((outlier.consecutiveLocalOriginFailures ?? 0) > 0) {
      out.consecutive_local_origin_failure = uint32(outlier.consecutiveLocalOriginFailures!);
      out.enforcing_consecutive_local_origin_failure = uint32(100);
    }
    out.enforcing_local_origin_success_rate = uint32(0);
  }
  cluster.outlier_detection = out;

  let minHealthPercent = outlier.minHealthPercent ?? 0;
  if (minHealthPercent >= 0) {
    if (sendUnhealthyEndpoints) minHealthPercent = 0;
    cluster.common_lb_config = { ...(cluster.common_lb_config ?? {}), healthy_panic_threshold: { value: minHealthPercent } };
  }
}
