// Sidecar LDS builders on Bookinfo plus TCP services: Istio's listener names, addresses, filter chains and filters, and the wire round trip.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../../src/xds/codec.js';
import type { envoy, google } from '../../../src/xds/generated/types.js';
import { buildExplicitOutboundListener, buildSidecarListeners, type Listener } from '../../../src/control/translate/listener/index.js';
import { MESH, assertListenerOnTheWire, details, http9080, instance, productpage, proxy, ratings, reviews, service } from './bookinfo-translate-fixture.js';

type HttpConnectionManager = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type TcpProxy = envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
type FilterChain = envoy.config.listener.v3.FilterChain;

const mysql = service('mysql', [{ name: 'tcp', number: 3306, protocol: 'TCP' }], { addresses: ['10.96.0.50'] });
const mongo = service('mongo', [{ name: 'mongo', number: 27017, protocol: 'MONGO' }]);
const db = service('db.example.com', [{ name: 'pg', number: 5432, protocol: 'TCP' }], { addresses: ['192.168.0.0/16', '10.10.0.5'], location: 'MESH_EXTERNAL' });
const tcpMetrics = service('metrics', [{ name: 'tcp', number: 9080, protocol: 'TCP' }], { addresses: ['172.16.0.0/12'] });

const input = {
  outboundServices: [productpage, details, reviews, ratings, mysql, mongo, db, tcpMetrics],
  inboundInstances: [instance(productpage, http9080), instance(productpage, { name: 'tcp-admin', number: 7000, protocol: 'TCP' })],
};
const listeners = buildSidecarListeners(proxy(), input, { mesh: MESH });

function byName(name: string): Listener {
  const found = listeners.find((l) => l.name === name);
  assert.ok(found, `listener ${name} in ${listeners.map((l) => l.name).join(', ')}`);
  return found;
}

