// What the cluster builders need to know beyond the service and its DestinationRule: the proxy, mesh settings, and lookups.
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Proxy } from '../../model/proxy.js';
import type { Service, ServiceInstance, ServicePort } from '../../model/service.js';

/** PeerAuthentication's mTLS modes as Istio infers them for a destination service. */
export type MutualTlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/**
 * MeshConfig fields the cluster builders read that Trellis's MeshConfig does not carry yet; optional, with Istio's
 * defaults when absent (so a plain MeshConfig works).
 */
export interface ClusterMeshSettings {
  /** Istio `h2UpgradePolicy` (default DO_NOT_UPGRADE): UPGRADE turns HTTP/1.1 ports into HTTP/2 clusters. */
  h2UpgradePolicy?: 'DO_NOT_UPGRADE' | 'UPGRADE';
  /** Istio `dnsRefreshRate` (default 60 s) for STRICT_DNS/LOGICAL_DNS clusters. */
  dnsRefreshRateMs?: number;
  /** Istio `tcpKeepalive`: mesh-wide upstream keepalive, overridden field by field by DestinationRules. */
  tcpKeepalive?: { probes?: number; time?: string; interval?: string };
  /** Istio's PILOT_SEND_UNHEALTHY_ENDPOINTS: sets healthy_panic_threshold to 0 (never route to unready endpoints in panic). */
  sendUnhealthyEndpoints?: boolean;
}

export interface ClusterBuildContext {
  proxy: Proxy;
  mesh: MeshConfig & ClusterMeshSettings;
  /**
   * The SPIFFE ids (`spiffe://<trust domain>/ns/<ns>/sa/<sa>`) a host's workloads run as: the SAN match of mTLS.
   * When absent they are derived from `instances` (each instance's service account in its namespace).
   */
  serviceAccounts?: (hostname: string) => string[];
  /**
   * The instances of a service port. Needed inline for DNS clusters (STRICT_DNS/LOGICAL_DNS load_assignment), to choose
   * EDS over ORIGINAL_DST for resolution NONE, and for auto-mTLS of passthrough services. Absent means none known.
   */
  instances?: (service: Service, port: ServicePort) => readonly ServiceInstance[];
  /** Namespace/mesh-level PeerAuthentication mode of a namespace; undefined when no policy applies (Istio: PERMISSIVE). */
  peerAuthenticationMode?: (namespace: string) => MutualTlsMode | undefined;
  /**
   * The mode an endpoint's own workload accepts on its port (workload and port-level policies included): endpoints in
   * DISABLE get no `tlsMode: istio` metadata, so auto mTLS sends them plaintext. Absent: not consulted.
   */
  endpointMtlsMode?: (instance: ServiceInstance) => MutualTlsMode;
}
