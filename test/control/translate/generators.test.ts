// Generators over the Bookinfo fixture: the resource names per type for a sidecar, explicit mode and the ingress gateway, and that RDS/EDS follow LDS/CDS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { FileConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../src/control/registry/index.js';
import { buildPushContext, type PushContext } from '../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import { proxyFromNode, type Proxy } from '../../../src/control/model/proxy.js';
import type { GeneratedResource } from '../../../src/control/model/generator.js';
import type { PushRequest } from '../../../src/control/model/push-request.js';
import { createGenerators, routeNamesFor, EXPLICIT_PROXY_PORT_METADATA, LOCAL_INBOUND_PORTS_METADATA } from '../../../src/control/translate/generators/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, NAME_TABLE, ROUTE_CONFIGURATION, SECRET } from '../../../src/xds/type-urls.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type Cluster = envoy.config.cluster.v3.Cluster;
type Listener = envoy.config.listener.v3.Listener;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;

const BOOKINFO = fileURLToPath(new URL('../../../../test/fixtures/bookinfo/', import.meta.url));
const REQUEST: PushRequest = { full: true, configsUpdated: [], reasons: ['test'], start: 0 };
const generators = createGenerators();

async function bookinfo(): Promise<{ push: PushContext; close: () => Promise<void> }> {
  const store = new FileConfigStore({ dir: BOOKINFO, watch: false });
  await store.start();
  assert.deepEqual(store.problems(), []);
  const registry = new ServiceEntryRegistry(store);
  return { push: buildPushContext({ store, registry, mesh: DEFAULT_MESH_CONFIG }), close: async () => { registry.close(); await store.close(); } };
}

function node(type: 'sidecar' | 'router', workload: string, labels: Record<string, string>, extra: Record<string, string> = {}): Proxy {
  const fields: Record<string, { string_value?: string; struct_value?: { fields: Record<string, { string_value: string }> } }> = {
    NAMESPACE: { string_value: 'default' },
    WORKLOAD_NAME: { string_value: workload },
    LABELS: { struct_value: { fields: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, { string_value: v }])) } },
  };
  for (const [k, v] of Object.entries(extra)) fields[k] = { string_value: v };
  return proxyFromNode({ id: `${type}~127.0.0.1~${workload}-abc.default~default.svc.cluster.local`, metadata: { fields } });
}

function generate(proxy: Proxy, push: PushContext): Map<string, readonly GeneratedResource[]> {
  return new Map([...generators].map(([url, g]) => [url, g.generate(proxy, push, REQUEST)]));
}

const names = (resources: readonly GeneratedResource[] | undefined) => (resources ?? []).map((r) => r.name);
const as = <T>(resources: readonly GeneratedResource[] | undefined) => (resources ?? []).map((r) => r.resource as T);

function edsClusterNames(clusters: readonly Cluster[]): string[] {
  return clusters.filter((c) => c.type === 'EDS').map((c) => c.eds_cluster_config?.service_name || c.name!).sort();
}

test('the registry serves one generator per type URL', () => {
  assert.deepEqual([...generators.keys()].sort(), [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET, NAME_TABLE].sort());
  for (const [url, g] of generators) assert.equal(g.typeUrl, url);
});

