// Messages the security kinds share: the workload selector and the policy target reference.

export interface SecurityWorkloadSelector {
  matchLabels?: Record<string, string>;
}

/** Targets a Gateway API resource or Service instead of selecting workloads by label. */
export interface PolicyTargetReference {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}
