// Sidecar inbound listener: virtualInbound on 15006 with filter chains per workload port by its mTLS mode, and passthrough for the rest.
import { accessLogOption } from '../telemetry/access-log.js';
import { tracingOption } from '../telemetry/tracing.js';
import { BLACKHOLE_CLUSTER, INBOUND_CAPTURE_PORT, VIRTUAL_INBOUND_LISTENER } from '../../model/cluster-name.js';
import type { ServiceInstance } from '../../model/service.js';
import { DEFAULT_MTLS_MODE, type MutualTlsMode } from '../../model/peer-authentication-index.js';
import { httpConnectionManagerFilter, originalDst, pathNormalizationOption, socketAddress, tcpProxyFilter, type Filter } from '../common/network-filters.js';
import { inspectorsFor } from './inbound-listener-filters.js';
import { isHttpProtocol } from '../common/port-protocol.js';
import { buildInboundRouteConfiguration, inboundRouteName } from '../route/route-configuration.js';
import { inboundChainMatch, inboundChainName, inboundChainOptions, inboundTlsTransportSocket } from './inbound-mtls.js';
import { passthroughChains } from './inbound-passthrough.js';
import { inboundSecurityHttpFilters, inboundTcpFilters } from './inbound-security.js';
import { listenerName, WILDCARD_ADDRESS, type FilterChain, type Listener, type ListenerBuildContext } from './listener-context.js';

/**
 * The mTLS mode of a workload port: its PeerAuthentication (Istio's precedence, see PeerAuthenticationIndex), PERMISSIVE
 * without a snapshot. A PERMISSIVE port whose instances all say they have no mesh certificate (`tlsMode: disabled`, e.g.
 * a sidecar run without the agent) accepts plaintext only: a TLS chain would need
 * a `default` secret that proxy cannot get, and no client sends it mTLS (auto mTLS reads the same label). STRICT keeps
 * its TLS chain whatever the label: refusing plaintext matters more than being reachable.
 */
export function inboundMtlsMode(port: number, instances: readonly ServiceInstance[], context: ListenerBuildContext): MutualTlsMode {
  const proxy = context.proxy;
  const mode = context.push && proxy ? context.push.mtlsModeForPort(proxy.namespace, proxy.labels, port) : DEFAULT_MTLS_MODE;
  if (mode === 'PERMISSIVE' && instances.length > 0 && instances.every((i) => i.tlsMode !== 'istio')) return 'DISABLE';
  return mode;
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
  reportInboundConflict(port, instances, context);
  const http = isHttpProtocol(first.servicePort.protocol);
  const mode = inboundMtlsMode(port, instances, context);
  let filters: Filter[];
  if (!http) {
    filters = inboundTcpFilters(name, context, port);
  } else {
    const statPrefix = `inbound_${listenerName(WILDCARD_ADDRESS, port)}`;
    const common = {
      statPrefix,
      useRemoteAddress: false,
      forwardClientCertDetails: 'APPEND_FORWARD' as const,
      leadingHttpFilters: inboundSecurityHttpFilters(context, port),
      ...pathNormalizationOption(context.mesh),
      ...accessLogOption(context, 'SERVER'),
      ...tracingOption(context, 'SERVER'),
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

/**
 * Istio's reportInboundConflict: services of different hosts selecting one workload port with different protocols are
 * a real conflict (one protocol serves the port); one host on several IPs, or equal protocols, are not. Keyed by proxy.
 */
function reportInboundConflict(port: number, instances: readonly ServiceInstance[], context: ListenerBuildContext): void {
  const report = context.report ?? (context.push && context.proxy ? context.push.status.reporter(context.proxy.id) : undefined);
  if (!report) return;
  const first = instances[0]!;
  const other = instances.find((i) => i.hostname !== first.hostname && i.servicePort.protocol.toUpperCase() !== first.servicePort.protocol.toUpperCase());
  if (!other) return;
  report('pilot_conflict_inbound_listener', context.proxy?.id ?? '', `Conflicting inbound listener:${port}. existing: ${first.hostname} (${first.servicePort.protocol}), incoming: ${other.hostname} (${other.servicePort.protocol})`);
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
 * Istio's virtualInbound: bound on 0.0.0.0:15006 where iptables redirects inbound traffic; original_dst restores the
 * port the client dialled and the chains of each workload port (see inboundChains) pick mTLS or plaintext, HTTP
 * (connection manager to `inbound|<port>||`) or TCP. Other ports pass through to InboundPassthroughClusterIpv4 under
 * the workload's mTLS mode; 15006 itself is black-holed. The inspectors run only on the ports whose chains need them
 * (inbound-listener-filters.ts, Istio's populateListenerFilters): no HTTP sniffing on declared ports, no TLS
 * inspection where no chain matches TLS, so a server-first protocol on a DISABLE port is not held.
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
  return {
    name: VIRTUAL_INBOUND_LISTENER,
    address: socketAddress(WILDCARD_ADDRESS, INBOUND_CAPTURE_PORT),
    filter_chains: chains,
    listener_filters: [originalDst(), ...inspectorsFor(chains)],
    listener_filters_timeout: { seconds: 0 },
    continue_on_listener_filters_timeout: true,
    traffic_direction: 'INBOUND',
  };
}
