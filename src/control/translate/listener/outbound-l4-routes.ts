// Istio's outbound TCP and TLS filter chains (tls.go, networkfilter.go): VirtualService tcp/tls routes as chain matches and tcp_proxy filters.
import type { DestinationRule, VirtualService } from '../../../api/index.js';
import type { RouteDestination, TCPRoute, TLSRoute } from '../../../api/networking/virtual-service.js';
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import { clusterName } from '../../model/cluster-name.js';
import type { Service, ServicePort } from '../../model/service.js';
import { MESH_GATEWAY } from '../../model/virtual-service-index.js';
import { TCP_PROXY, TCP_PROXY_MESSAGE } from '../common/envoy-filter-names.js';
import type { Filter } from '../common/network-filters.js';
import { durationFromIstio } from '../common/route-duration.js';

type TcpProxy = envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;

/** What the chains read besides the service: its VirtualService and DestinationRules in the proxy's scope, and who sends. */
export interface L4RouteSource {
  virtualServiceFor(hostname: string): VirtualService | undefined;
  destinationRule(hostname: string): DestinationRule | undefined;
  /**
   * The sending workload, for `sourceLabels`/`sourceNamespace` matches (evaluated when config is generated, as in
   * Istio). Absent: listeners shared by every proxy of a scope, built only when no route in it matches on the source.
   */
  readonly source?: { readonly labels: Readonly<Record<string, string>>; readonly namespace: string };
}

/** One chain to add: runtime predicates (destination CIDRs, SNI) and the network filters. */
export interface L4ChainOption {
  readonly name: string;
  readonly cidrs: readonly string[];
  readonly serverNames: readonly string[];
  readonly filters: Filter[];
}

const TLS_PROTOCOLS = new Set(['TLS', 'HTTPS']);

/** TLS and HTTPS ports are routed by SNI (VirtualService `tls`); other non-HTTP ports by VirtualService `tcp`. */
export function isTlsProtocol(protocol: string): boolean {
  return TLS_PROTOCOLS.has(protocol.toUpperCase());
}

interface StaticMatch {
  readonly port?: number;
  readonly sourceLabels?: Record<string, string>;
  readonly sourceNamespace?: string;
  readonly gateways?: string[];
}

/** Istio's matchTCP/matchTLS: the predicates known at generation time (gateway, port, source labels and namespace). */
function staticMatch(match: StaticMatch, port: number, source: L4RouteSource['source']): boolean {
  if (match.gateways && match.gateways.length > 0 && !match.gateways.includes(MESH_GATEWAY)) return false;
  if (match.port !== undefined && match.port !== 0 && match.port !== port) return false;
  if (match.sourceNamespace && match.sourceNamespace !== source?.namespace) return false;
  for (const [k, v] of Object.entries(match.sourceLabels ?? {})) if (source?.labels[k] !== v) return false;
  return true;
}

/** True when any tcp/tls route of `virtualServices` matches on the sender (so its chains differ per proxy). */
export function matchesOnSource(virtualServices: readonly VirtualService[]): boolean {
  return virtualServices.some((vs) => {
    const spec = vs.spec as { tcp?: TCPRoute[]; tls?: TLSRoute[] };
    return [...(spec.tcp ?? []), ...(spec.tls ?? [])].some((r) => (r.match ?? []).some((m) => m.sourceNamespace || Object.keys(m.sourceLabels ?? {}).length > 0));
  });
}

/** The subset's connection pool, else the rule's (Istio's subset precedence for tcp idle and duration limits). */
function tcpPool(rule: DestinationRule | undefined, subset: string): NonNullable<NonNullable<import('../../../api/networking/destination-rule.js').ConnectionPoolSettings>['tcp']> | undefined {
  const spec = rule?.spec as import('../../../api/networking/destination-rule.js').DestinationRuleSpec | undefined;
  const fromSubset = spec?.subsets?.find((s) => s.name === subset)?.trafficPolicy?.connectionPool?.tcp;
  return { ...spec?.trafficPolicy?.connectionPool?.tcp, ...fromSubset };
}

/** tcp_proxy to one cluster, with the DestinationRule's `connectionPool.tcp.idleTimeout` and `maxConnectionDuration`. */
function singleDestination(cluster: string, host: string, subset: string, routes: L4RouteSource): Filter {
  const config: TcpProxy = { stat_prefix: cluster, cluster };
  const pool = tcpPool(routes.destinationRule(host), subset);
  const idle = durationFromIstio(pool?.idleTimeout);
  if (idle) config.idle_timeout = idle;
  const max = durationFromIstio(pool?.maxConnectionDuration);
  if (max) config.max_downstream_connection_duration = max;
  return { name: TCP_PROXY, typed_config: packAny(TCP_PROXY_MESSAGE, config) };
}

/** `outbound|<port>|<subset>|<host>`: the destination's port, else the port the listener was built for. */
function destinationCluster(route: RouteDestination, listenPort: number): string {
  const d = route.destination;
  return clusterName('outbound', d.port?.number ?? listenPort, d.subset ?? '', d.host);
}

/**
 * Istio's buildOutboundNetworkFilters: one destination is a tcp_proxy to its cluster; several are weighted_clusters
 * (zero weights left out) with the VirtualService's `name.namespace` as stat_prefix.
 */
