// Inbound listeners of a local (no iptables) sidecar: one bound 127.0.0.1:<endpoint port> listener per workload port, in place of virtualInbound.
import type { ServiceInstance } from '../../model/service.js';
import { socketAddress, tlsInspector } from '../common/network-filters.js';
import { TLS_TRANSPORT_PROTOCOL } from './inbound-mtls.js';
import { listenerName, type Listener, type ListenerBuildContext } from './listener-context.js';
import { inboundChains, instancesByPort } from './sidecar-inbound.js';

/** The loopback address local sidecars bind their inbound listeners on. */
export const LOCAL_INBOUND_ADDRESS = '127.0.0.1';

/**
 * Without iptables nothing redirects a workload's inbound traffic to 15006, and every sidecar of a local mesh shares
 * one loopback: so each endpoint port of the proxy's instances that `localPorts` names (endpoint port → application
 * port, from the node's TRELLIS_LOCAL_INBOUND_PORTS) gets its own listener bound on 127.0.0.1:<endpoint port>, with the
 * same filter chains the virtualInbound chains for that port have (the port's mTLS mode decides mTLS, plaintext or both;
 * HTTP: the connection manager with the inline `inbound|<port>||` route; else tcp_proxy to the inbound cluster), minus
 * the destination-port match. The TLS inspector runs where a chain matches on TLS (Istio's populateListenerFilters for a
 * bound listener). The inbound cluster then sends to the application port. Endpoint ports not in `localPorts` are not
 * served.
 */
export function buildLocalInboundListeners(instances: readonly ServiceInstance[], localPorts: ReadonlyMap<number, number>, context: ListenerBuildContext): Listener[] {
  const byPort = instancesByPort(instances);
  const out: Listener[] = [];
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    if (!localPorts.has(port)) continue;
    const chains = inboundChains(port, byPort.get(port)!, context, true);
    const listener: Listener = {
      name: listenerName(LOCAL_INBOUND_ADDRESS, port),
      address: socketAddress(LOCAL_INBOUND_ADDRESS, port),
      filter_chains: chains,
      traffic_direction: 'INBOUND',
    };
    if (chains.some((c) => c.filter_chain_match?.transport_protocol === TLS_TRANSPORT_PROTOCOL)) {
      listener.listener_filters = [tlsInspector()];
      // A server-first protocol sends nothing for the inspector to read: go on with plaintext after the timeout.
      listener.continue_on_listener_filters_timeout = true;
    }
    out.push(listener);
  }
  return out;
}
