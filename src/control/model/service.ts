// The registry's model of the mesh: services (host, ports, resolution) and their instances (address, port, locality, weight), and how they change.
import type { Kind, ResourceOrigin } from '../../api/index.js';
import type { Locality } from '../../api/networking/locality.js';

export type Resolution = 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';
export type ServiceLocation = 'MESH_INTERNAL' | 'MESH_EXTERNAL';

/** Istio's `security.istio.io/tlsMode` label values: `istio` when the workload has a sidecar that terminates mTLS. */
export type TlsMode = 'istio' | 'disabled';

export type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'UNKNOWN';

export interface ServicePort {
  name: string;
  number: number;
  /** Upper-case Istio protocol name (HTTP, HTTPS, GRPC, HTTP2, TCP, TLS, …). */
  protocol: string;
  /** The port instances listen on when their workload does not name one (ServiceEntry `targetPort`). */
  targetPort?: number;
}

/** The configuration a service or instance was built from, so messages and debug output can point at it. */
export interface SourceRef {
  /** Which registry produced it (`ServiceEntry`, `memory`, `kube`). */
  registry: string;
  kind?: Kind;
  namespace: string;
  name: string;
  origin?: ResourceOrigin;
}

export interface Service {
  /** Fully qualified host name, e.g. `reviews.default.svc.cluster.local` (or a wildcard for MESH_EXTERNAL entries). */
  hostname: string;
  namespace: string;
  ports: readonly ServicePort[];
  resolution: Resolution;
  location: ServiceLocation;
  /** Virtual IPs or CIDRs the service is reached at (ServiceEntry `addresses`); empty when it has none. */
  addresses: readonly string[];
  /** Namespaces the service is visible to: `*` (all, the default), `.` (its own), or names. */
  exportTo: readonly string[];
  labels?: Readonly<Record<string, string>>;
  source: SourceRef;
}

// Istio's locality strings are API (DestinationRule rules match them), so the type and parser live there.
export { parseLocality, type Locality } from '../../api/networking/locality.js';

/** One endpoint of one service port: what EDS sends for `outbound|<port>||<hostname>`. */
export interface ServiceInstance {
  hostname: string;
  namespace: string;
  servicePort: ServicePort;
  /** IP, DNS name (DNS resolution), or `unix:///path`. */
  address: string;
  /** The workload's port for this service port: WorkloadEntry `ports[servicePort.name]`, else `targetPort`, else the service port number (0 for unix sockets). */
  port: number;
  labels: Readonly<Record<string, string>>;
  locality: Locality;
  /** Load-balancing weight, at least 1. */
  weight: number;
  serviceAccount?: string;
  network?: string;
  tlsMode: TlsMode;
  healthStatus: HealthStatus;
  /** The WorkloadEntry, or the ServiceEntry for inline endpoints. */
  source: SourceRef;
}

/**
 * What changed in a registry, by host name. `services`: a service was added, removed, or its definition (ports,
 * resolution, location, addresses, exportTo, labels) changed. `endpoints`: the instances of that host changed. A host
 * may be in both; one only in `endpoints` needs an EDS push and nothing else.
 */
export interface RegistryChange {
  services: ReadonlySet<string>;
  endpoints: ReadonlySet<string>;
}

/** True when no service definition changed, so only endpoints (EDS) need to be pushed. */
export function isEndpointOnlyChange(change: RegistryChange): boolean {
  return change.services.size === 0 && change.endpoints.size > 0;
}
