// Sidecar inbound listener: virtualInbound on 15006 with filter chains per workload port by its mTLS mode, and passthrough for the rest.
import type { envoy } from '../../../xds/generated/types.js';
import { BLACKHOLE_CLUSTER, INBOUND_CAPTURE_PORT, INBOUND_PASSTHROUGH_CLUSTER, VIRTUAL_INBOUND_LISTENER } from '../../model/cluster-name.js';
import type { ServiceInstance } from '../../model/service.js';
import { DEFAULT_MTLS_MODE, type MutualTlsMode } from '../../model/peer-authentication-index.js';
import { httpConnectionManagerFilter, httpInspector, originalDst, pathNormalizationOption, socketAddress, tcpProxyFilter, tlsInspector, type Filter } from '../common/network-filters.js';
import { isHttpProtocol } from '../common/port-protocol.js';
import { buildDefaultInboundRoute } from '../route/http-route.js';
import { buildInboundRouteConfiguration, inboundRouteName } from '../route/route-configuration.js';
import type { SecurityFilterInput } from '../security/inbound-filters.js';
import { POLICY_SECURITY_FILTERS } from '../common/security-filter-provider.js';
import { inboundChainMatch, inboundChainName, inboundChainOptions, inboundTlsTransportSocket } from './inbound-mtls.js';
import { listenerName, WILDCARD_ADDRESS, type FilterChain, type Listener, type ListenerBuildContext } from './listener-context.js';

type MatchPredicate = envoy.config.listener.v3.ListenerFilterChainMatchPredicate;

/** Istio's name for the HTTP passthrough chains (VirtualInboundCatchAllHTTPFilterChainName). */
export const VIRTUAL_INBOUND_CATCHALL_HTTP = 'virtualInbound-catchall-http';

/**
 * The mTLS mode of a workload port: its PeerAuthentication (Istio's precedence, see PeerAuthenticationIndex), PERMISSIVE
 * without a snapshot. A PERMISSIVE port whose instances all say they have no mesh certificate (`tlsMode: disabled`, as
 * the local mesh's WorkloadEntries do until its sidecars get certificates) accepts plaintext only: a TLS chain would need
 * a `default` secret that proxy cannot get, and no client sends it mTLS (auto mTLS reads the same label). STRICT keeps
 * its TLS chain whatever the label: refusing plaintext matters more than being reachable.
 */
export function inboundMtlsMode(port: number, instances: readonly ServiceInstance[], context: ListenerBuildContext): MutualTlsMode {
  const proxy = context.proxy;
  const mode = context.push && proxy ? context.push.mtlsModeForPort(proxy.namespace, proxy.labels, port) : DEFAULT_MTLS_MODE;
  if (mode === 'PERMISSIVE' && instances.length > 0 && instances.every((i) => i.tlsMode !== 'istio')) return 'DISABLE';
  return mode;
}

function securityInput(context: ListenerBuildContext, port: number | undefined): SecurityFilterInput | undefined {
  if (!context.push || !context.proxy) return undefined;
  return { push: context.push, proxy: context.proxy, ...(port !== undefined ? { port } : {}), isGateway: false };
}

/** The network filters of a TCP chain: the security filters (network RBAC) before tcp_proxy, as Istio orders them. */
function tcpFilters(cluster: string, context: ListenerBuildContext, port: number | undefined) {
  const input = securityInput(context, port);
  return [...(input ? (context.securityFilters ?? POLICY_SECURITY_FILTERS).network(input) : []), tcpProxyFilter(cluster)];
}

/**
 * The filter chains of one workload port (instances deduplicated by port; the first instance's protocol wins), one per
 * match its mTLS mode needs (STRICT: mTLS only; PERMISSIVE: mTLS and plaintext, and for TCP other TLS passed through;
 * DISABLE: plaintext). HTTP ports get the connection manager with the inline `inbound|<port>||` route and the security
 * HTTP filters, TCP ports the security network filters and tcp_proxy. `bound`: the listener is bound to this port
 * (local sidecars), so no destination_port match.
 */
export function inboundChains(port: number, instances: ServiceInstance[], context: ListenerBuildContext, bound = false): FilterChain[] {
  const name = inboundRouteName(port);
  const first = instances[0]!;
  const http = isHttpProtocol(first.servicePort.protocol);
  const mode = inboundMtlsMode(port, instances, context);
  let filters: Filter[];
  if (!http) {
    filters = tcpFilters(name, context, port);
  } else {
    const statPrefix = `inbound_${listenerName(WILDCARD_ADDRESS, port)}`;
    const input = securityInput(context, port);
    const common = {
      statPrefix,
      useRemoteAddress: false,
      forwardClientCertDetails: 'APPEND_FORWARD' as const,
      leadingHttpFilters: input ? (context.securityFilters ?? POLICY_SECURITY_FILTERS).http(input) : [],
      ...pathNormalizationOption(context.mesh),
    };
    filters = [
      context.inboundRoutes === 'rds'
        ? httpConnectionManagerFilter({ ...common, rdsRouteName: name })
        : httpConnectionManagerFilter({ ...common, routeConfig: buildInboundRouteConfiguration(name, port, instances) }),
    ];
  }
  return inboundChainOptions(mode, http ? 'http' : 'tcp').map((option, index) => ({
    name: inboundChainName(name, option, index),
    filter_chain_match: inboundChainMatch(option, bound ? undefined : port),
    filters,
    ...(option.terminatesTls ? { transport_socket: inboundTlsTransportSocket(context.mesh) } : {}),
  }));
}

