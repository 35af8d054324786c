// Sidecar outbound listeners: virtualOutbound on 15001 (original-destination handoff) and one unbound listener per service port.
import { accessLogOption } from '../telemetry/access-log.js';
import { tracingOption } from '../telemetry/tracing.js';
import { BLACKHOLE_CLUSTER, OUTBOUND_CAPTURE_PORT, PASSTHROUGH_CLUSTER, VIRTUAL_OUTBOUND_LISTENER } from '../../model/cluster-name.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Service } from '../../model/service.js';
import type { PushStatusReporter } from '../../model/push-status.js';
import { HTTP_CONNECTION_MANAGER } from '../common/envoy-filter-names.js';
import { httpConnectionManagerFilter, pathNormalizationOption, socketAddress, tcpIstioStatsFilter, tcpProxyFilter, tlsInspector } from '../common/network-filters.js';
import { isTlsProtocol, tcpChainOptions, tlsChainOptions, type L4ChainOption, type L4RouteSource } from './outbound-l4-routes.js';
import { isHttpProtocol } from '../common/port-protocol.js';
import { listenerName, WILDCARD_ADDRESS, type FilterChain, type Listener, type ListenerBuildContext } from './listener-context.js';

type CidrRange = NonNullable<NonNullable<FilterChain['filter_chain_match']>['prefix_ranges']>[number];

function outboundPolicy(context: ListenerBuildContext): MeshConfig['outboundTrafficPolicy'] {
  return context.outboundTrafficPolicy ?? context.mesh.outboundTrafficPolicy;
}

/** PassthroughCluster under ALLOW_ANY, BlackHoleCluster under REGISTRY_ONLY. */
function catchAllCluster(context: ListenerBuildContext): string {
  return outboundPolicy(context) === 'ALLOW_ANY' ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
}

/**
 * Istio's virtualOutbound: bound on 0.0.0.0:15001 where iptables redirects outbound traffic, use_original_dst hands each
 * connection to the listener of its original destination; what no listener takes goes through the catch-all chain.
 * Connections addressed to 15001 itself are black-holed so traffic cannot loop.
 */
export function buildVirtualOutboundListener(context: ListenerBuildContext): Listener {
  return {
    name: VIRTUAL_OUTBOUND_LISTENER,
    address: socketAddress(WILDCARD_ADDRESS, OUTBOUND_CAPTURE_PORT),
    use_original_dst: { value: true },
    filter_chains: [
      {
        name: 'virtualOutbound-blackhole',
        filter_chain_match: { destination_port: { value: OUTBOUND_CAPTURE_PORT } },
        filters: [tcpProxyFilter(BLACKHOLE_CLUSTER)],
      },
      { name: 'virtualOutbound-catchall-tcp', filters: [tcpProxyFilter(catchAllCluster(context))] },
    ],
    traffic_direction: 'OUTBOUND',
  };
}

/** `10.0.0.0/16` or `10.0.0.5` as a CidrRange; undefined for what is not an IP. */
export function cidrRange(address: string): CidrRange | undefined {
  const [ip = '', len] = address.split('/');
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(ip);
  const v6 = !v4 && ip.includes(':');
  if (!v4 && !v6) return undefined;
  const prefix = len === undefined ? (v4 ? 32 : 128) : Number(len);
  return { address_prefix: ip, prefix_len: { value: prefix } };
}

/**
 * A service's single plain VIP (Istio binds the TCP listener to it), or undefined. An address-less ServiceEntry host
 * uses its auto-allocated VIP when the proxy resolves through the DNS proxy with auto-allocation (Istio's
 * GetAddressForProxy): its clients connect to that address, so its TCP gets a listener of its own.
 */
function singleVip(service: Service, autoAllocated?: ReadonlyMap<string, string>): string | undefined {
  if (service.addresses.length === 0) return autoAllocated?.get(service.hostname);
  if (service.addresses.length !== 1) return undefined;
  const address = service.addresses[0]!;
  if (address.includes('/') || address === WILDCARD_ADDRESS || cidrRange(address) === undefined) return undefined;
  return address;
}

/** Without a scope to look in: no VirtualService or DestinationRule applies. */
const NO_L4_ROUTES: L4RouteSource = { virtualServiceFor: () => undefined, destinationRule: () => undefined };

function chainMatchKey(match: FilterChain['filter_chain_match']): string {
  return JSON.stringify(match ?? {});
}

/**
 * Adds a TCP/TLS chain unless the listener already has one with the same match (Envoy refuses duplicates; the first
 * service or route keeps it, as in Istio's conflict resolution). SNI chains need the TLS inspector on the listener.
 */
