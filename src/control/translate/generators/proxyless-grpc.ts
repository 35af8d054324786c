// Config for proxyless gRPC clients (node metadata GENERATOR=grpc, Istio's grpcgen): api_listeners named `host:port`,
// one RouteConfiguration per listener, and clusters gRPC's xDS client accepts (ROUND_ROBIN/RING_HASH, no sidecar-only fields).
import { packAny } from '../../../xds/codec.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import type { Service, ServicePort } from '../../model/service.js';
import { buildOutboundClusters, type Cluster } from '../cluster/index.js';
import type { Listener } from '../listener/index.js';
import { adsConfigSource, type HttpConnectionManager } from '../common/network-filters.js';
import { buildOutboundRouteConfiguration, type RouteBuildContext } from '../route/index.js';
import { HTTP_CONNECTION_MANAGER_MESSAGE } from '../common/envoy-filter-names.js';
import { proxyInputs } from './proxy-inputs.js';

/** Istio's node metadata key and value that select this generator. */
export const GENERATOR_METADATA = 'GENERATOR';
export const GRPC_GENERATOR = 'grpc';

const ROUTER_FILTER = 'envoy.filters.http.router';
const ROUTER_MESSAGE = 'envoy.extensions.filters.http.router.v3.Router';

export function isProxylessGrpc(proxy: Proxy): boolean {
  return proxy.metadata[GENERATOR_METADATA] === GRPC_GENERATOR;
}

/** `reviews.default.svc.cluster.local:9080`: the xds:/// target a gRPC client dials, used as listener and route name. */
function listenerName(service: Service, port: ServicePort): string {
  return `${service.hostname}:${port.number}`;
}

function servicePorts(proxy: Proxy, push: PushContext): Array<{ service: Service; port: ServicePort }> {
  return proxyInputs(proxy, push).outboundServices.flatMap((service) => service.ports.map((port) => ({ service, port })));
}

export function grpcListeners(proxy: Proxy, push: PushContext): GeneratedResource[] {
  return servicePorts(proxy, push).map(({ service, port }) => {
    const name = listenerName(service, port);
    const hcm: HttpConnectionManager = {
      stat_prefix: name,
      rds: { route_config_name: name, config_source: adsConfigSource() },
      http_filters: [{ name: ROUTER_FILTER, typed_config: packAny(ROUTER_MESSAGE, {}) }],
    };
    const listener: Listener = { name, api_listener: { api_listener: packAny(HTTP_CONNECTION_MANAGER_MESSAGE, hcm) } };
    return { name, resource: listener };
  });
}

export function grpcRoutes(proxy: Proxy, push: PushContext): GeneratedResource[] {
  const inputs = proxyInputs(proxy, push);
  const context: RouteBuildContext = { proxy, mesh: push.mesh, services: (host) => push.service(host, proxy.namespace) };
  return servicePorts(proxy, push).map(({ service, port }) => {
    const name = listenerName(service, port);
    const virtualService = inputs.scope.virtualServiceFor(service.hostname);
    const built = buildOutboundRouteConfiguration(name, port.number, [virtualService ? { service, virtualService } : { service }], context);
    // Only the service's own virtual host: gRPC matches the dialled authority (`host:port`) against its domains.
    const own = (built.virtual_hosts ?? []).filter((vh) => (vh.domains ?? []).some((d) => d === service.hostname || d === name));
    const virtualHosts = own.map((vh) => ({ ...vh, domains: [...new Set([name, ...(vh.domains ?? [])])] }));
    return { name, resource: { ...built, name, virtual_hosts: virtualHosts } };
  });
}

/**
 * gRPC's xDS client accepts only ROUND_ROBIN and RING_HASH (Istio's grpcgen does the same conversion) and has no
 * use for Envoy's transport socket matches (auto mTLS); everything else of the sidecar cluster carries over.
 */
export function grpcClusters(proxy: Proxy, push: PushContext): GeneratedResource[] {
  const inputs = proxyInputs(proxy, push);
  const out: GeneratedResource[] = [];
  for (const service of inputs.outboundServices) {
    for (const cluster of buildOutboundClusters(service, push.destinationRule(proxy, service), inputs.clusterContext)) {
      if (cluster.type !== 'EDS') continue;
      const grpcCluster: Cluster = { ...cluster, lb_policy: cluster.lb_policy === 'RING_HASH' ? 'RING_HASH' : 'ROUND_ROBIN' };
      delete grpcCluster.transport_socket_matches;
      delete grpcCluster.common_lb_config;
      out.push({ name: cluster.name ?? '', resource: grpcCluster });
    }
  }
  return out;
}

/** Serves proxyless gRPC nodes from `grpc` and every other node from `generator` (same type URL). */
export function withProxylessGrpc(generator: XdsGenerator<PushContext>, grpc: (proxy: Proxy, push: PushContext) => GeneratedResource[]): XdsGenerator<PushContext> {
  return {
    typeUrl: generator.typeUrl,
    generate: (proxy, push, request) => (isProxylessGrpc(proxy) ? grpc(proxy, push) : generator.generate(proxy, push, request)),
  };
}