export function routeFilters(route: readonly RouteDestination[], listenPort: number, vs: VirtualService, routes: L4RouteSource): Filter[] {
  const weighted = route.filter((r) => route.length === 1 || (r.weight ?? 0) > 0);
  if (weighted.length === 1) {
    const only = weighted[0]!;
    return [singleDestination(destinationCluster(only, listenPort), only.destination.host, only.destination.subset ?? '', routes)];
  }
  const config: TcpProxy = {
    stat_prefix: `${vs.metadata.name}.${vs.metadata.namespace}`,
    weighted_clusters: { clusters: weighted.map((r) => ({ name: destinationCluster(r, listenPort), weight: r.weight ?? 0 })) },
  };
  // One host behind every destination: its rule's idle timeout applies to the split as well.
  const hosts = new Set(weighted.map((r) => r.destination.host));
  if (hosts.size === 1) {
    const pool = tcpPool(routes.destinationRule([...hosts][0]!), '');
    const idle = durationFromIstio(pool?.idleTimeout);
    if (idle) config.idle_timeout = idle;
  }
  return [{ name: TCP_PROXY, typed_config: packAny(TCP_PROXY_MESSAGE, config) }];
}

function defaultChain(service: Service, port: ServicePort, cidrs: readonly string[], serverNames: readonly string[], routes: L4RouteSource): L4ChainOption {
  // A service with one port routes there whatever port the listener has (Istio's rule for Sidecar-defined ports).
  const targetPort = service.ports.length === 1 ? service.ports[0]!.number : port.number;
  const cluster = clusterName('outbound', targetPort, '', service.hostname);
  return { name: cluster, cidrs, serverNames, filters: [singleDestination(cluster, service.hostname, '', routes)] };
}

/**
 * Istio's buildSidecarOutboundTCPFilterChainOpts: the VirtualService's tcp routes in order; a route whose matching
 * block has no destinationSubnets catches everything left and ends the list; routes matching only by subnets become
 * chains on those CIDRs; without a catch-all route the service's own cluster takes the rest.
 */
export function tcpChainOptions(service: Service, port: ServicePort, cidrs: readonly string[], routes: L4RouteSource): L4ChainOption[] {
  const vs = routes.virtualServiceFor(service.hostname);
  const out: L4ChainOption[] = [];
  const tcp = ((vs?.spec as { tcp?: TCPRoute[] } | undefined)?.tcp ?? []);
  let defaultAdded = false;
  for (const [i, r] of tcp.entries()) {
    const name = `${vs!.metadata.name}.${vs!.metadata.namespace}.tcp[${i}]`;
    const matches = r.match ?? [];
    if (matches.length === 0 || matches.some((m) => staticMatch(m, port.number, routes.source) && (m.destinationSubnets ?? []).length === 0)) {
      out.push({ name, cidrs, serverNames: [], filters: routeFilters(r.route ?? [], port.number, vs!, routes) });
      defaultAdded = true;
      break;
    }
    const subnets = matches.filter((m) => staticMatch(m, port.number, routes.source)).flatMap((m) => m.destinationSubnets ?? []);
    if (subnets.length > 0) {
      out.push({ name, cidrs: subnets, serverNames: [], filters: routeFilters(r.route ?? [], port.number, vs!, routes) });
      if ([...subnets].sort().join() === [...cidrs].sort().join()) defaultAdded = true;
    }
  }
  if (!defaultAdded) out.push(defaultChain(service, port, cidrs, [], routes));
  return out;
}

/**
 * Istio's buildSidecarOutboundTLSFilterChainOpts: one chain per distinct (sniHosts, destinationSubnets) of the tls
 * routes whose static predicates match, in order. Without a matching tls route the service's cluster takes the port,
 * matched by its host name as SNI when the listener cannot tell services apart by address (no VIP, or CIDRs).
 */
export function tlsChainOptions(service: Service, port: ServicePort, cidrs: readonly string[], boundToVip: boolean, routes: L4RouteSource): L4ChainOption[] {
  const vs = routes.virtualServiceFor(service.hostname);
  const out: L4ChainOption[] = [];
  const seen = new Set<string>();
  const tls = ((vs?.spec as { tls?: TLSRoute[] } | undefined)?.tls ?? []);
  for (const [i, r] of tls.entries()) {
    for (const m of r.match ?? []) {
      if (!staticMatch(m, port.number, routes.source)) continue;
      const chainCidrs = (m.destinationSubnets ?? []).length > 0 ? m.destinationSubnets! : cidrs;
      const key = `${(m.sniHosts ?? []).join(',')}|${(m.destinationSubnets ?? []).join(',')}`;
      // The same runtime predicates again can never be reached: the first one wins.
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ name: `${vs!.metadata.name}.${vs!.metadata.namespace}.tls[${i}]`, cidrs: chainCidrs, serverNames: m.sniHosts ?? [], filters: routeFilters(r.route ?? [], port.number, vs!, routes) });
    }
  }
  if (out.length === 0) out.push(defaultChain(service, port, cidrs, cidrs.length > 0 || !boundToVip ? [service.hostname] : [], routes));
  return out;
}
