// virtualInbound's passthrough chains: ports no service declares, to InboundPassthroughClusterIpv4 under the workload's mTLS mode.
import { INBOUND_PASSTHROUGH_CLUSTER, VIRTUAL_INBOUND_LISTENER } from '../../model/cluster-name.js';
import { DEFAULT_MTLS_MODE, type MutualTlsMode } from '../../model/peer-authentication-index.js';
import { httpConnectionManagerFilter, pathNormalizationOption, type Filter } from '../common/network-filters.js';
import { buildDefaultInboundRoute } from '../route/http-route.js';
import { tracingOption } from '../telemetry/tracing.js';
import { inboundChainMatch, inboundChainName, inboundChainOptions, inboundTlsTransportSocket } from './inbound-mtls.js';
import { inboundSecurityHttpFilters, inboundTcpFilters } from './inbound-security.js';
import { WILDCARD_ADDRESS, type FilterChain, type ListenerBuildContext } from './listener-context.js';

/** Istio's name for the HTTP passthrough chains (VirtualInboundCatchAllHTTPFilterChainName). */
export const VIRTUAL_INBOUND_CATCHALL_HTTP = 'virtualInbound-catchall-http';

/**
 * The connection manager of an HTTP passthrough chain (Istio's `virtualInbound-catchall-http`): every request to
 * InboundPassthroughClusterIpv4, so HTTP to an undeclared port still meets the HTTP security filters.
 */
function passthroughHcm(context: ListenerBuildContext, port: number | undefined): Filter {
  return httpConnectionManagerFilter({
    statPrefix: INBOUND_PASSTHROUGH_CLUSTER,
    routeConfig: {
      name: INBOUND_PASSTHROUGH_CLUSTER,
      virtual_hosts: [{ name: 'inbound|http|0', domains: ['*'], routes: [buildDefaultInboundRoute(INBOUND_PASSTHROUGH_CLUSTER, ':0/*')] }],
      validate_clusters: { value: false },
    },
    useRemoteAddress: false,
    forwardClientCertDetails: 'APPEND_FORWARD',
    leadingHttpFilters: inboundSecurityHttpFilters(context, port),
    ...pathNormalizationOption(context.mesh),
    ...tracingOption(context, 'SERVER'),
  });
}

/**
 * Istio's passthrough chains (ForPassthrough): traffic to ports no service declares goes to InboundPassthroughClusterIpv4
 * under the workload's own mode (STRICT: mTLS only), split by ALPN into HTTP (`virtualInbound-catchall-http`, a
 * connection manager) and TCP (`virtualInbound`); a `portLevelMtls` port no service declares gets chains of its own
 * with its mode.
 */
export function passthroughChains(declaredPorts: ReadonlySet<number>, context: ListenerBuildContext): FilterChain[] {
  const proxy = context.proxy;
  const effective = context.push && proxy ? context.push.effectivePeerAuthentication(proxy.namespace, proxy.labels) : undefined;
  const chains = (mode: MutualTlsMode, port: number | undefined): FilterChain[] => {
    const filters = { http: [passthroughHcm(context, port)], tcp: inboundTcpFilters(INBOUND_PASSTHROUGH_CLUSTER, context, port) };
    const suffix = port === undefined ? '' : `-port-${port}`;
    const bases = { http: `${VIRTUAL_INBOUND_CATCHALL_HTTP}${suffix}`, tcp: `${VIRTUAL_INBOUND_LISTENER}${suffix}` };
    const seen = { http: 0, tcp: 0 };
    return inboundChainOptions(mode, 'auto').map((option) => {
      const match = inboundChainMatch(option, port);
      if (port === undefined) match.prefix_ranges = [{ address_prefix: WILDCARD_ADDRESS, prefix_len: { value: 0 } }];
      return {
        name: inboundChainName(bases[option.protocol], option, seen[option.protocol]++),
        filter_chain_match: match,
        filters: filters[option.protocol],
        ...(option.terminatesTls ? { transport_socket: inboundTlsTransportSocket(context.mesh) } : {}),
      };
    });
  };
  const out = chains(effective?.mode ?? DEFAULT_MTLS_MODE, undefined);
  for (const [port, mode] of [...(effective?.perPort ?? new Map<number, MutualTlsMode>())].sort(([a], [b]) => a - b)) {
    if (!declaredPorts.has(port)) out.push(...chains(mode, port));
  }
  return out;
}
