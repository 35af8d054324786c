// `trellis proxy -c` as a real process from a static Envoy bootstrap (no control plane): requests through listener → HCM →
// route → STATIC cluster → a real upstream, admin pages (/ready, /config_dump, /clusters, /stats, Prometheus), access
// log lines on stdout, /quitquitquit exiting 0; and a bad bootstrap refused with exit code 1 and the field path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import {
  eventually,
  httpGet,
  listenerAddress,
  runProxyExpectingFailure,
  startProxyProcess,
  startUpstream,
  statValue,
  writeTemp,
} from './proxy-support.js';

function staticBootstrap(upstreamPort: number): string {
  return `
node: { id: static-proxy, cluster: e2e }
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 0 }
static_resources:
  listeners:
  - name: listener_0
    address:
      socket_address: { address: 127.0.0.1, port_value: 0 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          codec_type: AUTO
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
          route_config:
            name: local_route
            virtual_hosts:
            - name: local_service
              domains: ["*"]
              routes:
              - match: { prefix: "/api/" }
                route: { cluster: backend }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    connect_timeout: 0.25s
    type: STATIC
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: ${upstreamPort} }
`;
}

test('static bootstrap: traffic, admin pages, stats, access log, quitquitquit', async (t) => {
  const upstream = await startUpstream('backend');
  t.after(() => upstream.close());
  const proxy = await startProxyProcess(writeTemp('bootstrap.yaml', staticBootstrap(upstream.port)));
  t.after(() => proxy.kill());

  await eventually('/ready is LIVE', async () => (await httpGet(proxy.admin, '/ready')).status === 200);
  assert.equal((await httpGet(proxy.admin, '/ready')).body, 'LIVE\n');
  const address = await listenerAddress(proxy.admin, 'listener_0');

  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  t.after(() => agent.destroy());
  const N = 7;
  for (let i = 0; i < N; i++) {
    const reply = await httpGet(address, `/api/item/${i}`, { agent, headers: { 'user-agent': 'trellis-e2e' } });
    assert.equal(reply.status, 200);
    assert.equal(reply.body, `backend /api/item/${i}`);
  }
  assert.equal(upstream.requests, N);
  const noRoute = await httpGet(address, '/elsewhere', { agent });
  assert.equal(noRoute.status, 404);

  // Counters with Envoy's names.
  const stats = (await httpGet(proxy.admin, '/stats')).body;
  assert.equal(statValue(stats, 'cluster.backend.upstream_rq_total'), N, stats);
  assert.equal(statValue(stats, 'cluster.backend.upstream_rq_2xx'), N);
  assert.equal(statValue(stats, 'http.ingress_http.downstream_rq_2xx'), N);
  assert.equal(statValue(stats, 'http.ingress_http.downstream_rq_4xx'), 1);
  assert.ok((statValue(stats, `listener.${address.replace(/:(\d+)$/, '_$1')}.downstream_cx_total`) ?? 0) >= 1, stats);
  assert.equal(statValue(stats, 'server.live'), 1);
  const prometheus = (await httpGet(proxy.admin, '/stats/prometheus')).body;
  assert.match(prometheus, new RegExp(`^envoy_cluster_upstream_rq_total\\{envoy_cluster_name="backend"\\} ${N}$`, 'm'));
  assert.match(prometheus, new RegExp(`^envoy_http_downstream_rq_xx\\{envoy_response_code_class="2",envoy_http_conn_manager_prefix="ingress_http"\\} ${N}$`, 'm'));

  // /clusters: the host with its counters and health.
  const clusters = (await httpGet(proxy.admin, '/clusters')).body.split('\n');
  const host = `backend::127.0.0.1:${upstream.port}`;
  assert.ok(clusters.includes(`${host}::health_flags::healthy`), clusters.join('\n'));
  assert.ok(clusters.includes(`${host}::rq_total::${N}`), clusters.join('\n'));
  assert.ok(clusters.includes('backend::added_via_api::false'));

  // /config_dump: Envoy's shape, static resources as given.
  const dump = JSON.parse((await httpGet(proxy.admin, '/config_dump')).body) as { configs: Record<string, unknown>[] };
  const byType = new Map(dump.configs.map((c) => [String(c['@type']).replace('type.googleapis.com/envoy.admin.v3.', ''), c]));
  assert.deepEqual([...byType.keys()], ['BootstrapConfigDump', 'ClustersConfigDump', 'ListenersConfigDump', 'RoutesConfigDump', 'SecretsConfigDump']);
  const bootstrap = byType.get('BootstrapConfigDump') as { bootstrap: { node: { id: string } } };
  assert.equal(bootstrap.bootstrap.node.id, 'static-proxy');
  const staticCluster = (byType.get('ClustersConfigDump') as { static_clusters: { cluster: Record<string, unknown> }[] }).static_clusters[0]!.cluster;
  assert.equal(staticCluster['@type'], 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
  assert.equal(staticCluster.name, 'backend');
  assert.equal(staticCluster.connect_timeout, '0.250s');
  const staticListener = (byType.get('ListenersConfigDump') as { static_listeners: { listener: { name: string } }[] }).static_listeners[0]!.listener;
  assert.equal(staticListener.name, 'listener_0');
  const route = (byType.get('RoutesConfigDump') as { static_route_configs: { route_config: { name: string } }[] }).static_route_configs[0]!.route_config;
  assert.equal(route.name, 'local_route');

  const info = JSON.parse((await httpGet(proxy.admin, '/server_info')).body) as { state: string; node: { id: string }; command_line_options: { config_path: string } };
  assert.equal(info.state, 'LIVE');
  assert.equal(info.node.id, 'static-proxy');

  // Access log: Envoy's default format on stdout, one line per request.
  await eventually('access log lines', () => proxy.stdout().split('\n').filter((l) => l.includes('"GET /api/item/')).length === N);
  const line = proxy.stdout().split('\n').find((l) => l.includes('"GET /api/item/0 HTTP/1.1"'))!;
  assert.match(line, new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\dT[^\\]]+Z\\] "GET /api/item/0 HTTP/1.1" 200 - 0 \\d+ \\d+ \\S+ "[^"]*" "trellis-e2e" "[0-9a-f-]{36}" "${address.replace(/\./g, '\\.')}" "127\\.0\\.0\\.1:${upstream.port}"$`));
  assert.ok(proxy.stdout().split('\n').some((l) => / "GET \/elsewhere HTTP\/1.1" 404 NR /.test(l)), proxy.stdout());

  // GET is refused on /quitquitquit; POST stops the proxy cleanly.
  assert.equal((await httpGet(proxy.admin, '/quitquitquit')).status, 405);
  agent.destroy();
  assert.equal((await httpGet(proxy.admin, '/quitquitquit', { method: 'POST' })).status, 200);
  assert.equal(await proxy.exited, 0);
});

