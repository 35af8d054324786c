// Proof by a real third-party xDS client: @grpc/grpc-js-xds resolves xds:///whoami.test through Trellis's
// ADS server (LDS api_listener → RDS → CDS → EDS), its RPCs reach real gRPC servers, a route weight change
// moves them, and a resource it cannot accept is NACKed with a reason the server records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { AdsServer, SnapshotCache, type AdsListener } from '../../src/xds/server/index.js';
import { packAny } from '../../src/xds/codec.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import type { envoy } from '../../src/xds/generated/types.js';
import { startProxylessClient, type ProxylessClient } from './proxyless-client.js';

const TARGET = 'whoami.test';
const ROUTE_NAME = 'whoami-route';
const NODE_ID = 'grpc-js-xds-client';
const WHOAMI_PATH = '/trellis.test.Echo/Whoami';

const passThrough = (bytes: Buffer): Buffer => bytes;

/** A real gRPC server that answers Whoami with its own name. */
async function startBackend(name: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(
    { Whoami: { path: WHOAMI_PATH, requestStream: false, responseStream: false, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough } },
    { Whoami: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from(name)) },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return { port, server };
}

function apiListener(): envoy.config.listener.v3.Listener {
  return {
    name: TARGET,
    api_listener: {
      api_listener: packAny('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
        stat_prefix: TARGET,
        rds: { route_config_name: ROUTE_NAME, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) }],
      }),
    },
  };
}

function route(weights: Record<string, number>): envoy.config.route.v3.RouteConfiguration {
  return {
    name: ROUTE_NAME,
    virtual_hosts: [
      {
        name: 'whoami',
        domains: [TARGET],
        routes: [
          {
            match: { prefix: '' },
            route: { weighted_clusters: { clusters: Object.entries(weights).map(([name, weight]) => ({ name, weight: { value: weight } })) } },
          },
        ],
      },
    ],
  };
}

function edsCluster(name: string, lbPolicy: envoy.config.cluster.v3.Cluster.LbPolicy = 'ROUND_ROBIN'): envoy.config.cluster.v3.Cluster {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name }, lb_policy: lbPolicy };
}

function assignment(name: string, port: number): envoy.config.endpoint.v3.ClusterLoadAssignment {
  return {
    cluster_name: name,
    endpoints: [
      {
        locality: { region: 'local', zone: 'a' },
        load_balancing_weight: { value: 1 },
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }],
      },
    ],
  };
}

function whoami(client: ProxylessClient): Promise<string> {
  return client.whoami();
}

/** Calls until `predicate` holds for an answer; bounded in count and time. */
async function callUntil(client: ProxylessClient, predicate: (answer: string) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = '';
  for (let attempt = 0; attempt < 300 && Date.now() < deadline; attempt++) {
    try {
      last = await whoami(client);
      if (predicate(last)) return;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what}: last answer was ${last}`);
}

async function eventually(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('grpc-js-xds resolves xds:/// through Trellis, follows a weight change, and its NACK reason is recorded', async (t) => {
  const backendA = await startBackend('server-a');
  const backendB = await startBackend('server-b');
  const cache = new SnapshotCache();
  const ads = new AdsServer({ source: cache, logger: { warn: () => {} } });
  const listener: AdsListener = await ads.listen('127.0.0.1:0');
  let client: ProxylessClient | undefined;
  t.after(async () => {
    await client?.close();
    await ads.close();
    backendA.server.forceShutdown();
    backendB.server.forceShutdown();
  });

  cache.setSnapshot(NODE_ID, {
    [LISTENER]: [{ name: TARGET, resource: apiListener() }],
    [ROUTE_CONFIGURATION]: [{ name: ROUTE_NAME, resource: route({ 'cluster-a': 100, 'cluster-b': 0 }) }],
    [CLUSTER]: [
      { name: 'cluster-a', resource: edsCluster('cluster-a') },
      { name: 'cluster-b', resource: edsCluster('cluster-b') },
    ],
    [CLUSTER_LOAD_ASSIGNMENT]: [
      { name: 'cluster-a', resource: assignment('cluster-a', backendA.port) },
      { name: 'cluster-b', resource: assignment('cluster-b', backendB.port) },
    ],
  });

  // grpc-js-xds runs in its own process (see proxyless-client-main.ts), with this bootstrap.
  client = startProxylessClient({
    bootstrap: {
      xds_servers: [{ server_uri: `127.0.0.1:${listener.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: NODE_ID, cluster: 'e2e', locality: { region: 'local', zone: 'a' } },
    },
    target: `xds:///${TARGET}`,
    methodPath: WHOAMI_PATH,
  });

  // 1. The RPC reaches the server the route points at.
  await callUntil(client, (answer) => answer === 'server-a', 'the first RPC reaches server-a');
  const stream = ads.streams().find((s) => s.node.id === NODE_ID);
  assert.ok(stream, 'grpc-js-xds opened an ADS stream with its node id');
  for (const typeUrl of [LISTENER, ROUTE_CONFIGURATION, CLUSTER, CLUSTER_LOAD_ASSIGNMENT]) {
    assert.ok((stream.types[typeUrl]?.ackCount ?? 0) >= 1, `${typeUrl} was ACKed`);
    assert.equal(stream.types[typeUrl]?.nackCount, 0, `${typeUrl} was not NACKed`);
  }
  assert.deepEqual(stream.types[LISTENER]?.subscribed, { wildcard: false, names: [TARGET] });
  assert.deepEqual(stream.types[CLUSTER_LOAD_ASSIGNMENT]?.subscribed.names.slice().sort(), ['cluster-a', 'cluster-b']);

  // 2. A weight change in the route moves RPCs to the other cluster.
  cache.setResources(NODE_ID, ROUTE_CONFIGURATION, [{ name: ROUTE_NAME, resource: route({ 'cluster-a': 0, 'cluster-b': 100 }) }]);
  await callUntil(client, (answer) => answer === 'server-b', 'RPCs move to server-b after the weight change');
  for (let i = 0; i < 20; i++) assert.equal(await whoami(client), 'server-b', 'every RPC now goes to server-b');

  // 3. A cluster grpc-js-xds cannot accept is NACKed; the server records the client's reason and the
  //    client keeps the last good cluster, so traffic keeps flowing.
  const ackedCdsVersion = ads.streams().find((s) => s.node.id === NODE_ID)?.types[CLUSTER]?.lastAckedVersion;
  cache.updateResources(NODE_ID, CLUSTER, { upsert: [{ name: 'cluster-b', resource: edsCluster('cluster-b', 'MAGLEV') }] });
  await eventually('the CDS NACK', () => (ads.streams().find((s) => s.node.id === NODE_ID)?.types[CLUSTER]?.nackCount ?? 0) > 0);
  const cds = ads.streams().find((s) => s.node.id === NODE_ID)?.types[CLUSTER];
  // grpc-js-xds names the resource by its index in the response (cluster-a, cluster-b in name order).
  assert.match(cds?.lastNack?.message ?? '', /^xDS response validation errors: \[resource index 1: Cluster message validation failed: .*unsupported lb_policy: MAGLEV/);
  assert.equal(cds?.lastAckedVersion, ackedCdsVersion, 'the NACKed version is not recorded as ACKed');
  for (let i = 0; i < 5; i++) assert.equal(await whoami(client), 'server-b', 'the last good cluster keeps serving');
});