function hcmOf(chain: FilterChain | undefined): HttpConnectionManager {
  const filter = chain?.filters?.[0];
  assert.equal(filter?.name, 'envoy.filters.network.http_connection_manager');
  return unpackAny<HttpConnectionManager>(filter!.typed_config!, 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
}

/** The chain's terminal tcp_proxy (Istio's telemetry and security network filters come before it). */
function tcpProxyOf(chain: FilterChain | undefined): TcpProxy {
  const filter = chain?.filters?.at(-1);
  assert.equal(filter?.name, 'envoy.filters.network.tcp_proxy');
  return unpackAny<TcpProxy>(filter!.typed_config!, 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy');
}

describe('sidecar listeners', () => {
  test('Istio\'s set: virtualOutbound, outbound per port (wildcard then VIP), virtualInbound', () => {
    assert.deepEqual(listeners.map((l) => l.name), ['virtualOutbound', '0.0.0.0_5432', '0.0.0.0_9080', '0.0.0.0_27017', '10.96.0.50_3306', 'virtualInbound']);
  });

  test('virtualOutbound: 0.0.0.0:15001, use_original_dst, catch-all to PassthroughCluster, 15001 itself black-holed', () => {
    const l = byName('virtualOutbound');
    assert.deepEqual(l.address, { socket_address: { address: '0.0.0.0', port_value: 15001 } });
    assert.deepEqual(l.use_original_dst, { value: true });
    assert.equal(l.bind_to_port, undefined);
    assert.equal(l.traffic_direction, 'OUTBOUND');
    assert.deepEqual(l.filter_chains?.map((c) => c.name), ['virtualOutbound-blackhole', 'virtualOutbound-catchall-tcp']);
    assert.deepEqual(l.filter_chains?.[0]?.filter_chain_match, { destination_port: { value: 15001 } });
    assert.deepEqual(tcpProxyOf(l.filter_chains?.[0]), { stat_prefix: 'BlackHoleCluster', cluster: 'BlackHoleCluster' });
    assert.deepEqual(tcpProxyOf(l.filter_chains?.[1]), { stat_prefix: 'PassthroughCluster', cluster: 'PassthroughCluster' });
    const closed = buildSidecarListeners(proxy(), input, { mesh: MESH, outboundTrafficPolicy: 'REGISTRY_ONLY' })[0]!;
    assert.deepEqual(tcpProxyOf(closed.filter_chains?.[1]), { stat_prefix: 'BlackHoleCluster', cluster: 'BlackHoleCluster' });
  });

  test('0.0.0.0_9080: unbound, HTTP connection manager asking RDS "9080" over ADS with fault, cors, router', () => {
    const l = byName('0.0.0.0_9080');
    assert.deepEqual(l.address, { socket_address: { address: '0.0.0.0', port_value: 9080 } });
    assert.deepEqual(l.bind_to_port, { value: false });
    assert.equal(l.traffic_direction, 'OUTBOUND');
    const http = l.filter_chains?.find((c) => c.filter_chain_match === undefined);
    const hcm = hcmOf(http);
    assert.equal(hcm.stat_prefix, 'outbound_0.0.0.0_9080');
    // initial_fetch_timeout 0s: present but all-zero on the wire.
    assert.deepEqual(hcm.rds, { config_source: { ads: {}, initial_fetch_timeout: {}, resource_api_version: 'V3' }, route_config_name: '9080' });
    assert.deepEqual(hcm.http_filters?.map((f) => [f.name, f.typed_config?.type_url]), [
      ['istio.metadata_exchange', 'type.googleapis.com/google.protobuf.Struct'],
      ['envoy.filters.http.fault', 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault'],
      ['envoy.filters.http.cors', 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors'],
      ['istio.stats', 'type.googleapis.com/google.protobuf.Struct'],
      ['envoy.filters.http.router', 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router'],
    ]);
    // BoolValue false: the wrapper is present, its default value is not on the wire.
    assert.deepEqual(hcm.use_remote_address, {});
    assert.equal(hcm.tracing, undefined);
    assert.equal(hcm.route_config, undefined);
    // A TCP service with addresses shares the port through its own prefix_ranges chain.
    const tcp = l.filter_chains?.find((c) => c.filter_chain_match !== undefined);
    assert.deepEqual(tcp?.filter_chain_match, { prefix_ranges: [{ address_prefix: '172.16.0.0', prefix_len: { value: 12 } }] });
    assert.equal(tcpProxyOf(tcp).cluster, 'outbound|9080||metrics.default.svc.cluster.local');
    assert.deepEqual(tcpProxyOf(l.default_filter_chain), { stat_prefix: 'PassthroughCluster', cluster: 'PassthroughCluster' });
  });

  test('TCP: one VIP → <vip>_<port>; CIDRs → prefix_ranges chain in 0.0.0.0_<port>; no address → catch-all chain', () => {
    const vip = byName('10.96.0.50_3306');
    assert.deepEqual(vip.address, { socket_address: { address: '10.96.0.50', port_value: 3306 } });
    assert.deepEqual(vip.bind_to_port, { value: false });
    assert.equal(vip.filter_chains?.length, 1);
    assert.deepEqual(tcpProxyOf(vip.filter_chains?.[0]), { stat_prefix: 'outbound|3306||mysql.default.svc.cluster.local', cluster: 'outbound|3306||mysql.default.svc.cluster.local' });

    const pg = byName('0.0.0.0_5432');
    assert.deepEqual(pg.filter_chains?.[0]?.filter_chain_match, {
      prefix_ranges: [
        { address_prefix: '192.168.0.0', prefix_len: { value: 16 } },
        { address_prefix: '10.10.0.5', prefix_len: { value: 32 } },
      ],
    });
    assert.equal(tcpProxyOf(pg.filter_chains?.[0]).cluster, 'outbound|5432||db.example.com');

    const mongoListener = byName('0.0.0.0_27017');
    assert.equal(mongoListener.filter_chains?.length, 1);
    assert.equal(mongoListener.filter_chains?.[0]?.filter_chain_match, undefined);
    assert.equal(tcpProxyOf(mongoListener.filter_chains?.[0]).cluster, 'outbound|27017||mongo.default.svc.cluster.local');
    // Istio's TCP metrics on outbound TCP chains: istio.stats (source reporter) before tcp_proxy.
    const filters = vip.filter_chains![0]!.filters!;
    assert.deepEqual(filters.map((f) => f.name), ['istio.stats', 'envoy.filters.network.tcp_proxy']);
    assert.equal(unpackAny<google.protobuf.Struct>(filters[0]!.typed_config!, 'type.googleapis.com/google.protobuf.Struct').fields?.['direction']?.string_value, 'OUTBOUND');
  });

  test('virtualInbound: 0.0.0.0:15006, original_dst/tls_inspector/http_inspector, chains per workload port and passthrough by mTLS mode', () => {
    const l = byName('virtualInbound');
    assert.deepEqual(l.address, { socket_address: { address: '0.0.0.0', port_value: 15006 } });
    assert.equal(l.traffic_direction, 'INBOUND');
    assert.equal(l.use_original_dst, undefined);
    assert.deepEqual(l.listener_filters?.map((f) => f.name), ['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector']);
    // Istio's populateListenerFilters: TLS on by default (the passthrough chains match TLS) but off on the blackhole
    // port; HTTP sniffing off on every declared port (and the blackhole), on for the passthrough chains.
    assert.deepEqual(l.listener_filters?.[1]?.filter_disabled, { destination_port_range: { start: 15006, end: 15007 } });
    assert.deepEqual(l.listener_filters?.[2]?.filter_disabled, {
      or_match: { rules: [7000, 9080, 15006].map((p) => ({ destination_port_range: { start: p, end: p + 1 } })) },
    });
    // No PeerAuthentication: every port is PERMISSIVE (mTLS and plaintext; TCP also lets other TLS through).
    assert.deepEqual(l.filter_chains?.map((c) => c.name), [
      'virtualInbound-blackhole',
      'inbound|7000||', 'inbound|7000||-plaintext', 'inbound|7000||-tls-passthrough',
      'inbound|9080||', 'inbound|9080||-plaintext',
      'virtualInbound-catchall-http', 'virtualInbound-catchall-http-plaintext',
      'virtualInbound', 'virtualInbound-plaintext', 'virtualInbound-tls-passthrough',
    ]);

    const http = l.filter_chains![4]!;
    assert.deepEqual(http.filter_chain_match, {
      destination_port: { value: 9080 },
      transport_protocol: 'tls',
      application_protocols: ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'],
    });
    assert.equal(http.transport_socket?.name, 'envoy.transport_sockets.tls');
    const hcm = hcmOf(http);
    assert.equal(hcm.stat_prefix, 'inbound_0.0.0.0_9080');
    assert.equal(hcm.forward_client_cert_details, 'APPEND_FORWARD');
    assert.equal(hcm.rds, undefined);
    assert.equal(hcm.route_config?.name, 'inbound|9080||');
    assert.equal(hcm.route_config?.virtual_hosts?.[0]?.routes?.[0]?.route?.cluster, 'inbound|9080||');
    assert.deepEqual(hcm.route_config?.virtual_hosts?.[0]?.domains, ['*']);
    const plainHttp = l.filter_chains![5]!;
    assert.deepEqual(plainHttp.filter_chain_match, { destination_port: { value: 9080 }, transport_protocol: 'raw_buffer' });
    assert.equal(plainHttp.transport_socket, undefined);
    assert.equal(hcmOf(plainHttp).route_config?.name, 'inbound|9080||');

    const tcp = l.filter_chains![1]!;
    assert.equal(tcp.filter_chain_match?.transport_protocol, 'tls');
    assert.deepEqual(tcpProxyOf(tcp), { stat_prefix: 'inbound|7000||', cluster: 'inbound|7000||' });
    const tlsThrough = l.filter_chains![3]!;
    assert.deepEqual(tlsThrough.filter_chain_match, { destination_port: { value: 7000 }, transport_protocol: 'tls' });
    assert.equal(tlsThrough.transport_socket, undefined, 'TLS without an Istio ALPN is not terminated');
    assert.deepEqual(tcpProxyOf(tlsThrough), { stat_prefix: 'inbound|7000||', cluster: 'inbound|7000||' });

    // Passthrough, split like Istio's: HTTP by ALPN (istio-http/* over mTLS, http/1.1 or h2c in plaintext), the rest TCP.
    const httpPassthrough = l.filter_chains![6]!;
    assert.deepEqual(httpPassthrough.filter_chain_match, {
      prefix_ranges: [{ address_prefix: '0.0.0.0', prefix_len: { value: 0 } }],
      transport_protocol: 'tls',
      application_protocols: ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'],
    });
    const passthroughHcm = hcmOf(httpPassthrough);
    assert.equal(passthroughHcm.stat_prefix, 'InboundPassthroughClusterIpv4');
    assert.equal(passthroughHcm.route_config?.virtual_hosts?.[0]?.routes?.[0]?.route?.cluster, 'InboundPassthroughClusterIpv4');
    assert.deepEqual(l.filter_chains![7]!.filter_chain_match?.application_protocols, ['http/1.1', 'h2c']);
    const passthrough = l.filter_chains![8]!;
    assert.deepEqual(passthrough.filter_chain_match?.prefix_ranges, [{ address_prefix: '0.0.0.0', prefix_len: { value: 0 } }]);
    assert.deepEqual(passthrough.filter_chain_match?.application_protocols, ['istio-peer-exchange', 'istio']);
    assert.equal(tcpProxyOf(passthrough).cluster, 'InboundPassthroughClusterIpv4');
    assert.equal(tcpProxyOf(l.filter_chains![0]).cluster, 'BlackHoleCluster');
  });

  test('virtualInbound with RDS routes asks for inbound|<port>||', () => {
    const rds = buildSidecarListeners(proxy(), input, { mesh: MESH, inboundRoutes: 'rds' }).at(-1)!;
    const hcm = hcmOf(rds.filter_chains!.find((c) => c.name === 'inbound|9080||'));
    assert.equal(hcm.rds?.route_config_name, 'inbound|9080||');
    assert.equal(hcm.route_config, undefined);
  });

  test('a proxy with no services and no instances still gets virtualOutbound and virtualInbound', () => {
    const empty = buildSidecarListeners(proxy(), { outboundServices: [], inboundInstances: [] }, { mesh: MESH });
    assert.deepEqual(empty.map((l) => l.name), ['virtualOutbound', 'virtualInbound']);
    for (const l of empty) assertListenerOnTheWire(l);
  });

  test('explicit mode: a bound HTTP listener asking RDS for outbound_http', () => {
    const l = buildExplicitOutboundListener(proxy(), '127.0.0.1', 15080);
    assert.equal(l.name, 'outbound_http');
    assert.deepEqual(l.address, { socket_address: { address: '127.0.0.1', port_value: 15080 } });
    assert.equal(l.bind_to_port, undefined);
    const hcm = hcmOf(l.filter_chains?.[0]);
    assert.equal(hcm.rds?.route_config_name, 'outbound_http');
    assert.deepEqual(hcm.http_filters?.map((f) => f.name), ['istio.metadata_exchange', 'envoy.filters.http.fault', 'envoy.filters.http.cors', 'istio.stats', 'envoy.filters.http.router']);
    assertListenerOnTheWire(l);
  });

  test('every listener encodes, its Anys unpack, and the xDS client\'s LDS validation accepts it', () => {
    for (const l of listeners) {
      const decoded = assertListenerOnTheWire(l);
      assert.equal(decoded.name, l.name);
      assert.equal(decoded.filter_chains?.length, l.filter_chains?.length);
    }
  });
});
