// RDS: a RouteConfiguration for every route name the proxy's listeners reference (`<port>`, `inbound|…`, `outbound_http`, `http.<port>`).
import type { envoy } from '../../../xds/generated/types.js';
import { unpackAny } from '../../../xds/codec.js';
import { ROUTE_CONFIGURATION } from '../../../xds/type-urls.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import type { Service } from '../../model/service.js';
import { HTTP_CONNECTION_MANAGER, HTTP_CONNECTION_MANAGER_MESSAGE } from '../common/envoy-filter-names.js';
import type { Listener } from '../listener/index.js';
import {
  buildExplicitRouteConfiguration, buildInboundRouteConfiguration, buildOutboundRouteConfiguration, EXPLICIT_OUTBOUND_ROUTE_NAME, type RouteBuildContext,
} from '../route/index.js';
import { gatewayConfig } from './gateway-inputs.js';
import { proxyListeners } from './lds.js';
import { isHttpProtocol } from '../common/port-protocol.js';
import { proxyInputs } from './proxy-inputs.js';

type HttpConnectionManager = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

/** Every RDS route name the listeners reference, in order of first reference. */
export function routeNamesFor(listeners: readonly Listener[]): string[] {
  const names = new Set<string>();
  for (const listener of listeners) {
    for (const chain of [...(listener.filter_chains ?? []), ...(listener.default_filter_chain ? [listener.default_filter_chain] : [])]) {
      for (const filter of chain.filters ?? []) {
        if (filter.name !== HTTP_CONNECTION_MANAGER || !filter.typed_config) continue;
        const hcm = unpackAny<HttpConnectionManager>(filter.typed_config);
        const name = hcm.rds?.route_config_name;
        if (name) names.add(name);
      }
    }
  }
  return [...names];
}

export const rdsGenerator: XdsGenerator<PushContext> = {
  typeUrl: ROUTE_CONFIGURATION,
  generate(proxy, push): readonly GeneratedResource[] {
    const routes = proxy.type === 'router' ? gatewayRoutes(proxy, push) : sidecarRoutes(proxy, push);
    return routes.map((r) => ({ name: r.name ?? '', resource: r }));
  },
};

function gatewayRoutes(proxy: Proxy, push: PushContext): readonly RouteConfiguration[] {
  const wanted = new Set(routeNamesFor(proxyListeners(proxy, push)));
  return gatewayConfig(proxy, push).routes.filter((r) => wanted.has(r.name ?? ''));
}

function sidecarRoutes(proxy: Proxy, push: PushContext): RouteConfiguration[] {
  const inputs = proxyInputs(proxy, push);
  const context: RouteBuildContext = {
    proxy,
    mesh: push.mesh,
    services: (host) => push.service(host, proxy.namespace),
    outboundTrafficPolicy: inputs.scope.outboundTrafficPolicy,
  };
  const entry = (service: Service) => {
    const virtualService = inputs.scope.virtualServiceFor(service.hostname);
    return virtualService ? { service, virtualService } : { service };
  };
  const out: RouteConfiguration[] = [];
  for (const name of routeNamesFor(proxyListeners(proxy, push))) {
    if (name === EXPLICIT_OUTBOUND_ROUTE_NAME) {
      const entries = inputs.outboundServices.filter((s) => s.ports.some((p) => isHttpProtocol(p.protocol))).map(entry);
      out.push(buildExplicitRouteConfiguration(entries, context));
    } else if (name.startsWith('inbound|')) {
      const port = Number(name.split('|')[1]);
      out.push(buildInboundRouteConfiguration(name, port, inputs.inboundInstances.filter((i) => i.servicePort.number === port), context));
    } else if (/^\d+$/.test(name)) {
      const port = Number(name);
      const entries = inputs.outboundServices.filter((s) => s.ports.some((p) => p.number === port && isHttpProtocol(p.protocol))).map(entry);
      out.push(buildOutboundRouteConfiguration(name, port, entries, context));
    }
  }
  return out;
}