test('Bookinfo reviews-v1 sidecar: Istio names per type, and EDS/RDS exactly what CDS/LDS reference', async () => {
  const { push, close } = await bookinfo();
  try {
    const proxy = node('sidecar', 'reviews-v1', { app: 'reviews', version: 'v1' });
    const out = generate(proxy, push);
    const clusters = names(out.get(CLUSTER));
    for (const name of [
      'outbound|9080||reviews.default.svc.cluster.local', 'outbound|9080|v1|reviews.default.svc.cluster.local',
      'outbound|9080|v2|reviews.default.svc.cluster.local', 'outbound|9080|v3|reviews.default.svc.cluster.local',
      'outbound|9080||ratings.default.svc.cluster.local', 'outbound|9080|v1|ratings.default.svc.cluster.local',
      'outbound|9080||productpage.default.svc.cluster.local', 'outbound|9080|v1|details.default.svc.cluster.local',
      'BlackHoleCluster', 'PassthroughCluster', 'InboundPassthroughClusterIpv4',
    ]) assert.ok(clusters.includes(name), `CDS has ${name}: ${clusters.join(' ')}`);
    const inbound = clusters.filter((c) => c.startsWith('inbound|'));
    assert.equal(inbound.length, 1, `one inbound cluster, for reviews-v1 only: ${inbound.join(' ')}`);
    assert.equal(new Set(clusters).size, clusters.length, 'no duplicate cluster names');

    // EDS: exactly the EDS clusters of CDS, subsets filtered by the DestinationRule's labels.
    assert.deepEqual(names(out.get(CLUSTER_LOAD_ASSIGNMENT)).sort(), edsClusterNames(as<Cluster>(out.get(CLUSTER))));
    const cla = (name: string) => as<ClusterLoadAssignment>(out.get(CLUSTER_LOAD_ASSIGNMENT)).find((c) => c.cluster_name === name)!;
    const ports = (c: ClusterLoadAssignment) => (c.endpoints ?? []).flatMap((l) => l.lb_endpoints ?? []).map((e) => e.endpoint?.address?.socket_address?.port_value).sort();
    assert.deepEqual(ports(cla('outbound|9080|v1|reviews.default.svc.cluster.local')), [19082]);
    assert.deepEqual(ports(cla('outbound|9080|v3|reviews.default.svc.cluster.local')), [19084]);
    assert.deepEqual(ports(cla('outbound|9080||reviews.default.svc.cluster.local')), [19082, 19083, 19084]);

    // LDS: the outbound port listener, the virtual listeners.
    const listeners = names(out.get(LISTENER));
    for (const name of ['0.0.0.0_9080', 'virtualOutbound', 'virtualInbound']) assert.ok(listeners.includes(name), `LDS has ${name}: ${listeners.join(' ')}`);

    // RDS: exactly the names LDS references; route 9080 has the reviews virtual host with the jason header match first.
    const referenced = routeNamesFor(as<Listener>(out.get(LISTENER))).sort();
    assert.deepEqual(names(out.get(ROUTE_CONFIGURATION)).sort(), referenced);
    assert.ok(referenced.includes('9080'), `LDS references route 9080: ${referenced.join(' ')}`);
    const route9080 = as<RouteConfiguration>(out.get(ROUTE_CONFIGURATION)).find((r) => r.name === '9080')!;
    const reviews = route9080.virtual_hosts?.find((v) => v.domains?.includes('reviews.default.svc.cluster.local'));
    assert.ok(reviews, `a reviews virtual host: ${route9080.virtual_hosts?.map((v) => v.name).join(' ')}`);
    const first = reviews.routes?.[0];
    assert.deepEqual(first?.match?.headers?.map((h) => [h.name, h.string_match?.exact]), [['end-user', 'jason']]);
    assert.equal(first?.route?.cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
    const split = reviews.routes?.[1]?.route?.weighted_clusters?.clusters?.map((c) => `${c.name}=${c.weight?.value}`);
    assert.deepEqual(split, ['outbound|9080|v1|reviews.default.svc.cluster.local=50', 'outbound|9080|v3|reviews.default.svc.cluster.local=50']);
    // Every cluster a route points at exists in CDS.
    const routed = as<RouteConfiguration>(out.get(ROUTE_CONFIGURATION)).flatMap((r) => r.virtual_hosts ?? []).flatMap((v) => v.routes ?? [])
      .flatMap((r) => [r.route?.cluster, ...(r.route?.weighted_clusters?.clusters ?? []).map((c) => c.name)]).filter((n): n is string => !!n);
    for (const c of routed) assert.ok(clusters.includes(c), `route target ${c} is a CDS cluster`);
  } finally {
    await close();
  }
});

test('Bookinfo productpage sidecar: its own inbound only, the same outbound clusters', async () => {
  const { push, close } = await bookinfo();
  try {
    const proxy = node('sidecar', 'productpage-v1', { app: 'productpage', version: 'v1' });
    assert.deepEqual(push.instancesForProxy(proxy).map((i) => `${i.hostname}:${i.port}`), ['productpage.default.svc.cluster.local:19080']);
    const out = generate(proxy, push);
    const clusters = names(out.get(CLUSTER));
    assert.ok(clusters.includes('outbound|9080|v1|reviews.default.svc.cluster.local'));
    assert.equal(clusters.filter((c) => c.startsWith('inbound|')).length, 1);
    assert.deepEqual(names(out.get(CLUSTER_LOAD_ASSIGNMENT)).sort(), edsClusterNames(as<Cluster>(out.get(CLUSTER))));
    assert.deepEqual(names(out.get(ROUTE_CONFIGURATION)).sort(), routeNamesFor(as<Listener>(out.get(LISTENER))).sort());
    assert.deepEqual(names(out.get(SECRET)), [], 'no secrets until the CA issue');
  } finally {
    await close();
  }
});

test(`explicit mode (${EXPLICIT_PROXY_PORT_METADATA}): one listener on 127.0.0.1:<port> routing by outbound_http, no capture listeners`, async () => {
  const { push, close } = await bookinfo();
  try {
    const proxy = node('sidecar', 'productpage-v1', { app: 'productpage', version: 'v1' }, { [EXPLICIT_PROXY_PORT_METADATA]: '15080' });
    const out = generate(proxy, push);
    const listeners = as<Listener>(out.get(LISTENER));
    const explicit = listeners.find((l) => l.address?.socket_address?.port_value === 15080);
    assert.equal(explicit?.address?.socket_address?.address, '127.0.0.1');
    assert.ok(!names(out.get(LISTENER)).includes('virtualOutbound'), 'nothing to capture without iptables');
    assert.ok(routeNamesFor(listeners).includes('outbound_http'));
    const route = as<RouteConfiguration>(out.get(ROUTE_CONFIGURATION)).find((r) => r.name === 'outbound_http');
    assert.ok(route?.virtual_hosts?.some((v) => v.domains?.includes('reviews.default.svc.cluster.local:9080')), 'virtual hosts name host:port');
    assert.deepEqual(names(out.get(ROUTE_CONFIGURATION)).sort(), routeNamesFor(listeners).sort());
  } finally {
    await close();
  }
});

test(`local sidecar (${LOCAL_INBOUND_PORTS_METADATA}): a bound 127.0.0.1:<endpoint port> inbound listener instead of virtualInbound, the inbound cluster to the app port, passthrough by :authority`, async () => {
  const { push, close } = await bookinfo();
  try {
    // productpage-v1's WorkloadEntry names port 19080: the sidecar listens there and forwards to the app on 15110.
    const proxy = node('sidecar', 'productpage-v1', { app: 'productpage', version: 'v1' }, { [EXPLICIT_PROXY_PORT_METADATA]: '15111', [LOCAL_INBOUND_PORTS_METADATA]: '19080=15110' });
    const out = generate(proxy, push);
    const listeners = as<Listener>(out.get(LISTENER));
    assert.deepEqual(listeners.map((l) => l.name), ['outbound_http', '127.0.0.1_19080'], 'no virtualInbound on 0.0.0.0:15006 (every local sidecar would want it)');
    const inbound = listeners[1]!;
    assert.deepEqual(inbound.address?.socket_address, { address: '127.0.0.1', port_value: 19080 });
    assert.equal(inbound.traffic_direction, 'INBOUND');
    // No PeerAuthentication: PERMISSIVE, an mTLS chain and a plaintext one, as a virtualInbound port has.
    assert.deepEqual(inbound.filter_chains?.map((c) => c.filter_chain_match?.transport_protocol), ['tls', 'raw_buffer']);
    assert.ok(inbound.filter_chains!.every((c) => c.filter_chain_match?.destination_port === undefined), 'a bound listener needs no destination-port match');
    assert.deepEqual(inbound.listener_filters?.map((f) => f.name), ['envoy.filters.listener.tls_inspector'], 'no original_dst: nothing was redirected');
    const clusters = as<Cluster>(out.get(CLUSTER));
    const inboundCluster = clusters.find((c) => c.name === 'inbound|19080||');
    assert.equal(inboundCluster?.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address?.port_value, 15110);
    const passthrough = clusters.find((c) => c.name === 'PassthroughCluster');
    assert.deepEqual(passthrough?.original_dst_lb_config, { use_http_header: true, http_header_name: ':authority' }, 'explicit mode: the destination is the request authority, not the proxy itself');
    assert.deepEqual(names(out.get(ROUTE_CONFIGURATION)).sort(), routeNamesFor(listeners).sort());

    // A port the metadata does not list is not served; malformed metadata is ignored (virtualInbound as before).
    const unlisted = as<Listener>(generate(node('sidecar', 'productpage-v1', { app: 'productpage', version: 'v1' }, { [LOCAL_INBOUND_PORTS_METADATA]: '19999=15110' }), push).get(LISTENER));
    assert.ok(!unlisted.some((l) => l.name === '127.0.0.1_19080' || l.name === 'virtualInbound'));
    const malformed = generate(node('sidecar', 'productpage-v1', { app: 'productpage', version: 'v1' }, { [LOCAL_INBOUND_PORTS_METADATA]: 'x=y' }), push);
    assert.ok(names(malformed.get(LISTENER)).includes('virtualInbound'));
    const captured = as<Cluster>(malformed.get(CLUSTER));
    assert.equal(captured.find((c) => c.name === 'inbound|19080||')?.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address?.port_value, 19080);
    assert.equal(captured.find((c) => c.name === 'PassthroughCluster')?.original_dst_lb_config, undefined);
  } finally {
    await close();
  }
});

test('Bookinfo ingress gateway: the Gateway port as a listener with route http.8080 to productpage; sidecar-only clusters absent', async () => {
  const { push, close } = await bookinfo();
  try {
    const proxy = node('router', 'istio-ingressgateway', { istio: 'ingressgateway' });
    const out = generate(proxy, push);
    const referenced = routeNamesFor(as<Listener>(out.get(LISTENER)));
    assert.deepEqual(referenced, ['http.8080']);
    assert.deepEqual(names(out.get(ROUTE_CONFIGURATION)), ['http.8080']);
    const targets = as<RouteConfiguration>(out.get(ROUTE_CONFIGURATION))[0]!.virtual_hosts!.flatMap((v) => v.routes ?? []).map((r) => r.route?.cluster);
    assert.ok(targets.includes('outbound|9080||productpage.default.svc.cluster.local'), `routes: ${targets.join(' ')}`);
    const clusters = names(out.get(CLUSTER));
    assert.ok(clusters.includes('outbound|9080||productpage.default.svc.cluster.local'));
    assert.ok(!clusters.some((c) => c.startsWith('inbound|')) && !clusters.includes('InboundPassthroughClusterIpv4'));
    assert.deepEqual(names(out.get(CLUSTER_LOAD_ASSIGNMENT)).sort(), edsClusterNames(as<Cluster>(out.get(CLUSTER))));
  } finally {
    await close();
  }
});

test('a sidecar that is not a gateway gets no gateway listener, and a gateway proxy nothing when no Gateway selects it', async () => {
  const { push, close } = await bookinfo();
  try {
    const sidecar = generate(node('sidecar', 'details-v1', { app: 'details', version: 'v1' }), push);
    assert.ok(!routeNamesFor(as<Listener>(sidecar.get(LISTENER))).some((n) => n.startsWith('http.')));
    const lonely = generate(node('router', 'egress', { istio: 'egressgateway' }), push);
    assert.deepEqual(names(lonely.get(LISTENER)), []);
    assert.deepEqual(names(lonely.get(ROUTE_CONFIGURATION)), []);
  } finally {
    await close();
  }
});
