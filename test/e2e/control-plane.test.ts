// The control plane end to end: Bookinfo from a watched directory, a Trellis xDS client as productpage's sidecar, a
// VirtualService edit that reaches the client as a new route, a WorkloadEntry address change pushed as EDS only, and
// the CLI (proxy-status, proxy-config) reading the debug API of the running control plane.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startControlPlane } from '../../src/control/server/main.js';
import type { ProxySyncStatus } from '../../src/control/server/sync-status.js';
import { WILDCARD, XdsClient } from '../../src/xds/client/index.js';
import { unpackAny } from '../../src/xds/codec.js';
import type { envoy } from '../../src/xds/generated/types.js';
import type { SentEvent } from '../../src/xds/server/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../test/fixtures/bookinfo/', import.meta.url));

const PROXY_ID = 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local';
const REVIEWS = 'reviews.default.svc.cluster.local';

type Listener = envoy.config.listener.v3.Listener;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
type Cluster = envoy.config.cluster.v3.Cluster;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;

async function eventually(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function routeNames(listeners: Iterable<unknown>): string[] {
  const names = new Set<string>();
  for (const listener of listeners as Iterable<Listener>) {
    for (const chain of [...(listener.filter_chains ?? []), ...(listener.default_filter_chain ? [listener.default_filter_chain] : [])]) {
      for (const filter of chain.filters ?? []) {
        if (!filter.typed_config?.type_url?.endsWith('HttpConnectionManager')) continue;
        const name = unpackAny<Hcm>(filter.typed_config).rds?.route_config_name;
        if (name) names.add(name);
      }
    }
  }
  return [...names];
}

/** The cluster the route for `reviews` sends a request with these headers to (first matching route wins). */
function reviewsClusterFor(client: XdsClient, headers: Record<string, string>): string | undefined {
  for (const rc of client.resources(ROUTE_CONFIGURATION).values() as Iterable<RouteConfiguration>) {
    for (const vh of rc.virtual_hosts ?? []) {
      if (!(vh.domains ?? []).includes(REVIEWS)) continue;
      for (const route of vh.routes ?? []) {
        const ok = (route.match?.headers ?? []).every((h) => headers[h.name ?? ''] !== undefined && (h.string_match?.exact === undefined || h.string_match.exact === headers[h.name ?? '']));
        if (!ok) continue;
        return route.route?.cluster ?? route.route?.weighted_clusters?.clusters?.map((c) => c.name).join(',');
      }
    }
  }
  return undefined;
}

function endpointAddresses(client: XdsClient, cluster: string): string[] {
  const cla = client.resources(CLUSTER_LOAD_ASSIGNMENT).get(cluster) as ClusterLoadAssignment | undefined;
  return (cla?.endpoints ?? []).flatMap((l) => (l.lb_endpoints ?? []).map((e) => `${e.endpoint?.address?.socket_address?.address}:${e.endpoint?.address?.socket_address?.port_value}`)).sort();
}

test('control plane: live VirtualService edit, EDS-only endpoint change, debug API and CLI', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-control-'));
  cpSync(fixtures, dir, { recursive: true });
  const logs: string[] = [];
  const plane = await startControlPlane({
    configDir: dir,
    xdsAddress: '127.0.0.1:0',
    monitoringAddress: '127.0.0.1:0',
    debounceAfterMs: 20,
    debounceMaxMs: 1_000,
    logger: { info: (m) => logs.push(`info ${m}`), warn: (m) => logs.push(`warn ${m}`) },
  });
  const clients: XdsClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await plane.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const monitoring = `127.0.0.1:${plane.monitoringPort}`;
  const sent: SentEvent[] = [];
  plane.discovery.ads.on('sent', (e) => sent.push(e));

  const client = new XdsClient({
    server: `127.0.0.1:${plane.xdsPort}`,
    node: {
      id: PROXY_ID,
      cluster: 'productpage.default',
      metadata: { fields: { NAMESPACE: { string_value: 'default' }, LABELS: { struct_value: { fields: { app: { string_value: 'productpage' }, version: { string_value: 'v1' } } } } } },
    },
    mode: 'sotw',
    backoff: { baseMs: 20, maxMs: 200 },
  });
  clients.push(client);
  client.subscribe(CLUSTER, WILDCARD);
  client.subscribe(LISTENER, WILDCARD);

  // Like Envoy: CDS and LDS first, then EDS for the EDS clusters and RDS for the routes the listeners name.
  await eventually('clusters and listeners', () => client.resources(CLUSTER).has(`outbound|9080|v2|${REVIEWS}`) && client.resources(LISTENER).size > 0);
  const edsClusters = [...client.resources(CLUSTER).values() as Iterable<Cluster>].filter((c) => c.type === 'EDS').map((c) => c.name!);
  assert.ok(edsClusters.includes(`outbound|9080||${REVIEWS}`), edsClusters.join(' '));
  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, edsClusters);
  const routes = routeNames(client.resources(LISTENER).values());
  assert.ok(routes.length > 0, 'the listeners reference RDS routes');
  client.subscribe(ROUTE_CONFIGURATION, routes);
  await eventually('jason is routed to reviews v2', () => reviewsClusterFor(client, { 'end-user': 'jason' }) === `outbound|9080|v2|${REVIEWS}`);
  await eventually('reviews endpoints', () => endpointAddresses(client, `outbound|9080||${REVIEWS}`).length === 3);

  // A VirtualService edit in the watched directory reaches the client as a new route.
  const traffic = join(dir, 'traffic.yaml');
  const original = readFileSync(traffic, 'utf8');
  const edited = original.replace('        subset: v2\n', '        subset: v3\n');
  assert.notEqual(edited, original);
  writeFileSync(traffic, edited);
  await eventually('jason is routed to reviews v3', () => reviewsClusterFor(client, { 'end-user': 'jason' }) === `outbound|9080|v3|${REVIEWS}`);

  // Everything acknowledged: proxy-status shows the proxy SYNCED on every type.
  const syncz = async () => (await (await fetch(`http://${monitoring}/debug/syncz`)).json()) as ProxySyncStatus[];
  await eventually('all types synced', async () => {
    const s = (await syncz()).find((p) => p.proxy === PROXY_ID);
    return s !== undefined && ['CDS', 'LDS', 'EDS', 'RDS'].every((type) => s.types[type]?.state === 'SYNCED');
  });
  await plane.discovery.idle();

  // Only a WorkloadEntry address changes: the registry reports endpoints only, and only EDS is pushed.
  const before = (await syncz()).find((p) => p.proxy === PROXY_ID)!;
  const sentBefore = sent.length;
  const services = join(dir, 'services.yaml');
  const servicesText = readFileSync(services, 'utf8');
  const movedReviews = servicesText.replace(/(name: reviews-v1\n  namespace: default\nspec:\n  address: )127\.0\.0\.1/, '$1127.0.0.2');
  assert.notEqual(movedReviews, servicesText);
  writeFileSync(services, movedReviews);
  await eventually('reviews v1 moved to 127.0.0.2', () => endpointAddresses(client, `outbound|9080||${REVIEWS}`).includes('127.0.0.2:19082'));
  await eventually('EDS acknowledged', async () => (await syncz()).find((p) => p.proxy === PROXY_ID)?.types['EDS']?.state === 'SYNCED');
  await plane.discovery.idle();
  const pushedTypes = new Set(sent.slice(sentBefore).map((e) => e.typeUrl));
  assert.deepEqual([...pushedTypes], [CLUSTER_LOAD_ASSIGNMENT], 'an endpoint-only change pushes EDS only');
  const after = (await syncz()).find((p) => p.proxy === PROXY_ID)!;
  for (const type of ['CDS', 'LDS', 'RDS']) assert.equal(after.types[type]!.sentCount, before.types[type]!.sentCount, `${type} not resent`);
  assert.ok(after.types['EDS']!.sentCount > before.types['EDS']!.sentCount);

  // Metrics under Istio's names.
  const metrics = await (await fetch(`http://${monitoring}/metrics`)).text();
  assert.match(metrics, /^pilot_xds 1$/m);
  assert.match(metrics, /^pilot_xds_pushes\{type="eds"\} \d+$/m);
  assert.match(metrics, /^pilot_k8s_cfg_events\{event="update",type="VirtualService"\} 1$/m);
  assert.match(metrics, /^pilot_proxy_convergence_time_count \d+$/m);
  assert.match(metrics, /^pilot_xds_push_time_count\{type="rds"\} \d+$/m);

  // The debug API refuses what it cannot answer.
  assert.equal((await fetch(`http://${monitoring}/debug/config_dump`)).status, 400);
  assert.equal((await fetch(`http://${monitoring}/debug/config_dump?proxyID=sidecar~1.2.3.4~nobody.default~default.svc.cluster.local`)).status, 404);
  assert.equal((await fetch(`http://${monitoring}/ready`)).status, 200);
  const configz = (await (await fetch(`http://${monitoring}/debug/configz`)).json()) as { resources: unknown[]; problems: unknown[] };
  assert.ok(configz.resources.length >= 15);
  assert.deepEqual(configz.problems, []);

  // The CLI against the running control plane.
  const status = await run(process.execPath, [bin, 'proxy-status', '--monitoring-address', monitoring]);
  assert.match(status.stdout, /^NAME\s+CLUSTER\s+CDS\s+LDS\s+EDS\s+RDS\s+ISTIOD\s+VERSION$/m);
  assert.match(status.stdout, /^productpage-v1\.default\s+Kubernetes\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+trellis-control\.\S+\s+\S+$/m);
  const clusters = await run(process.execPath, [bin, 'proxy-config', 'clusters', 'productpage-v1.default', '--monitoring-address', monitoring]);
  assert.match(clusters.stdout, /^SERVICE FQDN\s+PORT\s+SUBSET\s+DIRECTION\s+TYPE\s+DESTINATION RULE$/m);
  assert.match(clusters.stdout, /^reviews\.default\.svc\.cluster\.local\s+9080\s+v3\s+outbound\s+EDS\s+reviews\.default$/m);
  const endpoints = await run(process.execPath, [bin, 'proxy-config', 'endpoints', PROXY_ID, '--monitoring-address', monitoring]);
  assert.match(endpoints.stdout, /^127\.0\.0\.2:19082\s+HEALTHY\s+OK\s+outbound\|9080\|\|reviews\.default\.svc\.cluster\.local$/m);
  const routesOut = await run(process.execPath, [bin, 'proxy-config', 'routes', 'productpage-v1.default', '--monitoring-address', monitoring]);
  assert.match(routesOut.stdout, /^NAME\s+VHOST NAME\s+DOMAINS\s+MATCH\s+VIRTUAL SERVICE$/m);
  assert.match(routesOut.stdout, /reviews\.default\.svc\.cluster\.local.*reviews\.default$/m);
  const listeners = await run(process.execPath, [bin, 'proxy-config', 'listeners', 'productpage-v1.default', '--monitoring-address', monitoring]);
  assert.match(listeners.stdout, /^NAME\s+ADDRESSES\s+PORT\s+MATCH\s+DESTINATION$/m);
  assert.match(listeners.stdout, /Route: /);
  const json = JSON.parse((await run(process.execPath, [bin, 'proxy-config', 'clusters', 'productpage-v1.default', '-o', 'json', '--monitoring-address', monitoring])).stdout) as Array<Record<string, unknown>>;
  assert.ok(json.some((c) => c['name'] === `outbound|9080|v1|${REVIEWS}` && c['@type'] === CLUSTER));
  await assert.rejects(run(process.execPath, [bin, 'proxy-config', 'clusters', 'nobody.default', '--monitoring-address', monitoring]), (err: { code?: number; stderr?: string }) => err.code === 1 && /not connected/.test(err.stderr ?? ''));

  // A node id that is not Istio's is refused with a clear log, and gets nothing.
  const stranger = new XdsClient({ server: `127.0.0.1:${plane.xdsPort}`, node: { id: 'just-a-name' }, mode: 'sotw', backoff: { baseMs: 20, maxMs: 200 } });
  clients.push(stranger);
  stranger.subscribe(CLUSTER, WILDCARD);
  await eventually('the stranger is refused', () => logs.some((l) => l.startsWith('warn refusing xDS stream') && l.includes('"just-a-name"')));
  assert.equal(stranger.resources(CLUSTER).size, 0);
  stranger.close();

  // The proxy goes away: it is forgotten and the gauge drops.
  client.close();
  await eventually('proxy forgotten', () => plane.discovery.connectedProxies().length === 0);
  await eventually('gauge back to zero', async () => /^pilot_xds 0$/m.test(await (await fetch(`http://${monitoring}/metrics`)).text()));
});

test('control plane: a config directory that does not exist fails start with the reason', async () => {
  await assert.rejects(
    startControlPlane({ configDir: join(tmpdir(), 'trellis-no-such-dir-' + process.pid), xdsAddress: '127.0.0.1:0', monitoringAddress: '127.0.0.1:0', logger: { info: () => {}, warn: () => {} } }),
    /cannot read config directory/,
  );
});
