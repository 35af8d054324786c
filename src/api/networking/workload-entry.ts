// WorkloadEntry (networking.istio.io): one non-Kubernetes workload (address, ports, labels), also ServiceEntry's endpoint shape.

export interface WorkloadEntrySpec {
  /** IP, DNS name, or `unix:///path`; may be empty only when `network` is set (reached through that network's gateway). */
  address?: string;
  /** Port name (from the ServiceEntry) to the workload's port number. */
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  /** `region/zone/subzone`. */
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}
