// Istio's MeshConfig: the mesh-wide settings generators read (root namespace, trust domain, timeouts, tracing, mTLS).

export interface MeshConfig {
  /** Namespace whose Sidecar/DestinationRule/PeerAuthentication apply mesh-wide (Istio: `istio-system`). */
  readonly rootNamespace: string;
  readonly trustDomain: string;
  readonly domainSuffix: string;
  /** Cluster connect timeout (Istio `connectTimeout`, default 10 s). */
  readonly connectTimeoutMs: number;
  /** DestinationRule-less clients send mTLS to endpoints that have a sidecar (Istio `enableAutoMtls`, default true). */
  readonly enableAutoMtls: boolean;
  /** `ALLOW_ANY` (unknown hosts pass through) or `REGISTRY_ONLY` (they go to BlackHoleCluster). */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Istio's `defaultHttpRetryPolicy`: attempts 2, retryOn `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`. */
  readonly defaultRetryAttempts: number;
  /** Ingress gateway selector label (Istio: `istio: ingressgateway`). */
  readonly ingressSelector: string;
}

export const DEFAULT_MESH_CONFIG: MeshConfig = {
  rootNamespace: 'istio-system',
  trustDomain: 'cluster.local',
  domainSuffix: 'cluster.local',
  connectTimeoutMs: 10_000,
  enableAutoMtls: true,
  outboundTrafficPolicy: 'ALLOW_ANY',
  defaultRetryAttempts: 2,
  ingressSelector: 'ingressgateway',
};
