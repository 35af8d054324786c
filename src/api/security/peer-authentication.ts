// PeerAuthentication (security.istio.io): whether workloads accept plain text, mTLS, or both, field names as in Istio's YAML.
import type { SecurityWorkloadSelector } from './common.js';

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];

export interface PeerAuthenticationSpec {
  selector?: SecurityWorkloadSelector;
  mtls?: { mode?: MtlsMode };
  /** Keyed by the workload's port number (YAML keys are strings: `"8080"`). */
  portLevelMtls?: Record<string, { mode?: MtlsMode }>;
}
