// RDS for sidecars: the outbound RouteConfiguration per port (`9080`), the explicit-proxy one (`outbound_http`), and inbound ones (`inbound|9080||`).
import type { VirtualService } from '../../../api/index.js';
import type { envoy } from '../../../xds/generated/types.js';
import { clusterName, PASSTHROUGH_CLUSTER } from '../../model/cluster-name.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { PushStatusReporter } from '../../model/push-status.js';
import type { Proxy } from '../../model/proxy.js';
import type { Service, ServiceInstance } from '../../model/service.js';
import { isHttpProtocol } from '../common/port-protocol.js';
import { noTimeout } from '../common/route-duration.js';
import { MESH_GATEWAY, serviceLookupOf, virtualServiceGateways, type ServiceLookup } from '../common/service-lookup.js';
import { buildDefaultInboundRoute, buildDefaultOutboundRoute, buildHttpRoutesForVirtualService, type Route } from './http-route.js';
import { virtualHostDomains } from './virtual-host-domains.js';

export type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
export type VirtualHost = envoy.config.route.v3.VirtualHost;

export interface RouteBuildContext {
  proxy: Proxy;
  mesh: MeshConfig;
  /** `mesh` (the default) for sidecars, or `namespace/name` of the gateway being built for: filters match.gateways. */
  gateway?: string;
  /** Services beyond the entries (for destinations and mirrors to other hosts: their single port is the default port). */
  services?: ServiceLookup;
  /** A Sidecar resource's outboundTrafficPolicy, overriding the MeshConfig's. */
  outboundTrafficPolicy?: MeshConfig['outboundTrafficPolicy'];
  /** Told of virtual hosts dropped or trimmed as duplicates (the push's status: istiod's pilot_vservice_dup_domain). */
  report?: PushStatusReporter;
}

export interface RouteEntry {
  service: Service;
  /** The VirtualService for this host as the PushContext selected it (bound to `mesh`); absent: the default route. */
  virtualService?: VirtualService;
}

/** Istio's names for the catch-all virtual hosts. */
export const ALLOW_ANY_VIRTUAL_HOST = 'allow_any';
export const BLOCK_ALL_VIRTUAL_HOST = 'block_all';
/** The route configuration (and listener) name of the explicit-proxy (HTTP_PROXY) mode. */
export const EXPLICIT_OUTBOUND_ROUTE_NAME = 'outbound_http';

/** Istio raises Envoy's 4 KiB direct-response body limit to the 1 MiB its validation allows. */
export const MAX_DIRECT_RESPONSE_BODY_BYTES = 1024 * 1024;

/** Istio's buildCatchAllVirtualHost: `*` to PassthroughCluster (ALLOW_ANY) or a 502 (REGISTRY_ONLY). */
export function buildCatchAllVirtualHost(policy: MeshConfig['outboundTrafficPolicy']): VirtualHost {
  if (policy === 'ALLOW_ANY') {
    return {
      name: ALLOW_ANY_VIRTUAL_HOST,
      domains: ['*'],
      routes: [
        {
          name: ALLOW_ANY_VIRTUAL_HOST,
          match: { prefix: '/' },
          route: { cluster: PASSTHROUGH_CLUSTER, timeout: noTimeout(), max_grpc_timeout: noTimeout() },
        },
      ],
      include_request_attempt_count: true,
    };
  }
  return {
    name: BLOCK_ALL_VIRTUAL_HOST,
    domains: ['*'],
    routes: [{ name: BLOCK_ALL_VIRTUAL_HOST, match: { prefix: '/' }, direct_response: { status: 502 } }],
    include_request_attempt_count: true,
  };
}

/** True when the VirtualService is bound to this gateway name (`mesh` when it lists no gateways). */
export function virtualServiceAppliesTo(vs: VirtualService, gateway: string): boolean {
  return virtualServiceGateways(vs.spec.gateways, vs.metadata.namespace).includes(gateway);
}

/** Builds virtual hosts, dropping domains an earlier virtual host already serves (Envoy refuses duplicates). */
export class VirtualHostSet {
  readonly hosts: VirtualHost[] = [];
  private readonly names = new Set<string>();
  private readonly domains = new Set<string>();

  /** `report`: told of each virtual host dropped or trimmed, by name (Istio's sidecar DuplicatedDomains cases). */
  constructor(private readonly report?: PushStatusReporter) {}

  add(host: VirtualHost): void {
    if (this.names.has(host.name!)) {
      this.report?.('pilot_vservice_dup_domain', host.name!, `duplicate virtual host name: ${host.name}`);
      return;
    }
    const domains = (host.domains ?? []).filter((d) => !this.domains.has(d.toLowerCase()));
    if (domains.length < (host.domains ?? []).length) {
      const dropped = (host.domains ?? []).filter((d) => !domains.includes(d));
      this.report?.('pilot_vservice_dup_domain', host.name!, `duplicate domain from ${host.name}: ${dropped.join(', ')}`);
    }
    if (domains.length === 0) return;
    for (const d of domains) this.domains.add(d.toLowerCase());
    this.names.add(host.name!);
    this.hosts.push({ ...host, domains });
  }
}

