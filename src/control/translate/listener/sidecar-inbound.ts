// Sidecar inbound listener: virtualInbound on 15006 with a filter chain per workload port, and passthrough for the rest.
import type { envoy } from '../../../xds/generated/types.js';
import { BLACKHOLE_CLUSTER, INBOUND_CAPTURE_PORT, INBOUND_PASSTHROUGH_CLUSTER, VIRTUAL_INBOUND_LISTENER } from '../../model/cluster-name.js';
import type { ServiceInstance } from '../../model/service.js';
import { httpConnectionManagerFilter, httpInspector, originalDst, socketAddress, tcpProxyFilter, tlsInspector } from '../common/network-filters.js';
import { isHttpProtocol } from '../common/port-protocol.js';
import { buildInboundRouteConfiguration, inboundRouteName } from '../route/route-configuration.js';
import { listenerName, WILDCARD_ADDRESS, type FilterChain, type Listener, type ListenerBuildContext } from './listener-context.js';

type MatchPredicate = envoy.config.listener.v3.ListenerFilterChainMatchPredicate;

/** One chain per workload port (instances deduplicated by port; the first instance's protocol wins), by Istio's name. */
export function inboundChain(port: number, instances: ServiceInstance[], context: ListenerBuildContext): FilterChain {
  const name = inboundRouteName(port);
  const first = instances[0]!;
  if (!isHttpProtocol(first.servicePort.protocol)) {
    return { name, filter_chain_match: { destination_port: { value: port } }, filters: [tcpProxyFilter(name)] };
  }
  const statPrefix = `inbound_${listenerName(WILDCARD_ADDRESS, port)}`;
  const hcm =
    context.inboundRoutes === 'rds'
      ? httpConnectionManagerFilter({ statPrefix, rdsRouteName: name, useRemoteAddress: false, forwardClientCertDetails: 'APPEND_FORWARD' })
      : httpConnectionManagerFilter({
          statPrefix,
          routeConfig: buildInboundRouteConfiguration(name, port, instances),
          useRemoteAddress: false,
          forwardClientCertDetails: 'APPEND_FORWARD',
        });
  return { name, filter_chain_match: { destination_port: { value: port } }, filters: [hcm] };
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
 * port the client dialled and a chain per workload port picks HTTP (connection manager to `inbound|<port>||`) or TCP.
 * Other ports pass through to InboundPassthroughClusterIpv4; 15006 itself is black-holed. http_inspector is disabled
 * on the declared ports, whose protocol is known (Istio does the same).
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
    ...ports.map((port) => inboundChain(port, byPort.get(port)!, context)),
    {
      name: VIRTUAL_INBOUND_LISTENER,
      filter_chain_match: { prefix_ranges: [{ address_prefix: WILDCARD_ADDRESS, prefix_len: { value: 0 } }] },
      filters: [tcpProxyFilter(INBOUND_PASSTHROUGH_CLUSTER)],
    },
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
