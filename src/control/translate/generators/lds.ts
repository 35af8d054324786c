// LDS: sidecar listeners (outbound per port, virtualOutbound, virtualInbound for its own workload) or the explicit HTTP_PROXY listener; gateways' listeners from their Gateways.
import { LISTENER } from '../../../xds/type-urls.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import { buildExplicitOutboundListener, buildSidecarListeners, type Listener, type ListenerBuildContext } from '../listener/index.js';
import { gatewayConfig } from './gateway-inputs.js';
import { memoize, proxyInputs } from './proxy-inputs.js';

const listenerMemo = new WeakMap<PushContext, WeakMap<Proxy, readonly Listener[]>>();

/** The listeners of `proxy` (memoized per snapshot, so RDS can follow exactly the route names LDS references). */
export function proxyListeners(proxy: Proxy, push: PushContext): readonly Listener[] {
  return memoize(listenerMemo, proxy, push, () => {
    if (proxy.type === 'router') return gatewayConfig(proxy, push).listeners;
    const inputs = proxyInputs(proxy, push);
    const listeners = buildSidecarListeners(proxy, { outboundServices: inputs.outboundServices, inboundInstances: inputs.inboundInstances }, sidecarContext(proxy, push));
    if (inputs.explicitPort === undefined) return listeners;
    // Explicit mode: nothing captures traffic, so the application's HTTP_PROXY listener replaces the outbound side.
    return [buildExplicitOutboundListener(proxy, '127.0.0.1', inputs.explicitPort), ...listeners.filter(isInbound)];
  });
}

function sidecarContext(proxy: Proxy, push: PushContext): ListenerBuildContext {
  // Inbound HTTP routes stay inline in the connection manager (Istio's choice), so RDS serves outbound names only.
  return { proxy, mesh: push.mesh, outboundTrafficPolicy: proxyInputs(proxy, push).scope.outboundTrafficPolicy };
}

function isInbound(listener: Listener): boolean {
  return listener.traffic_direction === 'INBOUND' || listener.name === 'virtualInbound';
}

export const ldsGenerator: XdsGenerator<PushContext> = {
  typeUrl: LISTENER,
  generate(proxy, push): readonly GeneratedResource[] {
    return proxyListeners(proxy, push).map((l) => ({ name: l.name ?? '', resource: l }));
  },
};
