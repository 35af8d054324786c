// Resources and clients for xDS client tests: small valid Envoy messages packed as Any, and a client wired to a fake control plane.
import { packAny, type Any } from '../../../src/xds/codec.js';
import { XdsClient, type XdsClientOptions } from '../../../src/xds/client/index.js';
import type { FakeControlPlane } from '../../support/fake-control-plane.js';

export const NODE = {
  id: 'sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local',
  cluster: 'reviews.default',
  metadata: { fields: { NAMESPACE: { string_value: 'default' } } },
};

export function cluster(name: string, extra: Record<string, unknown> = {}): Any {
  return packAny('envoy.config.cluster.v3.Cluster', { name, type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_config: { eds_config: { ads: {} } }, ...extra });
}

export function listener(name: string, port: number): Any {
  return packAny('envoy.config.listener.v3.Listener', {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy' }] }],
  });
}

export function loadAssignment(clusterName: string, ...ports: number[]): Any {
  return packAny('envoy.config.endpoint.v3.ClusterLoadAssignment', {
    cluster_name: clusterName,
    endpoints: [{ lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '10.0.0.2', port_value: port } } } })) }],
  });
}

/** A client of the fake with tiny backoff so reconnects are quick; the test closes it. */
export function clientOf(fake: FakeControlPlane, options: Partial<XdsClientOptions> = {}): XdsClient {
  return new XdsClient({ server: fake.address, node: NODE, backoff: { baseMs: 1, maxMs: 4 }, ...options });
}
