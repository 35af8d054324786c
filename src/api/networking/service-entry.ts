// ServiceEntry (networking.istio.io): adds services (hosts, ports, endpoints) to the registry, field names as in Istio's YAML.
import type { Port, WorkloadSelector } from './common.js';
import type { WorkloadEntrySpec } from './workload-entry.js';

export const SERVICE_ENTRY_LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;
export const SERVICE_ENTRY_RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'] as const;

export interface ServiceEntrySpec {
  hosts?: string[];
  addresses?: string[];
  ports?: Port[];
  /** Default MESH_EXTERNAL. */
  location?: (typeof SERVICE_ENTRY_LOCATIONS)[number];
  /** Default NONE. */
  resolution?: (typeof SERVICE_ENTRY_RESOLUTIONS)[number];
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: WorkloadSelector;
  exportTo?: string[];
  subjectAltNames?: string[];
}
