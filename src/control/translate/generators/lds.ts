// LDS: sidecar listeners (outbound per port, virtualOutbound, virtualInbound or local inbound listeners for its own workload) or the explicit HTTP_PROXY listener; gateways' listeners from their Gateways.
import { LISTENER } from '../../../xds/type-urls.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import type { SidecarScope } from '../../model/sidecar-scope.js';
import {
  buildExplicitOutboundListener, buildLocalInboundListeners, buildOutboundListeners, buildVirtualInboundListener, buildVirtualOutboundListener, type Listener, type ListenerBuildContext,
} from '../listener/index.js';
import { gatewayConfig } from './gateway-inputs.js';
import { matchesOnSource, type L4RouteSource } from '../listener/outbound-l4-routes.js';
import { autoAllocateAddresses, DNS_AUTO_ALLOCATE_METADATA, DNS_CAPTURE_METADATA } from '../../model/auto-allocated-addresses.js';
import { memoize, proxyInputs } from './proxy-inputs.js';
import { identity, labelsKey, sharedBuild } from './shared-build.js';
import { keyedHttpTelemetry } from '../telemetry/http-telemetry.js';

const listenerMemo = new WeakMap<PushContext, WeakMap<Proxy, readonly Listener[]>>();

/** The listeners of `proxy` (memoized per snapshot, so RDS can follow exactly the route names LDS references). */
export function proxyListeners(proxy: Proxy, push: PushContext): readonly Listener[] {
  return memoize(listenerMemo, proxy, push, () => {
    if (proxy.type === 'router') return gatewayConfig(proxy, push).listeners;
    const inputs = proxyInputs(proxy, push);
    // Inbound HTTP routes stay inline in the connection manager (Istio's choice), so RDS serves outbound names only.
    // The push gives inbound chains their PeerAuthentication mode and security filters.
    const context: ListenerBuildContext = { proxy, push, mesh: push.mesh, outboundTrafficPolicy: inputs.scope.outboundTrafficPolicy };
    // Local mode: bound loopback listeners per endpoint port replace virtualInbound (nothing redirects to 15006).
    const inbound = inputs.localInboundPorts
      ? buildLocalInboundListeners(inputs.inboundInstances, inputs.localInboundPorts, context)
      : [buildVirtualInboundListener(inputs.inboundInstances, context)];
    // Explicit mode: nothing captures traffic, so the application's HTTP_PROXY listener replaces the outbound side.
    if (inputs.explicitPort !== undefined) return [buildExplicitOutboundListener(proxy, '127.0.0.1', inputs.explicitPort, push.mesh, push), ...inbound];
    return [...sidecarOutboundListeners(push, inputs.scope, proxy), ...inbound];
  });
}

/**
 * virtualOutbound and the per-port outbound listeners: they read the scope's services and outbound traffic policy and
 * the mesh config, nothing of the proxy itself (it is not even given), so every proxy of one Sidecar scope shares them.
 */
function sidecarOutboundListeners(push: PushContext, scope: SidecarScope, proxy: Proxy): readonly Listener[] {
  // tcp/tls routes matching on sourceLabels or sourceNamespace are decided per proxy (as Istio does): then the proxy's
  // namespace and labels are part of what the listeners are shared by.
  const source = matchesOnSource(scope.virtualServices) ? { labels: proxy.labels, namespace: proxy.namespace } : undefined;
  const sourceKey = source ? `|${source.namespace}|${labelsKey(source.labels)}` : '';
  // Istio's GetAddressForProxy: auto-allocated VIPs only for proxies that resolve through the DNS proxy with allocation on.
  const autoAllocate = proxy.metadata[DNS_CAPTURE_METADATA] === 'true' && proxy.metadata[DNS_AUTO_ALLOCATE_METADATA] === 'true';
  // The proxy's Telemetry (workload-selected or by namespace) decides its HCMs' access logs and tracing: keyed by the
  // Telemetry resources that apply (and by the workload only where tracing is on), so proxies that agree share one build.
  const telemetry = keyedHttpTelemetry(proxy, push, 'CLIENT');
  return sharedBuild(push, `lds-outbound|${identity(scope)}${sourceKey}${autoAllocate ? '|auto-vip' : ''}|${telemetry.key}`, () => {
    // Conflicts are keyed by listener name, so reporting them once per scope (under the first proxy) counts them as Istio does.
    const context: ListenerBuildContext = { mesh: push.mesh, outboundTrafficPolicy: scope.outboundTrafficPolicy, outboundHttpTelemetry: telemetry.build(), report: push.status.reporter(proxy.id) };
    const l4Routes: L4RouteSource = { virtualServiceFor: (h) => scope.virtualServiceFor(h), destinationRule: (h) => scope.destinationRule(h), ...(source ? { source } : {}) };
    return [buildVirtualOutboundListener(context), ...buildOutboundListeners(scope.services, context, l4Routes, autoAllocate ? autoAllocateAddresses(push.services()) : undefined)];
  });
}

export const ldsGenerator: XdsGenerator<PushContext> = {
  typeUrl: LISTENER,
  generate(proxy, push): readonly GeneratedResource[] {
    return proxyListeners(proxy, push).map((l) => ({ name: l.name ?? '', resource: l }));
  },
};
