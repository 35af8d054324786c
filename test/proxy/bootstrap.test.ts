// Bootstrap start-up checks: Envoy's static and ADS examples accepted; each unsupported or invalid field refused with the file and field path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, ConfigValidationError } from '../../src/common/errors.js';
import { parseBootstrap } from '../../src/proxy/bootstrap.js';

const STATIC = `
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
    load_assignment:
      cluster_name: some_service
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: 1234 }
`;

const ADS = `
node: { id: proxy-1, cluster: test }
dynamic_resources:
  ads_config:
    api_type: DELTA_GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: { cluster_name: xds_cluster }
  cds_config: { resource_api_version: V3, ads: {} }
  lds_config: { resource_api_version: V3, ads: {} }
static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: "::1", port_value: 15010 } } }
`;

function problems(text: string): readonly string[] {
  try {
    parseBootstrap(text, 'b.yaml');
  } catch (err) {
    if (err instanceof ConfigValidationError) return err.details;
    throw err;
  }
  assert.fail('expected the bootstrap to be refused');
}

test('a static bootstrap runs without a control plane', () => {
  const b = parseBootstrap(STATIC, 'b.yaml');
  assert.deepEqual(b.admin, { address: '127.0.0.1', port: 9901 });
  assert.equal(b.listeners.length, 1);
  assert.equal(b.clusters[0]!.name, 'some_service');
  assert.equal(b.ads, undefined);
});

test('ADS: delta mode, the server is the named static cluster’s first endpoint', () => {
  const b = parseBootstrap(ADS, 'b.yaml');
  assert.deepEqual(b.ads, { mode: 'delta', clusterName: 'xds_cluster', server: '[::1]:15010', lds: true, cds: true });
  assert.deepEqual(b.node, { id: 'proxy-1', cluster: 'test' });
  const json = parseBootstrap(JSON.stringify({ node: { id: 'x' }, dynamic_resources: { adsConfig: { apiType: 'GRPC', grpcServices: [{ envoyGrpc: { clusterName: 'c' } }] }, ldsConfig: { ads: {} } }, static_resources: { clusters: [{ name: 'c', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } }] }] } }] } }), 'b.json');
  assert.deepEqual(json.ads, { mode: 'sotw', clusterName: 'c', server: '127.0.0.1:1', lds: true, cds: false });
});

test('unsupported fields and wrong references are refused with file and field path', () => {
  assert.deepEqual(problems(`${ADS}\nstats_config: { use_all_default_tags: true }\nadmin: { address: { pipe: { path: /tmp/admin } } }\n`), [
    'b.yaml: stats_config: not supported by Trellis (supported here: node, admin, static_resources, dynamic_resources)',
    'b.yaml: admin.address.pipe: expected a socket_address with address and port_value',
  ]);
  assert.deepEqual(problems(ADS.replace('cluster_name: xds_cluster }', 'cluster_name: nowhere }').replace('api_type: DELTA_GRPC', 'api_type: REST')), [
    'b.yaml: dynamic_resources.ads_config.api_type: expected GRPC or DELTA_GRPC, got REST',
    'b.yaml: dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: "nowhere" is not a cluster of static_resources.clusters (known: xds_cluster)',
  ]);
  assert.deepEqual(problems(ADS.replace('cds_config: { resource_api_version: V3, ads: {} }', 'cds_config: { path_config_source: { path: /etc/cds.yaml } }').replace('node: { id: proxy-1, cluster: test }', '')), [
    'b.yaml: dynamic_resources.cds_config.path_config_source: not supported by Trellis (supported here: ads, resource_api_version, initial_fetch_timeout)',
    'b.yaml: dynamic_resources.cds_config.ads: must be set ({}): Trellis takes LDS and CDS over ADS only',
    'b.yaml: node.id: must be set when dynamic_resources are used (the control plane identifies the proxy by it)',
  ]);
  // Resource checks are the xDS client's (the same as over ADS), under the static_resources path.
  assert.deepEqual(problems(STATIC.replace('connect_timeout: 0.25s', 'connect_timeout: 0s')), ['b.yaml: static_resources.clusters[0].connect_timeout: must be greater than 0s']);
  // Conversion problems come first, all of them.
  assert.deepEqual(problems(STATIC.replace('connect_timeout: 0.25s', 'connect_timeout: soon').replace('port_value: 10000', 'port_value: ten')), [
    'b.yaml: static_resources.listeners[0].address.socket_address.port_value: expected an integer, got "ten"',
    'b.yaml: static_resources.clusters[0].connect_timeout: expected a duration like "5s" or "0.25s", got "soon"',
  ]);
});

test("ADS retry_back_off: Envoy's xDS reconnect backoff, max defaulting to 10x the base; bad intervals and other retry fields refused", () => {
  const withPolicy = (policy: string): string => ADS.replace('- envoy_grpc: { cluster_name: xds_cluster }', `- envoy_grpc: { cluster_name: xds_cluster }\n      retry_policy: ${policy}`);
  assert.equal(parseBootstrap(ADS, 'b.yaml').ads?.backoff, undefined);
  assert.deepEqual(parseBootstrap(withPolicy('{ retry_back_off: { base_interval: 0.5s, max_interval: 4s } }'), 'b.yaml').ads?.backoff, { baseMs: 500, maxMs: 4_000 });
  assert.deepEqual(parseBootstrap(withPolicy('{ retry_back_off: { base_interval: 0.25s } }'), 'b.yaml').ads?.backoff, { baseMs: 250, maxMs: 2_500 });
  assert.deepEqual(problems(withPolicy('{ retry_back_off: { base_interval: 2s, max_interval: 1s } }')), [
    'b.yaml: dynamic_resources.ads_config.grpc_services[0].retry_policy.retry_back_off.max_interval: must be at least base_interval (2000ms), got 1000ms',
  ]);
  assert.deepEqual(problems(withPolicy('{ retry_back_off: { max_interval: 1s } }')), [
    'b.yaml: dynamic_resources.ads_config.grpc_services[0].retry_policy.retry_back_off.base_interval: must be a duration of at least 1ms, got nothing',
  ]);
  assert.deepEqual(problems(withPolicy('{ retry_back_off: { base_interval: 0s } }')), [
    'b.yaml: dynamic_resources.ads_config.grpc_services[0].retry_policy.retry_back_off.base_interval: must be a duration of at least 1ms, got 0ms',
  ]);
  assert.deepEqual(problems(withPolicy('{ num_retries: 3, retry_back_off: { base_interval: 1s } }')), [
    'b.yaml: dynamic_resources.ads_config.grpc_services[0].retry_policy.num_retries: not supported by Trellis (supported here: retry_back_off)',
  ]);
});

test('broken YAML names the line', () => {
  assert.throws(() => parseBootstrap('static_resources:\n  clusters: [\n', 'b.yaml'), (err: unknown) => err instanceof ConfigError && /^b\.yaml:\d+:\d+: /.test(err.message));
  assert.throws(() => parseBootstrap('a: 1\n---\nb: 2\n', 'b.yaml'), /expected one YAML or JSON document/);
});
