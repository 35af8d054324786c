// Push fan-out: time from a 1,000-Cluster update until 100 SotW ADS streams (100 connections) have all received it,
// against a baseline that writes the same pre-encoded response on 100 raw gRPC streams in the same run.
import * as grpc from '@grpc/grpc-js';
import { AdsServer, SnapshotCache } from '../src/xds/server/index.js';
import { ADS_SERVICE_DEFINITION } from '../src/xds/ads-service.js';
import { encodeMessage } from '../src/xds/codec.js';
import { CLUSTER } from '../src/xds/type-urls.js';
import { istioLikeCluster } from './cluster-fixture.js';
import { median, printFigure, printRatio } from './report.js';

const STREAMS = Number(process.env['STREAMS'] ?? 100);
const RESOURCES = Number(process.env['RESOURCES'] ?? 1000);
const ROUNDS = Number(process.env['ROUNDS'] ?? 5);
const SOTW = ADS_SERVICE_DEFINITION.StreamAggregatedResources;

const raw = (bytes: Buffer): Buffer => bytes;

/** One ADS client per connection that only counts response bytes, so client-side decoding is not measured. */
interface CountingClient {
  client: grpc.Client;
  call: grpc.ClientDuplexStream<Buffer, Buffer>;
  responses: number;
  waiters: Array<() => void>;
}

function connect(address: string, index: number): CountingClient {
  // Distinct channel options give each client its own subchannel, i.e. its own TCP connection, like 100 proxies.
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'trellis.bench.client': index });
  const call = client.makeBidiStreamRequest(SOTW.path, raw, raw);
  const state: CountingClient = { client, call, responses: 0, waiters: [] };
  call.on('data', () => {
    state.responses++;
    for (const wake of state.waiters.splice(0)) wake();
  });
  call.on('error', () => {});
  return state;
}

function request(nodeId: string): Buffer {
  return Buffer.from(SOTW.requestSerialize({ node: { id: nodeId }, type_url: CLUSTER }));
}

async function allReached(clients: CountingClient[], count: number): Promise<void> {
  await Promise.all(clients.map((c) => (c.responses >= count ? undefined : new Promise<void>((resolve) => {
    const check = (): void => (c.responses >= count ? resolve() : void c.waiters.push(check));
    check();
  }))));
}

function clusters(round: number): Array<{ name: string; resource: object }> {
  return Array.from({ length: RESOURCES }, (_, i) => {
    const cluster = istioLikeCluster(i);
    // Every resource changes each round, so every round is a full 1,000-resource update.
    return { name: cluster.name!, resource: { ...cluster, connect_timeout: { seconds: 1 + round } } };
  });
}

async function measureTrellis(): Promise<number[]> {
  // One node group for all streams: generated once, pushed to 100 (how a control plane serves identical sidecars).
  const cache = new SnapshotCache({ nodeKey: () => 'bench-group' });
  const ads = new AdsServer({ source: cache, logger: { warn: () => {} } });
  const listener = await ads.listen('127.0.0.1:0');
  cache.setResources('bench-group', CLUSTER, clusters(0));
  const clients = Array.from({ length: STREAMS }, (_, i) => connect(`127.0.0.1:${listener.port}`, i));
  for (const [i, c] of clients.entries()) c.call.write(request(`sidecar~10.0.0.${i}~bench-${i}.default~default.svc.cluster.local`));
  await allReached(clients, 1);
  const times: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const update = clusters(round);
    const started = performance.now();
    cache.setResources('bench-group', CLUSTER, update);
    await allReached(clients, round + 1);
    times.push(performance.now() - started);
  }
  for (const c of clients) {
    c.call.cancel();
    c.client.close();
  }
  await ads.close();
  return times;
}

async function measureRawBaseline(): Promise<number[]> {
  // The same response bytes, encoded once per round, written to 100 raw streams: gRPC and loopback cost only.
  const calls: Array<grpc.ServerDuplexStream<Buffer, Buffer>> = [];
  const server = new grpc.Server();
  server.addService({ Stream: { path: SOTW.path, requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } }, {
    Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      calls.push(call);
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const clients = Array.from({ length: STREAMS }, (_, i) => connect(`127.0.0.1:${port}`, i));
  for (const c of clients) c.call.write(request('baseline'));
  while (calls.length < STREAMS) await new Promise((r) => setTimeout(r, 5));
  const times: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const update = clusters(round);
    const started = performance.now();
    const response = Buffer.from(
      encodeMessage('envoy.service.discovery.v3.DiscoveryResponse', {
        version_info: String(round),
        type_url: CLUSTER,
        nonce: String(round),
        resources: update.map((r) => ({ type_url: CLUSTER, value: encodeMessage('envoy.config.cluster.v3.Cluster', r.resource) })),
      }),
    );
    for (const call of calls) call.write(response);
    await allReached(clients, round);
    times.push(performance.now() - started);
  }
  for (const c of clients) {
    c.call.cancel();
    c.client.close();
  }
  server.forceShutdown();
  return times;
}

const baseline = await measureRawBaseline();
const trellis = await measureTrellis();
printFigure(`raw gRPC baseline: encode + write ${RESOURCES} Clusters to ${STREAMS} streams`, median(baseline), 'ms');
printFigure(`Trellis ADS: ${RESOURCES}-resource update pushed to ${STREAMS} SotW streams (until all received)`, median(trellis), 'ms');
printRatio('Trellis ADS push / raw gRPC baseline', median(trellis) / median(baseline));