function addL4Chain(listener: Listener, option: L4ChainOption, report?: PushStatusReporter): void {
  const match: NonNullable<FilterChain['filter_chain_match']> = {};
  const ranges = option.cidrs.map(cidrRange).filter((r): r is CidrRange => r !== undefined);
  if (ranges.length > 0) match.prefix_ranges = ranges;
  if (option.serverNames.length > 0) match.server_names = [...option.serverNames];
  const chains = listener.filter_chains!;
  const key = chainMatchKey(Object.keys(match).length > 0 ? match : undefined);
  const current = chains.find((c) => chainMatchKey(c.filter_chain_match) === key);
  if (current) {
    // Istio's outboundListenerConflict: the first chain keeps the match, the newcomer is reported by what holds it.
    const http = (current.filters ?? []).some((f) => f.name === HTTP_CONNECTION_MANAGER);
    report?.(
      http ? 'pilot_conflict_outbound_listener_tcp_over_current_http' : 'pilot_conflict_outbound_listener_tcp_over_current_tcp',
      listener.name!,
      `Listener=${listener.name} Accepted${http ? 'HTTP' : 'TCP'}=${current.name} RejectedTCP=${option.name}`,
    );
    return;
  }
  let name = option.name;
  for (let n = 1; chains.some((c) => c.name === name); n++) name = `${option.name}-${n}`;
  // Istio's TCP metrics: istio.stats (source reporter) before the chain's tcp_proxy (Istio's buildOutboundNetworkFilters).
  chains.push({ name, ...(Object.keys(match).length > 0 ? { filter_chain_match: match } : {}), filters: [tcpIstioStatsFilter('OUTBOUND'), ...option.filters] });
  if (option.serverNames.length > 0 && !(listener.listener_filters ?? []).some((f) => f.name === tlsInspector().name)) listener.listener_filters = [...(listener.listener_filters ?? []), tlsInspector()];
}

interface PortListener {
  listener: Listener;
  /** A chain without filter_chain_match already exists: another one would be ambiguous (Envoy refuses it). */
  hasCatchAllChain: boolean;
}

function unboundListener(address: string, port: number): Listener {
  return {
    name: listenerName(address, port),
    address: socketAddress(address, port),
    filter_chains: [],
    traffic_direction: 'OUTBOUND',
    // Not bound: virtualOutbound hands connections over by original destination, as in Istio.
    bind_to_port: { value: false },
  };
}

/**
 * Istio's outbound listeners. HTTP ports: `0.0.0.0_<port>` with a connection manager asking RDS for `"<port>"`. TCP
 * ports: `<vip>_<port>` when the service has one VIP, else a chain in `0.0.0.0_<port>` matching the service's
 * addresses (prefix_ranges) — or matching everything when it has none (first such service wins a port, as Istio's
 * conflict resolution keeps one). Wildcard listeners pass unmatched connections through (PassthroughFilterChain).
 */
export function buildOutboundListeners(
  services: readonly Service[],
  context: ListenerBuildContext,
  l4Routes: L4RouteSource = NO_L4_ROUTES,
  autoAllocated?: ReadonlyMap<string, string>,
): Listener[] {
  const wildcard = new Map<number, PortListener>();
  const byVip = new Map<string, Listener>();
  const wildcardFor = (port: number): PortListener => {
    let entry = wildcard.get(port);
    if (!entry) {
      entry = { listener: unboundListener(WILDCARD_ADDRESS, port), hasCatchAllChain: false };
      wildcard.set(port, entry);
    }
    return entry;
  };

  // HTTP first: on a port shared by HTTP and address-less TCP services, HTTP keeps the port (Istio's precedence).
  for (const service of services) {
    for (const port of service.ports) {
      if (!isHttpProtocol(port.protocol)) continue;
      const entry = wildcardFor(port.number);
      if (entry.hasCatchAllChain) continue;
      entry.listener.filter_chains!.push({
        name: listenerName(WILDCARD_ADDRESS, port.number),
        filters: [
          httpConnectionManagerFilter({
            statPrefix: `outbound_${listenerName(WILDCARD_ADDRESS, port.number)}`,
            rdsRouteName: String(port.number),
            useRemoteAddress: false,
            ...pathNormalizationOption(context.mesh),
            ...(context.outboundHttpTelemetry ?? { ...accessLogOption(context, 'CLIENT'), ...tracingOption(context, 'CLIENT') }),
          }),
        ],
      });
      entry.hasCatchAllChain = true;
    }
  }
  for (const service of services) {
    for (const port of service.ports) {
      if (isHttpProtocol(port.protocol)) continue;
      const vip = singleVip(service, autoAllocated);
      let listener: Listener;
      // A VIP listener tells services apart by address; a wildcard one by the service's CIDRs, or by SNI for TLS.
      let cidrs: string[] = [];
      if (vip !== undefined) {
        const name = listenerName(vip, port.number);
        listener = byVip.get(name) ?? unboundListener(vip, port.number);
        byVip.set(name, listener);
      } else {
        const entry = wildcardFor(port.number);
        listener = entry.listener;
        cidrs = service.addresses.filter((a) => { const r = cidrRange(a); return r !== undefined && r.address_prefix !== WILDCARD_ADDRESS; });
      }
      const options = isTlsProtocol(port.protocol)
        ? tlsChainOptions(service, port, cidrs, vip !== undefined, l4Routes)
        : tcpChainOptions(service, port, cidrs, l4Routes);
      for (const option of options) addL4Chain(listener, option, context.report);
      if (vip === undefined) wildcardFor(port.number).hasCatchAllChain ||= listener.filter_chains!.some((c) => c.filter_chain_match === undefined);
    }
  }
  const catchAll = catchAllCluster(context);
  const out: Listener[] = [];
  for (const { listener } of [...wildcard.values()].sort((a, b) => a.listener.address!.socket_address!.port_value! - b.listener.address!.socket_address!.port_value!)) {
    listener.default_filter_chain = { name: 'PassthroughFilterChain', filters: [tcpProxyFilter(catchAll)] };
    out.push(listener);
  }
  out.push(...[...byVip.values()].sort((a, b) => (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0)));
  return out;
}
