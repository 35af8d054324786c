// The security filters of a sidecar's inbound chains: what the listener builders ask the security translation for, per workload port.
import type { Filter, HttpFilter } from '../common/network-filters.js';
import { tcpIstioStatsFilter, tcpMetadataExchangeFilter, tcpProxyFilter } from '../common/network-filters.js';
import { POLICY_SECURITY_FILTERS } from '../common/security-filter-provider.js';
import type { SecurityFilterInput } from '../security/inbound-filters.js';
import type { ListenerBuildContext } from './listener-context.js';

/** The question for one workload port (none for passthrough); undefined without a snapshot to read policies from. */
function securityInput(context: ListenerBuildContext, port: number | undefined): SecurityFilterInput | undefined {
  if (!context.push || !context.proxy) return undefined;
  return { push: context.push, proxy: context.proxy, ...(port !== undefined ? { port } : {}), isGateway: false };
}

/** HTTP filters that lead an inbound connection manager (jwt_authn, ext_authz, rbac). */
export function inboundSecurityHttpFilters(context: ListenerBuildContext, port: number | undefined): HttpFilter[] {
  const input = securityInput(context, port);
  return input ? (context.securityFilters ?? POLICY_SECURITY_FILTERS).http(input) : [];
}

/**
 * The network filters of a TCP chain, as Istio orders them: the metadata exchange (istio-peer-exchange over mTLS), the
 * security filters (network RBAC), istio.stats (TCP metrics as destination), tcp_proxy.
 */
export function inboundTcpFilters(cluster: string, context: ListenerBuildContext, port: number | undefined): Filter[] {
  const input = securityInput(context, port);
  return [tcpMetadataExchangeFilter(), ...(input ? (context.securityFilters ?? POLICY_SECURITY_FILTERS).network(input) : []), tcpIstioStatsFilter('INBOUND'), tcpProxyFilter(cluster)];
}
