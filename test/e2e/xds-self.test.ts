// Trellis's own xDS client against Trellis's own ADS server, in SotW and Delta modes: initial sync, updates,
// removals, a NACK whose reason the server records, and a reconnect after the server restarts on the same port
// with the same config (nothing changes on the client) followed by a change (the re-subscription works).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdsServer, SnapshotCache, type AdsListener, type TypeInput } from '../../src/xds/server/index.js';
import {
  WILDCARD,
  XdsClient,
  clusterLoadAssignmentResourceType,
  clusterResourceType,
  listenerResourceType,
  routeConfigurationResourceType,
  type ResourceUpdate,
  type XdsTypeStatus,
} from '../../src/xds/client/index.js';
import { packAny } from '../../src/xds/codec.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import type { envoy } from '../../src/xds/generated/types.js';

const NODE = { id: 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local', cluster: 'productpage.default' };

function cluster(name: string, timeoutSeconds = 1): { name: string; resource: envoy.config.cluster.v3.Cluster } {
  return {
    name,
    resource: { name, type: 'EDS', connect_timeout: { seconds: timeoutSeconds }, eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name } },
  };
}

function assignment(name: string, port: number): { name: string; resource: envoy.config.endpoint.v3.ClusterLoadAssignment } {
  return { name, resource: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } };
}

function listener(name: string, port: number, routeName: string): { name: string; resource: envoy.config.listener.v3.Listener } {
  const hcm = packAny('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
    stat_prefix: name,
    rds: { route_config_name: routeName, config_source: { ads: {}, resource_api_version: 'V3' } },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) }],
  });
  return { name, resource: { name, address: { socket_address: { address: '127.0.0.1', port_value: port } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] } };
}

function route(name: string, clusterName: string): { name: string; resource: envoy.config.route.v3.RouteConfiguration } {
  return { name, resource: { name, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: clusterName } }] }] } };
}

function bookinfoSnapshot(reviewsTimeout = 1): Record<string, TypeInput> {
  return {
    [CLUSTER]: [cluster('outbound|9080||reviews.default.svc.cluster.local', reviewsTimeout), cluster('outbound|9080||ratings.default.svc.cluster.local')],
    [CLUSTER_LOAD_ASSIGNMENT]: [assignment('outbound|9080||reviews.default.svc.cluster.local', 19080)],
    [LISTENER]: [listener('0.0.0.0_9080', 19081, '9080')],
    [ROUTE_CONFIGURATION]: [route('9080', 'outbound|9080||reviews.default.svc.cluster.local')],
  };
}

function clientType(client: XdsClient, typeUrl: string): XdsTypeStatus | undefined {
  return client.status().types.find((type) => type.typeUrl === typeUrl);
}

