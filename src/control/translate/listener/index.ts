// LDS builders for sidecars: virtualOutbound, per-port outbound listeners, virtualInbound, and the explicit (HTTP_PROXY) listener.
import type { Proxy } from '../../model/proxy.js';
import type { Service, ServiceInstance } from '../../model/service.js';
import type { Listener, ListenerBuildContext } from './listener-context.js';
import { buildVirtualInboundListener } from './sidecar-inbound.js';
import { buildOutboundListeners, buildVirtualOutboundListener } from './sidecar-outbound.js';

export * from './listener-context.js';
export { buildVirtualOutboundListener, buildOutboundListeners, cidrRange } from './sidecar-outbound.js';
export { buildVirtualInboundListener } from './sidecar-inbound.js';
export { buildExplicitOutboundListener } from './explicit-outbound.js';
export { buildLocalInboundListeners, LOCAL_INBOUND_ADDRESS } from './local-inbound.js';

export interface SidecarListenerInput {
  /** Services visible to the proxy (its Sidecar scope), each port giving an outbound listener. */
  outboundServices: readonly Service[];
  /** The proxy's own workload's instances, each port giving a virtualInbound filter chain. */
  inboundInstances: readonly ServiceInstance[];
}

/** A sidecar's listeners in Istio's shape: virtualOutbound, the outbound per-port listeners, virtualInbound. */
export function buildSidecarListeners(proxy: Proxy, input: SidecarListenerInput, context: ListenerBuildContext): Listener[] {
  const ctx: ListenerBuildContext = { ...context, proxy: context.proxy ?? proxy };
  return [buildVirtualOutboundListener(ctx), ...buildOutboundListeners(input.outboundServices, ctx), buildVirtualInboundListener(input.inboundInstances, ctx)];
}