interface PortRoutesBuilder {
  routesFor(entry: RouteEntry, port: number): Route[];
}

function routesBuilder(entries: readonly RouteEntry[], context: RouteBuildContext): PortRoutesBuilder {
  const gateway = context.gateway ?? MESH_GATEWAY;
  const gatewayNames = new Set([gateway]);
  const services = serviceLookupOf(entries.map((e) => e.service), context.services);
  const cache = new Map<string, Route[]>();
  return {
    routesFor(entry, port) {
      const vs = entry.virtualService;
      if (vs && virtualServiceAppliesTo(vs, gateway)) {
        const key = `${vs.metadata.namespace}/${vs.metadata.name}|${port}`;
        let routes = cache.get(key);
        if (!routes) {
          routes = buildHttpRoutesForVirtualService(vs, { proxy: context.proxy, mesh: context.mesh, listenPort: port, gatewayNames, services });
          cache.set(key, routes);
        }
        // No rule applies on this port/to this proxy: Istio falls back to the default route.
        if (routes.length > 0) return routes;
      }
      const cluster = clusterName('outbound', port, '', entry.service.hostname);
      return [buildDefaultOutboundRoute(cluster, `${entry.service.hostname}:${port}/*`, context.mesh)];
    },
  };
}

function serviceVirtualHost(entry: RouteEntry, port: number, builder: PortRoutesBuilder, context: RouteBuildContext): VirtualHost {
  return {
    name: `${entry.service.hostname}:${port}`,
    domains: virtualHostDomains(entry.service, port, context.proxy),
    routes: builder.routesFor(entry, port),
    include_request_attempt_count: true,
  };
}

function routeConfiguration(name: string, hosts: VirtualHost[]): RouteConfiguration {
  return {
    name,
    virtual_hosts: hosts,
    validate_clusters: { value: false },
    max_direct_response_body_size_bytes: { value: MAX_DIRECT_RESPONSE_BODY_BYTES },
  };
}

/**
 * The RouteConfiguration an outbound `0.0.0.0_<port>` listener asks for by RDS (named `"<port>"` like Istio): one
 * virtual host `<host>:<port>` per service on that port, with its VirtualService's routes or the default route, then
 * the catch-all (`allow_any` or `block_all`).
 */
export function buildOutboundRouteConfiguration(
  routeName: string,
  port: number,
  entries: ReadonlyArray<RouteEntry>,
  context: RouteBuildContext,
): RouteConfiguration {
  const builder = routesBuilder(entries, context);
  const hosts = new VirtualHostSet(context.report);
  for (const entry of entries) hosts.add(serviceVirtualHost(entry, port, builder, context));
  hosts.add(buildCatchAllVirtualHost(context.outboundTrafficPolicy ?? context.mesh.outboundTrafficPolicy));
  return routeConfiguration(routeName, hosts.hosts);
}

/**
 * The RouteConfiguration of the explicit-proxy mode (`outbound_http`): workloads send every HTTP request to one bound
 * listener (HTTP_PROXY), so one configuration holds the virtual hosts of every HTTP port of every service (by Host
 * header, with and without the port), then the catch-all.
 */
export function buildExplicitRouteConfiguration(entries: ReadonlyArray<RouteEntry>, context: RouteBuildContext): RouteConfiguration {
  const builder = routesBuilder(entries, context);
  const hosts = new VirtualHostSet(context.report);
  for (const entry of entries) {
    for (const port of entry.service.ports) {
      if (!isHttpProtocol(port.protocol)) continue;
      hosts.add(serviceVirtualHost(entry, port.number, builder, context));
    }
  }
  hosts.add(buildCatchAllVirtualHost(context.outboundTrafficPolicy ?? context.mesh.outboundTrafficPolicy));
  return routeConfiguration(EXPLICIT_OUTBOUND_ROUTE_NAME, hosts.hosts);
}

/** `inbound|<port>||`: the inbound cluster's name, which Istio also gives the inbound route configuration. */
export function inboundRouteName(port: number): string {
  return clusterName('inbound', port, '', '');
}

/**
 * The inbound RouteConfiguration for a workload port (`inbound|9080||`, the name Istio gives it): one `*` virtual host
 * routing everything to the inbound cluster `inbound|9080||` without timeout or retries; the decorator names the first
 * instance's service (`reviews.default.svc.cluster.local:9080/*`).
 */
export function buildInboundRouteConfiguration(
  routeName: string,
  port: number,
  instances: ReadonlyArray<ServiceInstance> = [],
  _context?: RouteBuildContext,
): RouteConfiguration {
  const hostname = instances[0]?.hostname ?? '*';
  const servicePort = instances[0]?.servicePort.number ?? port;
  return {
    name: routeName,
    virtual_hosts: [
      {
        name: `inbound|http|${port}`,
        domains: ['*'],
        routes: [buildDefaultInboundRoute(inboundRouteName(port), `${hostname}:${servicePort}/*`)],
      },
    ],
    validate_clusters: { value: false },
  };
}
