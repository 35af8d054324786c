// Proto3 JSON (Envoy's YAML form) → decoded Envoy objects: real bootstrap snippets from Envoy's docs, every
// well-known type, both field spellings, and a precise problem (with its field path) for each kind of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { fromProtoJson, toProtoJson } from '../../src/xds/proto-json.js';
import { decodeMessage, encodeMessage, unpackAny } from '../../src/xds/codec.js';
import type { envoy } from '../../src/xds/generated/types.js';

type Bootstrap = envoy.config.bootstrap.v3.Bootstrap;
const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;

// Envoy's docs, configuration/overview/examples: "A minimal fully static bootstrap config".
const STATIC_EXAMPLE = `
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }

static_resources:
  listeners:
  - name: listener_0
    address:
      socket_address: { address: 127.0.0.1, port_value: 10000 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          codec_type: AUTO
          route_config:
            name: local_route
            virtual_hosts:
            - name: local_service
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: some_service }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: some_service
    connect_timeout: 0.25s
    type: STATIC
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: some_service
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: 127.0.0.1
                port_value: 1234
`;

// Envoy's docs, "Mostly dynamic" / ADS examples: an xds_cluster over HTTP/2 and ADS for LDS and CDS.
const ADS_EXAMPLE = `
node:
  id: sidecar~10.0.0.1~app.default~default.svc.cluster.local
  cluster: app.default
  metadata:
    ISTIO_VERSION: "1.22.0"
    LABELS: { app: reviews, version: v1 }
    INTERCEPTION_MODE: REDIRECT
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc:
        cluster_name: xds_cluster
  cds_config:
    resource_api_version: V3
    ads: {}
  lds_config:
    resource_api_version: V3
    ads: {}
static_resources:
  clusters:
  - name: xds_cluster
    connect_timeout: 0.25s
    type: STATIC
    lb_policy: ROUND_ROBIN
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options:
            connection_keepalive:
              interval: 30s
              timeout: 5s
    upstream_connection_options:
      tcp_keepalive: {}
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: 127.0.0.1
                port_value: 5678
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }
`;

function convert(yamlText: string): { value: Bootstrap; problems: readonly string[] } {
  return fromProtoJson<Bootstrap>(BOOTSTRAP, parse(yamlText));
}

test("Envoy's minimal static bootstrap converts without problems, typed_config packed as Any", () => {
  const { value, problems } = convert(STATIC_EXAMPLE);
  assert.deepEqual(problems, []);
  assert.equal(value.admin?.address?.socket_address?.port_value, 9901);
  const cluster = value.static_resources?.clusters?.[0];
  assert.deepEqual(cluster?.connect_timeout, { seconds: 0, nanos: 250_000_000 });
  assert.equal(cluster?.type, 'STATIC');
  assert.equal(cluster?.lb_policy, 'ROUND_ROBIN');
  assert.equal(cluster?.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address?.port_value, 1234);
  const typed = value.static_resources?.listeners?.[0]?.filter_chains?.[0]?.filters?.[0]?.typed_config;
  assert.equal(typed?.type_url, HCM);
  const hcm = unpackAny<Hcm>(typed!, HCM);
  assert.equal(hcm.stat_prefix, 'ingress_http');
  // AUTO is the enum's zero value: it does not survive the encoding, as with any decoded xDS resource.
  assert.equal(hcm.codec_type, undefined);
  assert.equal(hcm.route_config?.virtual_hosts?.[0]?.routes?.[0]?.route?.cluster, 'some_service');
  assert.equal(hcm.http_filters?.[0]?.typed_config?.type_url, 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router');
  // The result encodes as the message, and decodes back to the same listener and cluster.
  const back = decodeMessage<Bootstrap>(BOOTSTRAP, encodeMessage(BOOTSTRAP, value));
  assert.deepEqual(back.static_resources?.listeners, value.static_resources?.listeners);
  assert.equal(back.static_resources?.clusters?.[0]?.load_assignment?.cluster_name, 'some_service');
});

test('the ADS bootstrap: node metadata as Struct, ads config source, Any-valued map, nested durations', () => {
  const { value, problems } = convert(ADS_EXAMPLE);
  assert.deepEqual(problems, []);
  assert.equal(value.node?.id, 'sidecar~10.0.0.1~app.default~default.svc.cluster.local');
  assert.deepEqual(value.node?.metadata?.fields?.ISTIO_VERSION, { string_value: '1.22.0' });
  assert.deepEqual(value.node?.metadata?.fields?.LABELS, { struct_value: { fields: { app: { string_value: 'reviews' }, version: { string_value: 'v1' } } } });
  assert.equal(value.dynamic_resources?.ads_config?.api_type, 'GRPC');
  assert.equal(value.dynamic_resources?.ads_config?.grpc_services?.[0]?.envoy_grpc?.cluster_name, 'xds_cluster');
  assert.deepEqual(value.dynamic_resources?.lds_config?.ads, {});
  const options = value.static_resources?.clusters?.[0]?.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  assert.ok(options);
  const http = unpackAny<envoy.extensions.upstreams.http.v3.HttpProtocolOptions>(options);
  assert.deepEqual(http.explicit_http_config?.http2_protocol_options?.connection_keepalive?.interval, { seconds: 30 });
});

test('lowerCamelCase field names are accepted like snake_case, and the same field twice is a problem', () => {
  const { value, problems } = fromProtoJson<envoy.config.cluster.v3.Cluster>('envoy.config.cluster.v3.Cluster', {
    name: 'c',
    connectTimeout: '1s',
    lbPolicy: 'LEAST_REQUEST',
    loadAssignment: { clusterName: 'c', endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '::1', portValue: 80 } } } }] }] },
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(value.connect_timeout, { seconds: 1, nanos: 0 });
  assert.equal(value.lb_policy, 'LEAST_REQUEST');
  assert.equal(value.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address?.port_value, 80);
  const twice = fromProtoJson('envoy.config.cluster.v3.Cluster', { name: 'c', connect_timeout: '1s', connectTimeout: '2s' });
  assert.deepEqual(twice.problems, ['connectTimeout: the same field as "connect_timeout"']);
});

