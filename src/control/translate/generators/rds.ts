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
import { identity, labelsKey, sharedBuild } from './shared-build.js';
import type { SidecarScope } from '../../model/sidecar-scope.js';
import { selectorMatches } from '../../model/visibility.js';

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
    // Keyed by virtual host name: reporting once per shared build (under the first proxy) counts them as Istio does.
    report: push.status.reporter(proxy.id),
  };
  const entry = (service: Service) => {
    const virtualService = inputs.scope.virtualServiceFor(service.hostname);
    return virtualService ? { service, virtualService } : { service };
  };
  // Istio's route cache key: the scope (its services, VirtualServices, outbound policy), the namespace and DNS domain
  // (short-name domains, sourceNamespace, service lookups), and — where Istio does not cache at all — which of the
  // scope's sourceLabels selectors this proxy's labels satisfy, so proxies that match the same ones still share.
  const shared = `${identity(inputs.scope)}|${proxy.namespace}|${proxy.domainSuffix}|${sourceLabelsMatched(push, inputs.scope, proxy)}`;
  const out: RouteConfiguration[] = [];
  for (const name of routeNamesFor(proxyListeners(proxy, push))) {
    if (name === EXPLICIT_OUTBOUND_ROUTE_NAME) {
      out.push(sharedBuild(push, `rds|${name}|${shared}`, () => {
        const entries = inputs.outboundServices.filter((s) => s.ports.some((p) => isHttpProtocol(p.protocol))).map(entry);
        return buildExplicitRouteConfiguration(entries, context);
      }));
    } else if (name.startsWith('inbound|')) {
      const port = Number(name.split('|')[1]);
      out.push(buildInboundRouteConfiguration(name, port, inputs.inboundInstances.filter((i) => i.servicePort.number === port), context));
    } else if (/^\d+$/.test(name)) {
      const port = Number(name);
      out.push(sharedBuild(push, `rds|${name}|${shared}`, () => {
        const entries = inputs.outboundServices.filter((s) => s.ports.some((p) => p.number === port && isHttpProtocol(p.protocol))).map(entry);
        return buildOutboundRouteConfiguration(name, port, entries, context);
      }));
    }
  }
  return out;
}

/** One character per distinct `sourceLabels` selector of the scope's VirtualServices: 1 where the proxy's labels match it. */
function sourceLabelsMatched(push: PushContext, scope: SidecarScope, proxy: Proxy): string {
  const selectors = sharedBuild(push, `rds-source-labels|${identity(scope)}`, () => {
    const distinct = new Map<string, Readonly<Record<string, string>>>();
    for (const vs of scope.virtualServices) {
      for (const http of vs.spec.http ?? []) {
        for (const match of http.match ?? []) {
          if (match.sourceLabels && Object.keys(match.sourceLabels).length > 0) distinct.set(labelsKey(match.sourceLabels), match.sourceLabels);
        }
      }
    }
    return [...distinct.values()];
  });
  return selectors.map((labels) => (selectorMatches(labels, proxy.labels) ? '1' : '0')).join('');
}
