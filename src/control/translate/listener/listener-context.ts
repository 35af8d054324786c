// What sidecar listener builders read besides the proxy: mesh settings, the Sidecar's outbound policy, inline or RDS inbound routes.
import type { envoy } from '../../../xds/generated/types.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import type { PushStatusReporter } from '../../model/push-status.js';
import type { SecurityFilterProvider } from '../common/security-filter-provider.js';
import type { HttpTelemetry } from '../telemetry/http-telemetry.js';

export type Listener = envoy.config.listener.v3.Listener;
export type FilterChain = envoy.config.listener.v3.FilterChain;

export interface ListenerBuildContext {
  mesh: MeshConfig;
  proxy?: Proxy;
  /** A Sidecar resource's outboundTrafficPolicy, overriding the MeshConfig's. */
  outboundTrafficPolicy?: MeshConfig['outboundTrafficPolicy'];
  /** Inbound HTTP routes inline in the connection manager (Istio's choice, the default) or fetched by RDS as `inbound|<port>||`. */
  inboundRoutes?: 'inline' | 'rds';
  /**
   * The snapshot inbound listeners read policies from: PeerAuthentication (each port's mTLS mode) and the security
   * filters (AuthorizationPolicy, RequestAuthentication). Without it every port is PERMISSIVE and has no security filters.
   */
  push?: PushContext;
  /** Where the security filters come from; the AuthorizationPolicy/RequestAuthentication translation unless a test swaps it. */
  securityFilters?: SecurityFilterProvider;
  /**
   * The CLIENT access logs and tracing filter of the proxy the outbound HCMs are for, computed from its Telemetry before
   * a build shared by a Sidecar scope (which is given no proxy): the shared build is keyed by what it is built from (keyedHttpTelemetry).
   */
  outboundHttpTelemetry?: HttpTelemetry;
  /** Told of the conflicts the builders resolve (the push's status: istiod's pilot_conflict_* gauges); none in tests that do not ask. */
  report?: PushStatusReporter;
}

/** `0.0.0.0_9080`, `10.0.0.5_3306`: Istio's listener names. */
export function listenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

export const WILDCARD_ADDRESS = '0.0.0.0';
