// CDS builders: Istio-shaped Envoy Clusters for a sidecar (outbound per service port and subset, inbound, built-ins).
export { buildOutboundClusters } from './outbound.js';
export { dnsLookupFamily } from './build-cluster.js';
export { buildInboundClusters, INBOUND_LOCALHOST } from './inbound.js';
export { buildBlackHoleCluster, buildPassthroughCluster, buildInboundPassthroughCluster, INBOUND_PASSTHROUGH_BIND_IPV4 } from './builtin.js';
export type { ClusterBuildContext, ClusterMeshSettings, MutualTlsMode } from './context.js';
export type { Cluster } from './cluster-wrapper.js';
export { HTTP_PROTOCOL_OPTIONS_TYPE } from './cluster-wrapper.js';
export { UPSTREAM_TLS_CONTEXT_TYPE, TLS_TRANSPORT_SOCKET, RAW_BUFFER_TRANSPORT_SOCKET, SDS_DEFAULT_RESOURCE, SDS_ROOT_RESOURCE } from './upstream-tls.js';
export { clusterTrafficPolicy, endpointsMtlsEnabled, mergeSubsetTrafficPolicy, portLevelTrafficPolicy } from './traffic-policy.js';
export { defaultCircuitBreakerThresholds } from './connection-pool.js';