async function eventually(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function startServer(port: number, snapshot: Record<string, TypeInput>): Promise<{ cache: SnapshotCache; ads: AdsServer; listener: AdsListener }> {
  const cache = new SnapshotCache();
  cache.setSnapshot(NODE.id, snapshot);
  const ads = new AdsServer({ source: cache, logger: { warn: () => {} } });
  // Retry the bind briefly: the previous server's port may take a moment to be released.
  for (let attempt = 0; ; attempt++) {
    try {
      return { cache, ads, listener: await ads.listen(`127.0.0.1:${port}`) };
    } catch (err) {
      if (attempt >= 40) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

for (const mode of ['sotw', 'delta'] as const) {
  test(`${mode}: Trellis client and server sync, update, remove, NACK, and survive a server restart`, async (t) => {
    let server = await startServer(0, bookinfoSnapshot());
    const port = server.listener.port;
    const client = new XdsClient({ server: `127.0.0.1:${port}`, node: NODE, mode, backoff: { baseMs: 20, maxMs: 200 } });
    t.after(async () => {
      client.close();
      await server.ads.close();
    });
    const applied: Array<ResourceUpdate<unknown>> = [];
    for (const type of [clusterResourceType, clusterLoadAssignmentResourceType, listenerResourceType, routeConfigurationResourceType]) {
      client.onApply<unknown>(type, (update) => void applied.push(update));
    }
    client.subscribe(CLUSTER, WILDCARD);
    client.subscribe(LISTENER, WILDCARD);
    client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['outbound|9080||reviews.default.svc.cluster.local']);
    client.subscribe(ROUTE_CONFIGURATION, ['9080']);

    // Initial sync: every type arrives, is applied and ACKed, and both sides agree on the versions.
    await eventually('all four types applied', () => [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION].every((u) => client.resources(u).size > 0));
    assert.deepEqual([...client.resources(CLUSTER).keys()].sort(), ['outbound|9080||ratings.default.svc.cluster.local', 'outbound|9080||reviews.default.svc.cluster.local']);
    const rds = client.resources(ROUTE_CONFIGURATION).get('9080') as envoy.config.route.v3.RouteConfiguration;
    assert.equal(rds.virtual_hosts?.[0]?.routes?.[0]?.route?.cluster, 'outbound|9080||reviews.default.svc.cluster.local');
    await eventually('server saw the ACKs', () => {
      const types = server.ads.streams()[0]?.types ?? {};
      return [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION].every((u) => (types[u]?.ackCount ?? 0) >= 1);
    });
    const serverStatus = server.ads.streams()[0]!;
    assert.equal(serverStatus.mode, mode);
    assert.equal(serverStatus.node.id, NODE.id);
    if (mode === 'sotw') assert.equal(clientType(client, CLUSTER)?.versionInfo, serverStatus.types[CLUSTER]?.lastAckedVersion);

    // An update and a removal: the changed cluster arrives, the removed one disappears from the client.
    server.cache.setResources(NODE.id, CLUSTER, [cluster('outbound|9080||reviews.default.svc.cluster.local', 7)]);
    await eventually('ratings cluster removed and reviews updated', () => {
      const reviews = client.resources(CLUSTER).get('outbound|9080||reviews.default.svc.cluster.local') as envoy.config.cluster.v3.Cluster | undefined;
      return client.resources(CLUSTER).size === 1 && reviews?.connect_timeout?.seconds === 7;
    });
    assert.ok(applied.some((u) => u.typeUrl === CLUSTER && u.removed.includes('outbound|9080||ratings.default.svc.cluster.local')));

    // A cluster the client refuses: NACK with the client's reason, recorded by the server; the last good one stays.
    const nacksBefore = server.ads.streams()[0]?.types[CLUSTER]?.nackCount ?? 0;
    server.cache.setResources(NODE.id, CLUSTER, [cluster('outbound|9080||reviews.default.svc.cluster.local', 7), { name: 'broken', resource: { name: 'broken', connect_timeout: { seconds: -1 } } }]);
    await eventually('the server recorded the NACK', () => (server.ads.streams()[0]?.types[CLUSTER]?.nackCount ?? 0) > nacksBefore);
    assert.match(server.ads.streams()[0]?.types[CLUSTER]?.lastNack?.message ?? '', /broken.*connect_timeout/);
    assert.equal(clientType(client, CLUSTER)?.lastNack?.message, server.ads.streams()[0]?.types[CLUSTER]?.lastNack?.message);
    assert.equal(client.resources(CLUSTER).has('broken'), false);
    assert.equal((client.resources(CLUSTER).get('outbound|9080||reviews.default.svc.cluster.local') as envoy.config.cluster.v3.Cluster).connect_timeout?.seconds, 7);

    // Restart: the server goes away; the client keeps its config, reconnects with backoff to a new server
    // on the same port that has the same config, and nothing is re-applied.
    server.cache.setResources(NODE.id, CLUSTER, [cluster('outbound|9080||reviews.default.svc.cluster.local', 7)]);
    await eventually('the good set is ACKed again', () => clientType(client, CLUSTER)?.lastNack === undefined || client.resources(CLUSTER).size === 1);
    const lastConfig = { ...bookinfoSnapshot(7) };
    lastConfig[CLUSTER] = [cluster('outbound|9080||reviews.default.svc.cluster.local', 7)];
    let disconnected = false;
    client.once('disconnected', () => (disconnected = true));
    await server.ads.close();
    await eventually('the client noticed the server went away', () => disconnected);
    assert.equal(client.resources(LISTENER).size, 1, 'the last good config keeps serving while disconnected');
    const appliedBeforeRestart = applied.length;
    server = await startServer(port, lastConfig);
    await eventually('the client reconnected and re-subscribed every type', () => {
      const types = server.ads.streams()[0]?.types ?? {};
      return client.connected && [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION].every((u) => types[u] !== undefined);
    });
    // Let any (wrong) re-push arrive before asserting that nothing was re-applied.
    await eventually('named types answered', () => (server.ads.streams()[0]?.types[ROUTE_CONFIGURATION]?.ackCount ?? 0) >= 1);
    const reapplied = applied.slice(appliedBeforeRestart).filter((u) => u.changed.size > 0 || u.removed.length > 0);
    assert.deepEqual(reapplied, [], 'an unchanged config is not applied again after a reconnect');
    if (mode === 'delta') {
      assert.deepEqual(server.ads.streams()[0]?.types[CLUSTER]?.subscribed, { wildcard: true, names: [] });
    }

    // The new server's changes reach the client.
    server.cache.updateResources(NODE.id, ROUTE_CONFIGURATION, { upsert: [route('9080', 'outbound|9080||ratings.default.svc.cluster.local')] });
    await eventually('route change after restart', () => {
      const updated = client.resources(ROUTE_CONFIGURATION).get('9080') as envoy.config.route.v3.RouteConfiguration;
      return updated.virtual_hosts?.[0]?.routes?.[0]?.route?.cluster === 'outbound|9080||ratings.default.svc.cluster.local';
    });
  });
}
