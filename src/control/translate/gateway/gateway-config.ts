// A gateway proxy's listeners and routes: Gateway servers → bound `0.0.0.0_<port>` listeners, bound VirtualServices → `http.<port>` routes.
import { accessLogOption } from '../telemetry/access-log.js';
import { tracingOption } from '../telemetry/tracing.js';
import type { Gateway, Server, VirtualService } from '../../../api/index.js';
import { resolveHostname } from '../../model/hostname.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import type { Service } from '../../model/service.js';
import { httpConnectionManagerFilter, pathNormalizationOption, socketAddress, tlsInspector, type HttpFilter } from '../common/network-filters.js';
import { isHttpProtocol } from '../common/port-protocol.js';
import { virtualServiceGateways, type ServiceLookup } from '../common/service-lookup.js';
import { buildHttpRoutesForVirtualService } from '../route/http-route.js';
import { POLICY_SECURITY_FILTERS, type SecurityFilterProvider } from '../common/security-filter-provider.js';
import { MAX_DIRECT_RESPONSE_BODY_BYTES, VirtualHostSet, type RouteConfiguration, type VirtualHost } from '../route/route-configuration.js';
import { listenerName, WILDCARD_ADDRESS, type FilterChain, type Listener } from '../listener/listener-context.js';
import { intersectHosts, parseServerHost } from './gateway-hosts.js';
import { tlsTransportSocket } from './gateway-tls.js';

export interface GatewayBuildContext {
  mesh: MeshConfig;
  proxy?: Proxy;
  /** For the security filters (AuthorizationPolicy, RequestAuthentication selecting the gateway); none without it. */
  push?: PushContext;
  /** Where the security filters come from; the AuthorizationPolicy/RequestAuthentication translation unless a test swaps it. */
  securityFilters?: SecurityFilterProvider;
}

export interface GatewayConfig {
  listeners: Listener[];
  routes: RouteConfiguration[];
}

/** One server of one Gateway, with the names routes and VirtualServices use for it. */
interface GatewayServer {
  server: Server;
  port: number;
  /** `namespace/name` of its Gateway. */
  gatewayName: string;
  gatewayNamespace: string;
  gatewayLocalName: string;
}

type ServerKind = 'http' | 'https' | 'unsupported';

/** HTTP/HTTP2/GRPC servers are plain HTTP; HTTPS servers that terminate TLS are HTTPS; TCP, TLS and passthrough are not built yet. */
function serverKind(server: Server): ServerKind {
  const protocol = (server.port?.protocol ?? '').toUpperCase();
  if (isHttpProtocol(protocol)) return 'http';
  const mode = server.tls?.mode ?? 'SIMPLE';
  if (protocol === 'HTTPS' && server.tls && mode !== 'PASSTHROUGH' && mode !== 'AUTO_PASSTHROUGH') return 'https';
  return 'unsupported';
}

/** Istio's route names: `http.80` for every plain-HTTP server on a port; `https.443.<portName>.<gateway>.<namespace>` per HTTPS server. */
export function gatewayRouteName(entry: GatewayServer, kind: 'http' | 'https'): string {
  if (kind === 'http') return `http.${entry.port}`;
  return `https.${entry.port}.${entry.server.port?.name ?? ''}.${entry.gatewayLocalName}.${entry.gatewayNamespace}`;
}

function virtualHostDomains(host: string, port: number): string[] {
  return host === '*' ? ['*'] : [host, `${host}:${port}`];
}

/**
 * Istio's buildGatewayHTTPRouteConfig: every VirtualService bound to one of the servers' Gateways (`gateways:
 * [ns/name | name]`) contributes a virtual host per host it shares with a server (namespace-restricted by
 * `ns/host`), its routes built for those gateway names; the first VirtualService to claim a host keeps it. A server
 * with `tls.httpsRedirect` makes its virtual hosts require TLS. No virtual host at all: a `blackhole:<port>` one
 * that answers 404.
 */
function buildGatewayRouteConfiguration(
  name: string,
  port: number,
  servers: readonly GatewayServer[],
  virtualServices: readonly VirtualService[],
  services: ServiceLookup,
  context: GatewayBuildContext,
  proxy: Proxy,
  isTls: boolean,
): RouteConfiguration {
  const hosts = new VirtualHostSet();
  for (const vs of virtualServices) {
    const bound = new Set(virtualServiceGateways(vs.spec.gateways, vs.metadata.namespace));
    const matched = servers.filter((s) => bound.has(s.gatewayName));
    if (matched.length === 0) continue;
    const vsHosts = (vs.spec.hosts ?? []).map((h) => resolveHostname(h, vs.metadata.namespace, context.mesh.domainSuffix));
    const vhostTls = new Map<string, boolean>();
    for (const entry of matched) {
      for (const text of entry.server.hosts ?? []) {
        const serverHost = parseServerHost(text, entry.gatewayNamespace);
        if (serverHost.namespace !== '*' && serverHost.namespace !== vs.metadata.namespace) continue;
        for (const vsHost of vsHosts) {
          const host = intersectHosts(vsHost, serverHost.host);
          if (host === undefined) continue;
          const redirect = entry.server.tls?.httpsRedirect === true && !isTls;
          vhostTls.set(host, (vhostTls.get(host) ?? false) || redirect);
        }
      }
    }
    if (vhostTls.size === 0) continue;
    const routes = buildHttpRoutesForVirtualService(vs, {
      proxy,
      mesh: context.mesh,
      listenPort: port,
      gatewayNames: new Set(matched.map((s) => s.gatewayName)),
      services,
      isTls,
    });
    if (routes.length === 0) continue;
    for (const [host, requireTls] of vhostTls) {
      const vhost: VirtualHost = { name: `${host}:${port}`, domains: virtualHostDomains(host, port), routes, include_request_attempt_count: true };
      if (requireTls) vhost.require_tls = 'ALL';
      hosts.add(vhost);
    }
  }
  const virtualHosts = hosts.hosts;
  // Envoy answers 404 (no route) for every request on an empty route list.
  if (virtualHosts.length === 0) virtualHosts.push({ name: `blackhole:${port}`, domains: ['*'], routes: [] });
  return {
    name,
    virtual_hosts: virtualHosts,
    validate_clusters: { value: false },
    max_direct_response_body_size_bytes: { value: MAX_DIRECT_RESPONSE_BODY_BYTES },
  };
}

