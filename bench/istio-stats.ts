// Istio stats on the request path: ns per request of istio.stats (labels + record) and of the peer's x-envoy-peer-metadata (decoded, and through the filter's cache), against a bare counter Map in the same run.
import { decodePeerMetadata, decodePeerMetadataCached, encodePeerMetadata } from '../src/proxy/filters/metadata-exchange/peer-metadata.js';
import { istioLabels, workloadLabels } from '../src/proxy/filters/istio-stats/labels.js';
import { IstioMetrics } from '../src/proxy/filters/istio-stats/metrics.js';
import type { StreamInfo } from '../src/proxy/http/stream-info.js';
import { median, printFigure, printRatio } from './report.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 7);
const ITERATIONS = Number(process.env['ITERATIONS'] ?? 300_000);

const self = workloadLabels({ NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-v2', LABELS: { app: 'reviews', version: 'v2' }, CLUSTER_ID: 'Kubernetes' });
const peerHeader = encodePeerMetadata({ NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1', 'security.istio.io/tlsMode': 'istio' }, CLUSTER_ID: 'Kubernetes', MESH_ID: 'cluster.local', SERVICE_ACCOUNT: 'bookinfo-productpage', ISTIO_VERSION: '1.24.0' });
const peer = { fields: decodePeerMetadataCached(peerHeader)! };

// An inbound request as the stats filter sees it at completion: mTLS from productpage, a 200 with a few statuses mixed in.
const infos: StreamInfo[] = [];
for (let i = 0; i < 64; i++) {
  infos.push({
    startTime: 0,
    endTime: 1 + (i % 7),
    protocol: 'http1',
    downstreamRemoteAddress: '10.0.0.1',
    downstreamRemotePort: 40000 + i,
    downstreamLocalAddress: '10.0.0.2',
    downstreamLocalPort: 9080,
    downstreamTls: { peerUriSans: ['spiffe://cluster.local/ns/default/sa/bookinfo-productpage'], localUriSans: ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews'] },
    listenerName: 'virtualInbound',
    statPrefix: 'inbound_0.0.0.0_9080',
    upstreamCluster: 'inbound|9080||',
    responseCode: i % 16 === 0 ? 503 : 200,
    responseFlags: new Set(),
    attemptCount: 1,
    filterState: new Map(),
    requestHeaders: { ':method': 'GET', ':authority': 'reviews:9080', ':path': '/reviews/0', 'content-type': 'application/json' },
    responseHeaders: { ':status': '200' },
    bytesReceived: 0,
    bytesSent: 400 + i,
  } as unknown as StreamInfo);
}

let sink = 0;
/** CPU ns per call (user + system of this process): the shared machine's load stretches wall time, not CPU time. */
function timeIt(body: (i: number) => void): number {
  const start = process.cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) body(i);
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / ITERATIONS;
}

const metrics = new IstioMetrics();
const counters = new Map<number, number>();
const record = (i: number): void => {
  const info = infos[i & 63]!;
  metrics.record({ labels: istioLabels('destination', self, peer, info), durationMs: info.endTime! - info.startTime, requestBytes: info.bytesReceived, responseBytes: info.bytesSent });
};
const decode = (): void => {
  sink += Object.keys(decodePeerMetadata(peerHeader)!).length;
};
// What the filter does per request: the same peer's header, decoded once and then found in the cache.
const cached = (): void => {
  sink += decodePeerMetadataCached(peerHeader) === undefined ? 0 : 1;
};
const bare = (i: number): void => {
  const k = i & 63;
  counters.set(k, (counters.get(k) ?? 0) + 1);
};

// Warm-up (JIT) before any round counts.
timeIt(record);
timeIt(decode);
timeIt(bare);
timeIt(cached);
const results = { record: [] as number[], decode: [] as number[], cached: [] as number[], bare: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  results.record.push(timeIt(record));
  results.decode.push(timeIt(decode));
  results.cached.push(timeIt(cached));
  results.bare.push(timeIt(bare));
}
const rec = median(results.record);
const dec = median(results.decode);
const hit = median(results.cached);
const base = median(results.bare);
console.log(`istio-stats bench: ${ROUNDS} rounds x ${ITERATIONS} requests, CPU time, median; series held: ${metrics.seriesCount} (sink ${sink % 10})`);
printFigure('istio.stats labels + record per request', rec, 'ns');
printFigure('x-envoy-peer-metadata decode, uncached (inbound, from a sidecar)', dec, 'ns');
printFigure('x-envoy-peer-metadata through the cache (what the filter does)', hit, 'ns');
printFigure('baseline: one counter Map update', base, 'ns');
printRatio('istio.stats record / bare counter', rec / base);
printFigure('stats work per inbound request (record + cached header)', rec + hit, 'ns');