test('a bad bootstrap is refused at start-up: exit code 1, the field path in stderr', async () => {
  const bad = writeTemp(
    'bad.yaml',
    staticBootstrap(1).replace('connect_timeout: 0.25s', 'connect_timeout: quarter').replace('stat_prefix: ingress_http', 'stat_prefix: ingress_http\n          bogus_field: 1'),
  );
  const { code, stderr } = await runProxyExpectingFailure(bad);
  assert.equal(code, 1);
  assert.match(stderr, /static_resources\.clusters\[0\]\.connect_timeout: expected a duration like "5s"/);
  assert.match(stderr, /static_resources\.listeners\[0\]\.filter_chains\[0\]\.filters\[0\]\.typed_config\.bogus_field: unknown field/);

  const unsupported = writeTemp('unsupported.yaml', `${staticBootstrap(1)}\nwatchdog: { miss_timeout: 1s }\n`);
  const second = await runProxyExpectingFailure(unsupported);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /watchdog: not supported by Trellis/);

  const missing = await runProxyExpectingFailure('/nonexistent/bootstrap.yaml');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\/nonexistent\/bootstrap\.yaml: cannot read the bootstrap/);
});

test('SIGTERM: the termination drain, then exit 0', async (t) => {
  const upstream = await startUpstream('backend');
  t.after(() => upstream.close());
  const proxy = await startProxyProcess(writeTemp('bootstrap.yaml', staticBootstrap(upstream.port)), ['--drain-time-s', '1', '--termination-drain-duration', '300ms']);
  t.after(() => proxy.kill());
  await eventually('/ready is LIVE', async () => (await httpGet(proxy.admin, '/ready')).status === 200);
  const address = await listenerAddress(proxy.admin, 'listener_0');
  assert.equal((await httpGet(address, '/api/one')).status, 200);
  proxy.child.kill('SIGTERM');
  assert.equal(await proxy.exited, 0);
  assert.match(proxy.stderr(), /SIGTERM: draining inbound listeners for up to 0.3 s, then stopping/);
  assert.match(proxy.stderr(), /termination drain ended \(elapsed\); stopping/);
});
