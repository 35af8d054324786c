// Inbound listeners of a local (no iptables) sidecar: one bound 127.0.0.1:<endpoint port> listener per workload port, in place of virtualInbound.
import type { ServiceInstance } from '../../model/service.js';
import { socketAddress } from '../common/network-filters.js';
import { listenerName, type Listener, type ListenerBuildContext } from './listener-context.js';
import { inboundChain, instancesByPort } from './sidecar-inbound.js';

/** The loopback address local sidecars bind their inbound listeners on. */
export const LOCAL_INBOUND_ADDRESS = '127.0.0.1';

/**
 * Without iptables nothing redirects a workload's inbound traffic to 15006, and every sidecar of a local mesh shares
 * one loopback: so each endpoint port of the proxy's instances that `localPorts` names (endpoint port → application
 * port, from the node's TRELLIS_LOCAL_INBOUND_PORTS) gets its own listener bound on 127.0.0.1:<endpoint port>, with the
 * same filter chain a virtualInbound chain for that port has (HTTP: the connection manager with the inline
 * `inbound|<port>||` route; else tcp_proxy to the inbound cluster). The inbound cluster then sends to the application
 * port. Endpoint ports not in `localPorts` are not served.
 */
export function buildLocalInboundListeners(instances: readonly ServiceInstance[], localPorts: ReadonlyMap<number, number>, context: ListenerBuildContext): Listener[] {
  const byPort = instancesByPort(instances);
  const out: Listener[] = [];
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    if (!localPorts.has(port)) continue;
    const { filter_chain_match: _match, ...chain } = inboundChain(port, byPort.get(port)!, context);
    out.push({
      name: listenerName(LOCAL_INBOUND_ADDRESS, port),
      address: socketAddress(LOCAL_INBOUND_ADDRESS, port),
      filter_chains: [chain],
      traffic_direction: 'INBOUND',
    });
  }
  return out;
}
