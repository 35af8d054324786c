// `trellis proxy` under Trellis's own ADS server (SnapshotCache): LDS/RDS/CDS/EDS over ADS, routes changed live under a
// steady loop of requests with zero failures, and an invalid route (bad regex) NACKed with the route compiler's message
// (visible in the server's stream status) while the previous route keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { packAny } from '../../src/xds/codec.js';
import type { envoy } from '../../src/xds/generated/types.js';
import { AdsServer, SnapshotCache, type TypeInput } from '../../src/xds/server/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import { eventually, httpGet, listenerAddress, startProxyProcess, startUpstream, statValue, writeTemp } from './proxy-support.js';

const NODE_ID = 'sidecar~127.0.0.1~e2e.default~default.svc.cluster.local';

function cluster(name: string): { name: string; resource: envoy.config.cluster.v3.Cluster } {
  return { name, resource: { name, type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name } } };
}

function assignment(name: string, port: number): { name: string; resource: envoy.config.endpoint.v3.ClusterLoadAssignment } {
  return { name, resource: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } };
}

function listener(name: string, routeName: string): { name: string; resource: envoy.config.listener.v3.Listener } {
  const hcm = packAny('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
    stat_prefix: 'outbound_http',
    rds: { route_config_name: routeName, config_source: { ads: {}, resource_api_version: 'V3' } },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) }],
  });
  return {
    name,
    resource: { name, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] },
  };
}

function route(name: string, clusterName: string, regex?: string): { name: string; resource: envoy.config.route.v3.RouteConfiguration } {
  const match = regex === undefined ? { prefix: '/' } : { safe_regex: { regex } };
  return { name, resource: { name, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match, route: { cluster: clusterName } }] }] } };
}

function adsBootstrap(xdsPort: number, apiType: 'GRPC' | 'DELTA_GRPC'): string {
  return `
node: { id: "${NODE_ID}", cluster: e2e.default }
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
dynamic_resources:
  ads_config:
    api_type: ${apiType}
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: { cluster_name: xds-grpc }
  cds_config: { resource_api_version: V3, ads: {} }
  lds_config: { resource_api_version: V3, ads: {} }
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${xdsPort} } } }
`;
}

for (const apiType of ['GRPC', 'DELTA_GRPC'] as const) {
  test(`ADS ${apiType}: live route change under load with no failed request; a bad regex is NACKed and the old route serves`, async (t) => {
    const blue = await startUpstream('blue');
    const green = await startUpstream('green');
    t.after(() => blue.close());
    t.after(() => green.close());

    const cache = new SnapshotCache();
    const snapshot = (routeTo: string): Record<string, TypeInput> => ({
      [CLUSTER]: [cluster('blue'), cluster('green')],
      [CLUSTER_LOAD_ASSIGNMENT]: [assignment('blue', blue.port), assignment('green', green.port)],
      [LISTENER]: [listener('outbound_0', 'http.80')],
      [ROUTE_CONFIGURATION]: [route('http.80', routeTo)],
    });
    cache.setSnapshot(NODE_ID, snapshot('blue'));
    const ads = new AdsServer({ source: cache, logger: { warn: () => undefined } });
    const xds = await ads.listen('127.0.0.1:0');
    t.after(() => ads.close());

    const proxy = await startProxyProcess(writeTemp('bootstrap.yaml', adsBootstrap(xds.port, apiType)));
    t.after(() => proxy.kill());
    await eventually('/ready is LIVE', async () => (await httpGet(proxy.admin, '/ready')).status === 200);
    const address = await listenerAddress(proxy.admin, 'outbound_0');
    assert.equal((await httpGet(address, '/first')).body, 'blue /first');

    // A steady loop of requests over keep-alive connections while the route changes.
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    t.after(() => agent.destroy());
    const seen = { blue: 0, green: 0, failures: [] as string[] };
    let running = true;
    const workers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; running; i++) {
        try {
          const reply = await httpGet(address, `/w${w}/${i}`, { agent });
          if (reply.status !== 200) seen.failures.push(`${reply.status} ${reply.body}`);
          else if (reply.body.startsWith('blue ')) seen.blue++;
          else if (reply.body.startsWith('green ')) seen.green++;
          else seen.failures.push(`unexpected body ${reply.body}`);
        } catch (err) {
          seen.failures.push(String(err));
        }
      }
    });
    try {
      await eventually('traffic to blue', () => seen.blue >= 20);
      cache.setResources(NODE_ID, ROUTE_CONFIGURATION, [route('http.80', 'green')]);
      const greenBefore = seen.green;
      await eventually('traffic moved to green', () => seen.green >= greenBefore + 50);
      const blueAfterSwitch = seen.blue;

      // An invalid regex: the proxy refuses that route (NACK with the compiler's reason), and green keeps serving.
      const nacksBefore = ads.streams()[0]?.types[ROUTE_CONFIGURATION]?.nackCount ?? 0;
      cache.setResources(NODE_ID, ROUTE_CONFIGURATION, [route('http.80', 'blue', '/(unclosed')]);
      await eventually('the server recorded the RDS NACK', () => (ads.streams()[0]?.types[ROUTE_CONFIGURATION]?.nackCount ?? 0) > nacksBefore);
      const nack = ads.streams()[0]!.types[ROUTE_CONFIGURATION]!.lastNack!;
      assert.match(nack.message, /RDS resource "http\.80": .*safe_regex/);
      const greenAtNack = seen.green;
      await eventually('more traffic after the NACK', () => seen.green >= greenAtNack + 30);
      assert.equal(seen.blue, blueAfterSwitch, 'the refused route must not apply');

      const dump = JSON.parse((await httpGet(proxy.admin, '/config_dump')).body) as { configs: Record<string, unknown>[] };
      const routes = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump') as {
        dynamic_route_configs: { version_info: string; route_config: { name: string; virtual_hosts: { routes: { route: { cluster: string } }[] }[] }; error_state?: { details: string } }[];
      };
      const dynamic = routes.dynamic_route_configs.find((r) => r.route_config.name === 'http.80')!;
      assert.equal(dynamic.route_config.virtual_hosts[0]!.routes[0]!.route.cluster, 'green');
      assert.match(dynamic.error_state?.details ?? '', /safe_regex/);
      const clusters = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump') as { dynamic_active_clusters: { cluster: { name: string }; version_info: string }[] };
      assert.deepEqual(clusters.dynamic_active_clusters.map((c) => c.cluster.name).sort(), ['blue', 'green']);
    } finally {
      running = false;
      await Promise.all(workers);
    }
    assert.deepEqual(seen.failures, [], `failed requests during the change: ${seen.failures.slice(0, 5).join('; ')}`);
    assert.ok(seen.green > 0 && seen.blue > 0);

    const stats = (await httpGet(proxy.admin, '/stats')).body;
    assert.equal(statValue(stats, 'cluster.green.upstream_rq_2xx'), green.requests);
    assert.ok((statValue(stats, 'rds.update_rejected') ?? 0) >= 1);
    assert.equal(statValue(stats, 'control_plane.connected_state'), 1);

    // The control plane goes away: the proxy keeps serving its last accepted config.
    await ads.close();
    assert.equal((await httpGet(address, '/after-cp')).body, 'green /after-cp');
  });
}