function gatewayHcm(statPort: number, routeName: string, context: GatewayBuildContext, securityFilters: readonly HttpFilter[]) {
  return httpConnectionManagerFilter({
    statPrefix: `outbound_${listenerName(WILDCARD_ADDRESS, statPort)}`,
    rdsRouteName: routeName,
    useRemoteAddress: true,
    forwardClientCertDetails: 'SANITIZE_SET',
    leadingHttpFilters: securityFilters,
    ...pathNormalizationOption(context.mesh),
    ...accessLogOption(context, 'CLIENT'),
    ...tracingOption(context, 'CLIENT'),
  });
}

function toLookup(services: ServiceLookup | ReadonlyMap<string, Service>): ServiceLookup {
  return typeof services === 'function' ? services : (host) => services.get(host);
}

/**
 * The listeners and route configurations of a gateway proxy (Istio's gateway generator). `gateways` are the Gateways
 * selecting this proxy and `virtualServices` the ones that may bind to them (the PushContext selects both). Servers
 * are merged per port into one bound listener `0.0.0.0_<port>` (or `<bind>_<port>`): plain HTTP servers share one
 * chain and route configuration `http.<port>`; each HTTPS server gets a chain matched by SNI with its TLS context and
 * route configuration. A port's first server decides whether it is HTTP or HTTPS; TCP/TLS passthrough servers are
 * skipped.
 */
export function buildGatewayConfig(
  proxy: Proxy,
  gateways: readonly Gateway[],
  virtualServices: readonly VirtualService[],
  services: ServiceLookup | ReadonlyMap<string, Service>,
  context: GatewayBuildContext,
): GatewayConfig {
  const lookup = toLookup(services);
  // AuthorizationPolicy and RequestAuthentication select the gateway workload as a whole: one filter list for every HCM.
  const securityFilters = context.push ? (context.securityFilters ?? POLICY_SECURITY_FILTERS).http({ push: context.push, proxy, isGateway: true }) : [];
  const byPort = new Map<number, GatewayServer[]>();
  for (const gateway of gateways) {
    for (const server of gateway.spec.servers ?? []) {
      const port = server.port?.number;
      if (port === undefined || serverKind(server) === 'unsupported') continue;
      const list = byPort.get(port) ?? [];
      list.push({
        server,
        port,
        gatewayName: `${gateway.metadata.namespace}/${gateway.metadata.name}`,
        gatewayNamespace: gateway.metadata.namespace,
        gatewayLocalName: gateway.metadata.name,
      });
      byPort.set(port, list);
    }
  }

  const listeners: Listener[] = [];
  const routes: RouteConfiguration[] = [];
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const all = byPort.get(port)!;
    const kind = serverKind(all[0]!.server) as 'http' | 'https';
    const servers = all.filter((s) => serverKind(s.server) === kind);
    const bind = servers[0]!.server.bind || WILDCARD_ADDRESS;
    const chains: FilterChain[] = [];
    if (kind === 'http') {
      const name = gatewayRouteName(servers[0]!, 'http');
      routes.push(buildGatewayRouteConfiguration(name, port, servers, virtualServices, lookup, context, proxy, false));
      chains.push({ name, filters: [gatewayHcm(port, name, context, securityFilters)] });
    } else {
      const seenSni = new Set<string>();
      for (const entry of servers) {
        const name = gatewayRouteName(entry, 'https');
        routes.push(buildGatewayRouteConfiguration(name, port, [entry], virtualServices, lookup, context, proxy, true));
        const sni = (entry.server.hosts ?? []).map((h) => parseServerHost(h, entry.gatewayNamespace).host).filter((h) => h !== '*' && !seenSni.has(h));
        const chain: FilterChain = { name, filters: [gatewayHcm(port, name, context, securityFilters)], transport_socket: tlsTransportSocket(entry.server.tls!) };
        const wildcardServer = (entry.server.hosts ?? []).some((h) => parseServerHost(h, entry.gatewayNamespace).host === '*');
        if (!wildcardServer) {
          // Two servers claiming the same SNI would make identical chain matches, which Envoy refuses.
          if (sni.length === 0) continue;
          chain.filter_chain_match = { server_names: sni };
        } else if (chains.some((c) => c.filter_chain_match === undefined)) {
          continue;
        }
        for (const h of sni) seenSni.add(h);
        chains.push(chain);
      }
    }
    const listener: Listener = {
      name: listenerName(bind, port),
      address: socketAddress(bind, port),
      filter_chains: chains,
      traffic_direction: 'OUTBOUND',
    };
    if (kind === 'https') listener.listener_filters = [tlsInspector()];
    listeners.push(listener);
  }
  return { listeners, routes };
}
