// The security filters Istio puts in front of a workload's (or gateway's) traffic, from RequestAuthentication and
// AuthorizationPolicy: HTTP filters jwt_authn, ext_authz (CUSTOM), rbac (DENY, then ALLOW/AUDIT), inserted before
// fault/CORS/router; network filters rbac (and ext_authz) before tcp_proxy. Listener builders call these two functions.
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import type { Filter, HttpFilter } from '../common/network-filters.js';

export interface SecurityFilterInput {
  readonly push: PushContext;
  /** The sidecar or gateway the listener is for (policies select it by namespace and workload labels). */
  readonly proxy: Proxy;
  /** The workload port of the inbound filter chain (port-level rules); undefined on gateway listeners. */
  readonly port?: number;
  readonly isGateway: boolean;
}

/** HTTP filters, in Istio's order, that go before fault, CORS and the router in the connection manager. */
export function securityHttpFilters(_input: SecurityFilterInput): HttpFilter[] {
  return [];
}

/** Network filters that go before tcp_proxy on TCP filter chains. */
export function securityNetworkFilters(_input: SecurityFilterInput): Filter[] {
  return [];
}
