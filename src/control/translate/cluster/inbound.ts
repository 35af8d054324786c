// CDS for a sidecar's inbound side: one `inbound|<port>||` cluster per workload port, to the application on localhost.
import { clusterName } from '../../model/cluster-name.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Proxy } from '../../model/proxy.js';
import type { Service, ServiceInstance } from '../../model/service.js';
import { buildAddress } from '../common/address.js';
import { applyTrafficPolicy, buildCluster } from './build-cluster.js';
import { finishCluster, type Cluster } from './cluster-wrapper.js';
import type { ClusterBuildContext, ClusterMeshSettings } from './context.js';

/** Where inbound clusters send traffic: the application, on the loopback (Istio's inboundTrafficPolicy LOCALHOST). */
export const INBOUND_LOCALHOST = '127.0.0.1';

/**
 * Istio's buildInboundClustersFromServiceInstances with the localhost bind: the proxy's instances grouped by workload
 * port (the first instance of a port decides protocol, as in Istio), each a STATIC cluster to 127.0.0.1:<port> with
 * the default connection pool and `istio.services` naming every service on that service port. Sorted by port.
 * Inbound DestinationRule/Sidecar connection pools are not applied yet.
 */
export function buildInboundClusters(
  proxy: Proxy,
  instances: readonly ServiceInstance[],
  mesh: MeshConfig & ClusterMeshSettings,
  /** Local sidecars: endpoint port → the application's port, when they differ (the sidecar listens on the endpoint port). */
  appPorts?: ReadonlyMap<number, number>,
): Cluster[] {
  const context: ClusterBuildContext = { proxy, mesh };
  const byPort = new Map<number, ServiceInstance[]>();
  for (const instance of instances) {
    if (instance.port <= 0) continue;
    const list = byPort.get(instance.port) ?? [];
    list.push(instance);
    byPort.set(instance.port, list);
  }
  const out: Cluster[] = [];
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const group = byPort.get(port)!;
    const primary = group[0]!;
    const name = clusterName('inbound', port, '', '');
    const endpoints = [{ lb_endpoints: [{ endpoint: { address: buildAddress(INBOUND_LOCALHOST, appPorts?.get(port) ?? port) } }] }];
    const services = group.filter((i) => i.servicePort.number === primary.servicePort.number).map(serviceOf);
    const wrapper = buildCluster(name, 'STATIC', endpoints, primary.servicePort, services, context);
    if (!wrapper) continue;
    applyTrafficPolicy(wrapper, { policy: undefined, port: primary.servicePort, direction: 'inbound', context });
    out.push(finishCluster(wrapper));
  }
  return out;
}

/** The Service an instance belongs to, as much as the telemetry metadata needs (host, namespace, registry). */
function serviceOf(instance: ServiceInstance): Service {
  return {
    hostname: instance.hostname,
    namespace: instance.namespace,
    ports: [instance.servicePort],
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    addresses: [],
    exportTo: ['*'],
    source: instance.source,
  };
}