/** The proxy's instances grouped by endpoint port (the port the workload is reached on), in input order. */
export function instancesByPort(instances: readonly ServiceInstance[]): Map<number, ServiceInstance[]> {
  const byPort = new Map<number, ServiceInstance[]>();
  for (const instance of instances) {
    if (instance.port <= 0) continue;
    const list = byPort.get(instance.port) ?? [];
    list.push(instance);
    byPort.set(instance.port, list);
  }
  return byPort;
}

/**
 * The connection manager of an HTTP passthrough chain (Istio's `virtualInbound-catchall-http`): every request to
 * InboundPassthroughClusterIpv4, so HTTP to an undeclared port still meets the HTTP security filters.
 */
function passthroughHcm(context: ListenerBuildContext, port: number | undefined): Filter {
  const input = securityInput(context, port);
  return httpConnectionManagerFilter({
    statPrefix: INBOUND_PASSTHROUGH_CLUSTER,
    routeConfig: {
      name: INBOUND_PASSTHROUGH_CLUSTER,
      virtual_hosts: [{ name: 'inbound|http|0', domains: ['*'], routes: [buildDefaultInboundRoute(INBOUND_PASSTHROUGH_CLUSTER, ':0/*')] }],
      validate_clusters: { value: false },
    },
    useRemoteAddress: false,
    forwardClientCertDetails: 'APPEND_FORWARD',
    leadingHttpFilters: input ? (context.securityFilters ?? POLICY_SECURITY_FILTERS).http(input) : [],
    ...pathNormalizationOption(context.mesh),
  });
}

/**
 * Istio's passthrough chains (ForPassthrough): traffic to ports no service declares goes to InboundPassthroughClusterIpv4
 * under the workload's own mode (STRICT: mTLS only), split by ALPN into HTTP (`virtualInbound-catchall-http`, a
 * connection manager) and TCP (`virtualInbound`); a `portLevelMtls` port no service declares gets chains of its own
 * with its mode.
 */
function passthroughChains(declaredPorts: ReadonlySet<number>, context: ListenerBuildContext): FilterChain[] {
  const proxy = context.proxy;
  const effective = context.push && proxy ? context.push.effectivePeerAuthentication(proxy.namespace, proxy.labels) : undefined;
  const chains = (mode: MutualTlsMode, port: number | undefined): FilterChain[] => {
    const filters = { http: [passthroughHcm(context, port)], tcp: tcpFilters(INBOUND_PASSTHROUGH_CLUSTER, context, port) };
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

/**
 * Istio's virtualInbound: bound on 0.0.0.0:15006 where iptables redirects inbound traffic; original_dst restores the
 * port the client dialled and the chains of each workload port (see inboundChains) pick mTLS or plaintext, HTTP
 * (connection manager to `inbound|<port>||`) or TCP. Other ports pass through to InboundPassthroughClusterIpv4 under
 * the workload's mTLS mode; 15006 itself is black-holed. The TLS inspector reports TLS and ALPN for the chain match;
 * http_inspector is disabled on the declared ports, whose protocol is known (Istio does the same).
 */
export function buildVirtualInboundListener(instances: readonly ServiceInstance[], context: ListenerBuildContext): Listener {
  const byPort = instancesByPort(instances);
  const ports = [...byPort.keys()].sort((a, b) => a - b);
  const chains: FilterChain[] = [
    {
      name: 'virtualInbound-blackhole',
      filter_chain_match: { destination_port: { value: INBOUND_CAPTURE_PORT } },
      filters: [tcpProxyFilter(BLACKHOLE_CLUSTER)],
    },
    ...ports.flatMap((port) => inboundChains(port, byPort.get(port)!, context)),
    ...passthroughChains(new Set(ports), context),
  ];
  const knownPorts: MatchPredicate[] = [INBOUND_CAPTURE_PORT, ...ports].map((port) => ({ destination_port_range: { start: port, end: port + 1 } }));
  const inspector = httpInspector();
  inspector.filter_disabled = knownPorts.length === 1 ? knownPorts[0]! : { or_match: { rules: knownPorts } };
  return {
    name: VIRTUAL_INBOUND_LISTENER,
    address: socketAddress(WILDCARD_ADDRESS, INBOUND_CAPTURE_PORT),
    filter_chains: chains,
    listener_filters: [originalDst(), tlsInspector(), inspector],
    listener_filters_timeout: { seconds: 0 },
    continue_on_listener_filters_timeout: true,
    traffic_direction: 'INBOUND',
  };
}
