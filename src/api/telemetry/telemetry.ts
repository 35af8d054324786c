// Telemetry (telemetry.istio.io): tracing, metrics and access logging per workload, field names as in Istio's YAML.
import type { PolicyTargetReference, SecurityWorkloadSelector } from '../security/common.js';

export const WORKLOAD_MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] as const;
export type WorkloadMode = (typeof WORKLOAD_MODES)[number];

export interface ProviderRef {
  name: string;
}

export interface TelemetrySpec {
  selector?: SecurityWorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  tracing?: Tracing[];
  metrics?: Metrics[];
  accessLogging?: AccessLogging[];
}

export interface Tracing {
  match?: { mode?: WorkloadMode };
  providers?: ProviderRef[];
  randomSamplingPercentage?: number;
  disableSpanReporting?: boolean;
  customTags?: Record<string, { literal?: { value?: string }; environment?: { name?: string; defaultValue?: string }; header?: { name?: string; defaultValue?: string } }>;
  useRequestIdForTraceSampling?: boolean;
}

export interface Metrics {
  providers?: ProviderRef[];
  overrides?: {
    match?: { metric?: string; customMetric?: string; mode?: WorkloadMode };
    disabled?: boolean;
    tagOverrides?: Record<string, { operation?: 'UPSERT' | 'REMOVE'; value?: string }>;
  }[];
  reportingInterval?: string;
}

export interface AccessLogging {
  match?: { mode?: WorkloadMode };
  providers?: ProviderRef[];
  disabled?: boolean;
  filter?: { expression?: string };
}
