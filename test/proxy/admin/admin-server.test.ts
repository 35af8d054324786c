// The admin API over a fake proxy view: Envoy's page formats (/clusters text and JSON, /stats and Prometheus names, /config_dump shape), /ready states, POST-only actions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startAdminServer, type AdminView, type ServerState } from '../../../src/proxy/admin/admin-server.js';
import { ProxyLog } from '../../../src/proxy/admin/log-levels.js';
import { StatsBuilder, formatPrometheus, listenerStatScope } from '../../../src/proxy/admin/stats.js';
import type { ClusterView } from '../../../src/proxy/admin/clusters-page.js';
import type { ConfigDumpInput } from '../../../src/proxy/admin/config-dump.js';
import type { ClusterStats, UpstreamCluster, UpstreamHost } from '../../../src/proxy/upstream/types.js';
import type { ListenerStatus } from '../../../src/proxy/listeners/types.js';

function clusterStats(overrides: Partial<ClusterStats> = {}): ClusterStats {
  const zero = Object.fromEntries(
    [
      'upstream_rq_total', 'upstream_rq_active', 'upstream_rq_pending_active', 'upstream_rq_pending_overflow', 'upstream_rq_timeout', 'upstream_rq_retry',
      'upstream_rq_retry_success', 'upstream_rq_retry_overflow', 'upstream_rq_retry_limit_exceeded', 'upstream_rq_rx_reset', 'upstream_rq_tx_reset',
      'upstream_cx_total', 'upstream_cx_active', 'upstream_cx_connect_fail', 'upstream_cx_connect_timeout', 'upstream_cx_overflow', 'upstream_cx_destroy',
      'upstream_rq_1xx', 'upstream_rq_2xx', 'upstream_rq_3xx', 'upstream_rq_4xx', 'upstream_rq_5xx', 'membership_healthy', 'membership_total',
    ].map((k) => [k, 0]),
  ) as unknown as ClusterStats;
  return { ...zero, ...overrides };
}

const host: UpstreamHost = {
  addressText: '127.0.0.1:1234',
  address: '127.0.0.1',
  port: 1234,
  weight: 1,
  priority: 0,
  locality: { region: 'eu', zone: 'eu-1', subZone: '' },
  health: 'HEALTHY',
  healthFlags: { failedActiveHc: false, degradedActiveHc: false, pendingActiveHc: false, activeHcTimeout: false, failedOutlierCheck: false, pendingDynamicRemoval: false },
  successRate: -1,
  localOriginSuccessRate: -1,
  metadata: {},
  stats: { cxActive: 1, cxTotal: 2, cxConnectFail: 0, rqActive: 0, rqTotal: 7, rqError: 1, rqSuccess: 6, rqTimeout: 0 },
};

const cluster: UpstreamCluster = {
  name: 'some_service',
  stats: clusterStats({ upstream_rq_total: 7, upstream_rq_2xx: 6, upstream_rq_5xx: 1, upstream_cx_active: 1, membership_total: 1, membership_healthy: 1 }),
  circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, retriesActive: 0 },
  chooseHost: () => host,
  request: () => {
    throw new Error('not used');
  },
};

const listener: ListenerStatus = {
  name: 'listener_0',
  boundAddress: '127.0.0.1:10000',
  state: 'active',
  stats: { downstream_cx_total: 3, downstream_cx_active: 1 },
  httpStats: { ingress_http: { downstream_rq_total: 7, downstream_rq_2xx: 6, downstream_rq_5xx: 1 } },
};

