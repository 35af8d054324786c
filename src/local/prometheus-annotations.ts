// A local workload's prometheus.io annotations → the sidecar agent's ISTIO_PROMETHEUS_ANNOTATIONS, as Istio's sidecar
// injection moves them there when metrics merging is on.
import type { WorkloadSpec } from './manifest.js';

export { PROMETHEUS_ANNOTATIONS_ENV } from '../agent/prometheus-scrape-config.js';

/**
 * The JSON for a workload with `prometheus.io/scrape: "true"`, else undefined. Locally the app listens on its port
 * block's app port, not on the service port: a `prometheus.io/port` that is absent or names the service port (what a
 * pod's annotation would say) means that app port; another number is used as it is.
 */
export function prometheusAnnotationsEnv(w: WorkloadSpec, appPort: number): string | undefined {
  if (w.annotations['prometheus.io/scrape'] !== 'true') return undefined;
  const annotated = w.annotations['prometheus.io/port'];
  const port = annotated === undefined || Number(annotated) === w.service?.port ? appPort : Number(annotated);
  return JSON.stringify({ scrape: 'true', port: String(port), path: w.annotations['prometheus.io/path'] ?? '/metrics' });
}