test('wrappers as plain scalars, int64 as strings or numbers, enums by number, bytes as base64, Timestamp', () => {
  const { value, problems } = fromProtoJson<envoy.config.cluster.v3.Cluster>('envoy.config.cluster.v3.Cluster', {
    name: 'c',
    per_connection_buffer_limit_bytes: 32768,
    circuit_breakers: { thresholds: [{ priority: 1, max_requests: 100, max_connections: '50', retry_budget: { budget_percent: { value: 25.5 } } }] },
    outlier_detection: { consecutive_5xx: 3, interval: '10s', base_ejection_time: '30.5s', split_external_local_origin_errors: true },
    common_lb_config: { healthy_panic_threshold: { value: 40 } },
    ring_hash_lb_config: { minimum_ring_size: '1024', maximum_ring_size: 8_388_608 },
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(value.per_connection_buffer_limit_bytes, { value: 32768 });
  const threshold = value.circuit_breakers?.thresholds?.[0];
  assert.equal(threshold?.priority, 'HIGH');
  assert.deepEqual(threshold?.max_requests, { value: 100 });
  assert.deepEqual(threshold?.max_connections, { value: 50 });
  assert.deepEqual(threshold?.retry_budget?.budget_percent, { value: 25.5 });
  assert.deepEqual(value.outlier_detection?.base_ejection_time, { seconds: 30, nanos: 500_000_000 });
  assert.deepEqual(value.common_lb_config?.healthy_panic_threshold, { value: 40 });
  assert.deepEqual(value.ring_hash_lb_config?.minimum_ring_size, { value: 1024 });

  const bytes = fromProtoJson<envoy.config.core.v3.DataSource>('envoy.config.core.v3.DataSource', { inline_bytes: Buffer.from('hello').toString('base64') });
  assert.deepEqual(bytes.problems, []);
  assert.equal(Buffer.from(bytes.value.inline_bytes!).toString(), 'hello');

  const dump = fromProtoJson<envoy.admin.v3.ClustersConfigDump.StaticCluster>('envoy.admin.v3.ClustersConfigDump.StaticCluster', { last_updated: '2024-01-31T12:00:01.5+01:00' });
  assert.deepEqual(dump.problems, []);
  assert.deepEqual(dump.value.last_updated, { seconds: Date.UTC(2024, 0, 31, 11, 0, 1) / 1000, nanos: 500_000_000 });
});

test('Struct and Value take any JSON, null included', () => {
  const { value, problems } = fromProtoJson<envoy.config.core.v3.Metadata>('envoy.config.core.v3.Metadata', {
    filter_metadata: { istio: { config: '/apis/x', n: 2, ok: true, none: null, list: [1, 'a', { b: false }] } },
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(value.filter_metadata?.istio, {
    fields: {
      config: { string_value: '/apis/x' },
      n: { number_value: 2 },
      ok: { bool_value: true },
      none: { null_value: 'NULL_VALUE' },
      list: { list_value: { values: [{ number_value: 1 }, { string_value: 'a' }, { struct_value: { fields: { b: { bool_value: false } } } }] } },
    },
  });
});

test('null for a message field means unset', () => {
  const { value, problems } = fromProtoJson<envoy.config.cluster.v3.Cluster>('envoy.config.cluster.v3.Cluster', { name: 'c', connect_timeout: null });
  assert.deepEqual(problems, []);
  assert.deepEqual(value, { name: 'c' });
});

test('every bad input is reported with its field path, all at once', () => {
  const { problems } = convert(`
static_resources:
  clusters:
  - name: a
    connect_timeout: 5
    type: STATICK
    lb_polcy: ROUND_ROBIN
    per_connection_buffer_limit_bytes: -1
    load_assignment:
      cluster_name: a
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: "http" }
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: 7
          route_config: { virtual_hosts: "nope" }
      - name: x
        typed_config: { "@type": type.googleapis.com/no.such.Message }
      - name: y
        typed_config: { stat_prefix: s }
admin: []
node: { id: n, cluster: c, metadata: 3 }
dynamic_resources: { ads_config: { api_type: GRPC, grpc_services: { envoy_grpc: { cluster_name: x } } } }
`);
  assert.deepEqual(problems, [
    'static_resources.clusters[0].connect_timeout: expected a duration like "5s" or "0.25s", got 5',
    'static_resources.clusters[0].type: expected one of STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST, got "STATICK"',
    'static_resources.clusters[0].lb_polcy: unknown field of envoy.config.cluster.v3.Cluster (did you mean "lb_policy"?)',
    'static_resources.clusters[0].per_connection_buffer_limit_bytes: expected an integer from 0 to 4294967295 (uint32), got -1',
    'static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: expected an integer, got "http"',
    'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix: expected a string, got 7',
    'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts: expected a list, got "nope"',
    'static_resources.listeners[0].filter_chains[0].filters[1].typed_config.@type: unknown type "type.googleapis.com/no.such.Message" (Trellis has no codec for no.such.Message)',
    'static_resources.listeners[0].filter_chains[0].filters[2].typed_config.@type: expected the type URL of the packed message, like "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"',
    'admin: expected an object (envoy.config.bootstrap.v3.Admin), got a list',
    'node.metadata: expected an object, got 3',
    'dynamic_resources.ads_config.grpc_services: expected a list, got an object',
  ]);
});

test('oneof members set together, bad scalars and bad durations are refused', () => {
  const { problems } = fromProtoJson('envoy.config.route.v3.Route', {
    match: { prefix: '/', path: '/x', case_sensitive: 'yes' },
    route: { cluster: 'a', cluster_header: 'x-cluster', timeout: '1m', retry_policy: { num_retries: 1.5, per_try_timeout: '-' } },
  });
  assert.deepEqual(problems, [
    'match.path: only one of prefix, path, safe_regex, connect_matcher, path_separated_prefix, path_match_policy may be set (also "prefix")',
    'match.case_sensitive: expected true or false, got "yes"',
    'route.cluster_header: only one of cluster, cluster_header, weighted_clusters, cluster_specifier_plugin, inline_cluster_specifier_plugin may be set (also "cluster")',
    'route.timeout: expected a duration like "5s" or "0.25s", got "1m"',
    'route.retry_policy.num_retries: expected an integer, got 1.5',
    'route.retry_policy.per_try_timeout: expected a duration like "5s" or "0.25s", got "-"',
  ]);
});

test('a well-known type inside an Any carries its JSON under "value"', () => {
  const { value, problems } = fromProtoJson<envoy.config.core.v3.TypedExtensionConfig>('envoy.config.core.v3.TypedExtensionConfig', {
    name: 'd',
    typed_config: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '1.5s' },
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(unpackAny(value.typed_config!), { seconds: 1, nanos: 500_000_000 });
});

test("toProtoJson prints Envoy's JSON form and reads back to the same objects", () => {
  const { value: bootstrap } = convert(ADS_EXAMPLE);
  const json = toProtoJson(BOOTSTRAP, bootstrap);
  const cluster = (json.static_resources as { clusters: Record<string, unknown>[] }).clusters[0]!;
  // proto3 JSON prints 0, 3, 6 or 9 fractional digits, as Envoy does.
  assert.equal(cluster.connect_timeout, '0.250s');
  const options = (cluster.typed_extension_protocol_options as Record<string, Record<string, unknown>>)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']!;
  assert.equal(options['@type'], 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
  assert.deepEqual(options.explicit_http_config, { http2_protocol_options: { connection_keepalive: { interval: '30s', timeout: '5s' } } });
  assert.deepEqual((json.node as Record<string, unknown>).metadata, { ISTIO_VERSION: '1.22.0', LABELS: { app: 'reviews', version: 'v1' }, INTERCEPTION_MODE: 'REDIRECT' });
  assert.deepEqual(fromProtoJson(BOOTSTRAP, json), { value: bootstrap, problems: [] });
  const stamp = toProtoJson('envoy.admin.v3.ClustersConfigDump.StaticCluster', { last_updated: { seconds: 1706702401, nanos: 500_000_000 } });
  assert.deepEqual(stamp, { last_updated: '2024-01-31T12:00:01.500Z' });
});
