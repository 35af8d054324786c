// Codec tests: every Envoy type Trellis relies on round-trips through google.protobuf.Any by type URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage, packAny, unpackAny, toJson } from '../../src/xds/codec.js';
import { CodecError } from '../../src/common/errors.js';
import type { envoy } from '../../src/xds/generated/types.js';
import * as urls from '../../src/xds/type-urls.js';

const REQUIRED_MESSAGES = [
  'envoy.service.discovery.v3.DiscoveryRequest',
  'envoy.service.discovery.v3.DiscoveryResponse',
  'envoy.service.discovery.v3.DeltaDiscoveryRequest',
  'envoy.service.discovery.v3.DeltaDiscoveryResponse',
  'envoy.config.listener.v3.Listener',
  'envoy.config.route.v3.RouteConfiguration',
  'envoy.config.cluster.v3.Cluster',
  'envoy.config.endpoint.v3.ClusterLoadAssignment',
  'envoy.extensions.transport_sockets.tls.v3.Secret',
  'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  'envoy.extensions.filters.http.router.v3.Router',
  'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  'envoy.extensions.filters.http.rbac.v3.RBAC',
  'envoy.extensions.filters.network.rbac.v3.RBAC',
  'envoy.extensions.filters.http.fault.v3.HTTPFault',
  'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  'envoy.config.core.v3.HealthCheck',
  'envoy.config.bootstrap.v3.Bootstrap',
];

test('every required Envoy message packs into Any and unpacks by its type URL', () => {
  for (const name of REQUIRED_MESSAGES) {
    const any = packAny(name, {});
    assert.equal(any.type_url, `type.googleapis.com/${name}`);
    assert.deepEqual(unpackAny(any), {}, name);
  }
});

test('a Listener with a typed HttpConnectionManager round-trips field by field', () => {
  const hcm: envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager = {
    stat_prefix: 'outbound_0.0.0.0_9080',
    rds: { route_config_name: '9080', config_source: { ads: {}, resource_api_version: 'V3' } },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) }],
  };
  const listener: envoy.config.listener.v3.Listener = {
    name: '0.0.0.0_9080',
    address: { socket_address: { address: '0.0.0.0', port_value: 9080 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: packAny('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', hcm) }] }],
  };
  const bytes = encodeMessage('envoy.config.listener.v3.Listener', listener);
  const back = decodeMessage<envoy.config.listener.v3.Listener>('envoy.config.listener.v3.Listener', bytes);
  assert.equal(back.name, '0.0.0.0_9080');
  assert.equal(back.address?.socket_address?.port_value, 9080);
  const typed = back.filter_chains?.[0]?.filters?.[0]?.typed_config;
  assert.ok(typed);
  const hcmBack = unpackAny<typeof hcm>(typed, 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  assert.equal(hcmBack.rds?.route_config_name, '9080');
  assert.equal(hcmBack.rds?.config_source?.resource_api_version, 'V3');
  assert.equal(hcmBack.http_filters?.[0]?.name, 'envoy.filters.http.router');
});

test('enums decode to their names and accept numbers on input', () => {
  const bytes = encodeMessage('envoy.config.cluster.v3.Cluster', { name: 'c', lb_policy: 1, type: 'EDS' } as envoy.config.cluster.v3.Cluster);
  const back = decodeMessage<envoy.config.cluster.v3.Cluster>('envoy.config.cluster.v3.Cluster', bytes);
  assert.equal(back.lb_policy, 'LEAST_REQUEST');
  assert.equal(back.type, 'EDS');
});

test('google.protobuf.Struct keeps the .proto field names (string_value, not stringValue)', () => {
  const cluster: envoy.config.cluster.v3.Cluster = { name: 'c', metadata: { filter_metadata: { istio: { fields: { name: { string_value: 'reviews' } } } } } };
  const back = decodeMessage<envoy.config.cluster.v3.Cluster>('envoy.config.cluster.v3.Cluster', encodeMessage('envoy.config.cluster.v3.Cluster', cluster));
  assert.equal(back.metadata?.filter_metadata?.['istio']?.fields?.['name']?.string_value, 'reviews');
});

test('malformed bytes throw a CodecError naming the message', () => {
  assert.throws(
    () => decodeMessage('envoy.config.cluster.v3.Cluster', Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01])),
    (err: unknown) => err instanceof CodecError && err.code === 'TRELLIS_CODEC_MALFORMED' && /envoy\.config\.cluster\.v3\.Cluster/.test(err.message),
  );
});

test('an unknown Any type URL is refused with its URL in the message', () => {
  assert.throws(
    () => unpackAny({ type_url: 'type.googleapis.com/no.such.Message', value: new Uint8Array() }),
    (err: unknown) => err instanceof CodecError && err.code === 'TRELLIS_CODEC_UNKNOWN_TYPE' && err.message.includes('no.such.Message'),
  );
  assert.throws(
    () => unpackAny(packAny('envoy.config.cluster.v3.Cluster', {}), urls.LISTENER),
    (err: unknown) => err instanceof CodecError && err.message.includes(urls.LISTENER),
  );
});

test('toJson expands Any with @type for config dumps', () => {
  const json = toJson('envoy.config.listener.v3.Listener', {
    name: 'l',
    filter_chains: [{ filters: [{ name: 'tcp', typed_config: packAny('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', { stat_prefix: 's', cluster: 'c' }) }] }],
  });
  const filter = (json['filter_chains'] as Array<{ filters: Array<{ typed_config: Record<string, unknown> }> }>)[0]!.filters[0]!;
  assert.equal(filter.typed_config['@type'], 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy');
  assert.equal(filter.typed_config['cluster'], 'c');
});