function dumpInput(): ConfigDumpInput {
  const at = new Date(Date.UTC(2024, 0, 31, 12, 0, 0));
  return {
    bootstrap: { node: { id: 'n', cluster: 'c' } },
    bootstrapLoaded: at,
    clusters: [
      { name: 'some_service', resource: { name: 'some_service', type: 'STATIC', connect_timeout: { nanos: 250_000_000 } }, lastUpdated: at },
      { name: 'eds_one', resource: { name: 'eds_one', type: 'EDS' }, versionInfo: 'v7', lastUpdated: at },
    ],
    clustersVersion: 'v7',
    clusterErrors: [],
    listeners: [{ name: 'listener_0', resource: { name: 'listener_0', address: { socket_address: { address: '127.0.0.1', port_value: 10000 } } }, versionInfo: 'l1', lastUpdated: at }],
    listenersVersion: 'l1',
    listenerErrors: [{ name: 'bad', details: 'filter_chains: at least one filter chain, or a default_filter_chain, is required', versionInfo: 'l2', time: at }],
    routes: [{ name: 'r', resource: { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'] }] }, versionInfo: 'r1', lastUpdated: at }],
    routeErrors: [{ name: 'r', details: 'bad regex', versionInfo: 'r2', time: at }],
    endpoints: [],
    secrets: [{ name: 's', resource: { name: 's', tls_certificate: { private_key: { inline_string: 'SECRET KEY' }, certificate_chain: { inline_string: 'CERT' } } }, lastUpdated: at }],
  };
}

function fakeView(state: { value: ServerState; quit: number; drained: number; drains?: unknown[] }): AdminView {
  return {
    state: () => state.value,
    serverInfo: () => ({ version: 'trellis/test', state: state.value }),
    configDump: dumpInput,
    clusters: (): ClusterView[] => [{ name: 'some_service', addedViaApi: false, cluster, hosts: [host] }],
    listeners: () => [listener],
    stats: () => {
      const stats = new StatsBuilder();
      stats.cluster('some_service', cluster.stats);
      stats.listener(listenerStatScope(listener.boundAddress!), listener.stats);
      stats.http('ingress_http', listener.httpStats.ingress_http!);
      stats.plain('server.live', state.value === 'LIVE' ? 1 : 0, 'gauge');
      return stats.build();
    },
    drainListeners: (options) => {
      state.drained++;
      (state.drains ??= []).push(options);
    },
    quit: () => void state.quit++,
    log: new ProxyLog('info', () => undefined),
  };
}

test('admin pages in Envoy formats', async (t) => {
  const state: { value: ServerState; quit: number; drained: number; drains?: unknown[] } = { value: 'PRE_INITIALIZING', quit: 0, drained: 0 };
  const admin = await startAdminServer(fakeView(state), '127.0.0.1', 0);
  t.after(() => admin.close());
  const base = `http://127.0.0.1:${admin.port}`;
  const get = async (path: string, init?: RequestInit): Promise<{ status: number; text: string }> => {
    const res = await fetch(base + path, init);
    return { status: res.status, text: await res.text() };
  };

  assert.deepEqual(await get('/ready'), { status: 503, text: 'PRE_INITIALIZING\n' });
  state.value = 'LIVE';
  assert.deepEqual(await get('/ready'), { status: 200, text: 'LIVE\n' });

  const clusters = (await get('/clusters')).text.split('\n');
  for (const line of [
    'some_service::observability_name::some_service',
    'some_service::default_priority::max_connections::1024',
    'some_service::added_via_api::false',
    'some_service::127.0.0.1:1234::cx_active::1',
    'some_service::127.0.0.1:1234::rq_total::7',
    'some_service::127.0.0.1:1234::health_flags::healthy',
    'some_service::127.0.0.1:1234::zone::eu-1',
  ]) assert.ok(clusters.includes(line), line);
  const clustersJson = JSON.parse((await get('/clusters?format=json')).text) as { cluster_statuses: { name: string; host_statuses: { address: unknown; stats: { name: string; value?: string }[] }[] }[] };
  assert.equal(clustersJson.cluster_statuses[0]!.name, 'some_service');
  assert.deepEqual(clustersJson.cluster_statuses[0]!.host_statuses[0]!.address, { socket_address: { address: '127.0.0.1', port_value: 1234 } });
  assert.deepEqual(clustersJson.cluster_statuses[0]!.host_statuses[0]!.stats.find((s) => s.name === 'rq_total'), { name: 'rq_total', value: '7', type: 'COUNTER' });

  assert.equal((await get('/listeners')).text, 'listener_0::127.0.0.1:10000\n');

  const stats = (await get('/stats')).text.split('\n');
  for (const line of ['cluster.some_service.upstream_rq_total: 7', 'cluster.some_service.upstream_rq_2xx: 6', 'http.ingress_http.downstream_rq_2xx: 6', 'listener.127.0.0.1_10000.downstream_cx_total: 3', 'server.live: 1']) {
    assert.ok(stats.includes(line), line);
  }
  assert.equal((await get('/stats?filter=^http\\.')).text, 'http.ingress_http.downstream_rq_2xx: 6\nhttp.ingress_http.downstream_rq_5xx: 1\nhttp.ingress_http.downstream_rq_total: 7\n');
  assert.equal((await get('/stats?filter=(')).status, 400);

  const prom = (await get('/stats/prometheus')).text;
  assert.match(prom, /^# TYPE envoy_cluster_upstream_rq_total counter\nenvoy_cluster_upstream_rq_total\{envoy_cluster_name="some_service"\} 7$/m);
  assert.match(prom, /^envoy_cluster_upstream_rq_xx\{envoy_response_code_class="2",envoy_cluster_name="some_service"\} 6$/m);
  assert.match(prom, /^# TYPE envoy_cluster_upstream_cx_active gauge$/m);
  assert.match(prom, /^envoy_http_downstream_rq_xx\{envoy_response_code_class="5",envoy_http_conn_manager_prefix="ingress_http"\} 1$/m);
  assert.match(prom, /^envoy_listener_downstream_cx_total\{envoy_listener_address="127.0.0.1_10000"\} 3$/m);
  assert.match(prom, /^envoy_server_live 1$/m);

  const dump = JSON.parse((await get('/config_dump')).text) as { configs: Record<string, unknown>[] };
  assert.deepEqual(
    dump.configs.map((c) => c['@type']),
    ['BootstrapConfigDump', 'ClustersConfigDump', 'ListenersConfigDump', 'RoutesConfigDump', 'SecretsConfigDump'].map((n) => `type.googleapis.com/envoy.admin.v3.${n}`),
  );
  const clustersDump = dump.configs[1] as { version_info: string; static_clusters: { cluster: Record<string, unknown>; last_updated: string }[]; dynamic_active_clusters: { version_info: string; cluster: { name: string } }[] };
  assert.equal(clustersDump.version_info, 'v7');
  assert.deepEqual(clustersDump.static_clusters[0], {
    cluster: { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: 'some_service', type: 'STATIC', connect_timeout: '0.250s' },
    last_updated: '2024-01-31T12:00:00Z',
  });
  assert.equal(clustersDump.dynamic_active_clusters[0]!.version_info, 'v7');
  assert.equal(clustersDump.dynamic_active_clusters[0]!.cluster.name, 'eds_one');
  const listenersDump = dump.configs[2] as { dynamic_listeners: { name: string; active_state?: { version_info: string }; error_state?: { details: string } }[] };
  assert.equal(listenersDump.dynamic_listeners[0]!.active_state?.version_info, 'l1');
  assert.deepEqual(listenersDump.dynamic_listeners[1]!.name, 'bad');
  assert.match(listenersDump.dynamic_listeners[1]!.error_state!.details, /at least one filter chain/);
  const routesDump = dump.configs[3] as { dynamic_route_configs: { error_state: { details: string } }[] };
  assert.equal(routesDump.dynamic_route_configs[0]!.error_state.details, 'bad regex');
  assert.doesNotMatch(JSON.stringify(dump.configs[4]), /SECRET KEY/);
  const withEds = JSON.parse((await get('/config_dump?include_eds')).text) as { configs: Record<string, unknown>[] };
  assert.ok(withEds.configs.some((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump'));
  const onlyStatic = JSON.parse((await get('/config_dump?resource=static_clusters')).text) as { configs: Record<string, unknown>[] };
  assert.deepEqual(onlyStatic.configs.map((c) => c['@type']), ['type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster']);

  assert.deepEqual(JSON.parse((await get('/server_info')).text), { version: 'trellis/test', state: 'LIVE' });

  assert.equal((await get('/quitquitquit')).status, 405);
  assert.equal(state.quit, 0);
  assert.equal((await get('/drain_listeners', { method: 'POST' })).text, 'OK\n');
  assert.equal(state.drained, 1);
  // pilot-agent's termination call, and Envoy's refusal of skip_exit without graceful.
  assert.equal((await get('/drain_listeners?inboundonly&graceful', { method: 'POST' })).text, 'OK\n');
  assert.deepEqual((await get('/drain_listeners?skip_exit', { method: 'POST' })), { status: 400, text: 'skip_exit requires graceful\n' });
  assert.deepEqual(state.drains, [{ graceful: false, inboundOnly: false, skipExit: false }, { graceful: true, inboundOnly: true, skipExit: false }]);
  assert.match((await get('/logging?upstream=debug', { method: 'POST' })).text, /  upstream: debug/);
  assert.equal((await get('/logging?upstream=loud', { method: 'POST' })).status, 404);
  assert.equal((await get('/nope')).status, 404);
  assert.deepEqual(await get('/quitquitquit', { method: 'POST' }), { status: 200, text: 'OK\n' });
  for (let i = 0; i < 50 && state.quit === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(state.quit, 1);
});

test('prometheus output groups each metric under one TYPE line', () => {
  const stats = new StatsBuilder();
  stats.cluster('a', { upstream_rq_total: 1 });
  stats.cluster('b', { upstream_rq_total: 2 });
  assert.equal(
    formatPrometheus(stats.build()),
    '# TYPE envoy_cluster_upstream_rq_total counter\nenvoy_cluster_upstream_rq_total{envoy_cluster_name="a"} 1\nenvoy_cluster_upstream_rq_total{envoy_cluster_name="b"} 2\n\n',
  );
});
