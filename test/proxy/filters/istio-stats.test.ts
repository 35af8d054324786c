// istio.stats and istio.metadata_exchange against recorded filter contexts: labels per reporter, Istio's buckets, the
// series cap, the peer header encoding, and the Prometheus text on /stats/prometheus.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HttpFilterContext } from '../../../src/proxy/http/filter.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import type { DownstreamTlsInfo, StreamInfo } from '../../../src/proxy/http/stream-info.js';
import type { ResponseFlag } from '../../../src/proxy/http/response-flags.js';
import { istioStatsFilterFactory, compileIstioStatsConfig } from '../../../src/proxy/filters/istio-stats/filter.js';
import { IstioMetrics, DURATION_BUCKETS_MS, BYTES_BUCKETS, ISTIO_LABELS, type IstioLabels } from '../../../src/proxy/filters/istio-stats/metrics.js';
import { destinationService, istioLabels, istioTcpLabels, workloadLabels } from '../../../src/proxy/filters/istio-stats/labels.js';
import { IstioTcpMetrics } from '../../../src/proxy/filters/istio-stats/tcp-metrics.js';
import { structToJson } from '../../../src/xds/struct.js';
import { metadataExchangeFilterFactory } from '../../../src/proxy/filters/metadata-exchange/filter.js';
import { decodePeerMetadata, encodePeerMetadata, PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../../../src/proxy/filters/metadata-exchange/peer-metadata.js';
import { StatsBuilder, formatPrometheus, formatStatsText } from '../../../src/proxy/admin/stats.js';
import { toStruct } from '../../../src/control/translate/common/protobuf-values.js';
import { decodeMessage } from '../../../src/xds/codec.js';

const PRODUCTPAGE = toStruct({ NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, SERVICE_ACCOUNT: 'bookinfo-productpage', CLUSTER_ID: 'Kubernetes', TRELLIS_PRIVATE: 'x' });
const REVIEWS = toStruct({ NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-v2', LABELS: { app: 'reviews', version: 'v2', 'service.istio.io/canonical-name': 'reviews-svc' } });

function ctx(headers: HttpHeaders, over: { tls?: DownstreamTlsInfo; statPrefix?: string; cluster?: string; code?: number; flags?: ResponseFlag[]; start?: number; end?: number; rx?: number; tx?: number; responseHeaders?: HttpHeaders } = {}): HttpFilterContext {
  const info = {
    startTime: over.start ?? 100,
    endTime: over.end ?? 112,
    protocol: 'HTTP/1.1',
    downstreamRemoteAddress: '127.0.0.1',
    downstreamRemotePort: 40000,
    downstreamLocalAddress: '127.0.0.1',
    downstreamLocalPort: 9080,
    ...(over.tls ? { downstreamTls: over.tls } : {}),
    listenerName: 'l',
    statPrefix: over.statPrefix ?? 'inbound_0.0.0.0_9080',
    requestId: 'r',
    ...(over.cluster ? { upstreamCluster: over.cluster } : {}),
    responseCode: over.code ?? 200,
    responseFlags: new Set(over.flags ?? []),
    bytesReceived: over.rx ?? 0,
    bytesSent: over.tx ?? 0,
    attemptCount: 1,
    filterState: new Map(),
    requestHeaders: headers,
    ...(over.responseHeaders ? { responseHeaders: over.responseHeaders } : {}),
  } as StreamInfo;
  return { requestHeaders: headers, info, routeConfig: () => undefined, clearRouteCache: () => {}, route: () => undefined, sendLocalReply: () => {}, continueDecoding: () => {}, aborted: false };
}

function labelsOf(metrics: IstioMetrics): Record<string, string>[] {
  return metrics.samples().filter((s) => s.metric === 'istio_requests_total').map((s) => Object.fromEntries(s.labels));
}

test('peer metadata header: base64 of a serialized google.protobuf.Struct holding only the exchanged keys', () => {
  const mx = metadataExchangeFilterFactory({ id: 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local', metadata: PRODUCTPAGE }).create({ upstream_discovery: [{ istio_headers: {} }], upstream_propagation: [{ istio_headers: {} }] }, { statPrefix: 'outbound_0.0.0.0_9080' });
  const headers: HttpHeaders = { ':authority': 'reviews:9080' };
  mx.onRequestHeaders!(ctx(headers));
  assert.equal(headers[PEER_METADATA_ID_HEADER], 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local');
  const struct = decodeMessage<{ fields: Record<string, { string_value?: string }> }>('google.protobuf.Struct', Buffer.from(headers[PEER_METADATA_HEADER] as string, 'base64'));
  assert.equal(struct.fields['WORKLOAD_NAME']?.string_value, 'productpage-v1');
  assert.equal(struct.fields['NAMESPACE']?.string_value, 'default');
  assert.equal(struct.fields['TRELLIS_PRIVATE'], undefined, 'non-exchanged node metadata stays private');
  assert.deepEqual(decodePeerMetadata(headers[PEER_METADATA_HEADER] as string)?.['LABELS'], { app: 'productpage', version: 'v1' });
  assert.equal(decodePeerMetadata('not base64 of a struct!!'), undefined);
});

test('metadata exchange: inbound reads and removes the downstream headers, answers with its own; outbound reads and removes the upstream ones', () => {
  const inbound = metadataExchangeFilterFactory({ id: 'reviews-node', metadata: REVIEWS }).create({ downstream_discovery: [{ istio_headers: {} }], downstream_propagation: [{ istio_headers: {} }] }, { statPrefix: 'inbound' });
  const request: HttpHeaders = { [PEER_METADATA_HEADER]: encodePeerMetadata({ WORKLOAD_NAME: 'productpage-v1', NAMESPACE: 'default' }), [PEER_METADATA_ID_HEADER]: 'pp-node' };
  const c = ctx(request);
  inbound.onRequestHeaders!(c);
  assert.equal(request[PEER_METADATA_HEADER], undefined, 'the app does not see the peer headers');
  assert.equal(request[PEER_METADATA_ID_HEADER], undefined);
  assert.deepEqual(c.info.filterState.get('downstream_peer'), { id: 'pp-node', fields: { WORKLOAD_NAME: 'productpage-v1', NAMESPACE: 'default' } });
  const response: HttpHeaders = { [PEER_METADATA_HEADER]: 'app-forged' };
  inbound.onResponseHeaders!(c, response);
  assert.equal(response[PEER_METADATA_ID_HEADER], 'reviews-node');
  assert.equal(decodePeerMetadata(response[PEER_METADATA_HEADER] as string)?.['WORKLOAD_NAME'], 'reviews-v2');

  const outbound = metadataExchangeFilterFactory({ id: 'pp-node', metadata: PRODUCTPAGE }).create(toStruct({ upstream_discovery: [{ istio_headers: {} }], upstream_propagation: [{ istio_headers: {} }] }), { statPrefix: 'outbound' });
  const o = ctx({});
  outbound.onRequestHeaders!(o);
  outbound.onResponseHeaders!(o, response);
  assert.equal(response[PEER_METADATA_HEADER], undefined, 'the client app does not see the peer headers');
  assert.equal((o.info.filterState.get('upstream_peer') as { fields: Record<string, unknown> }).fields['WORKLOAD_NAME'], 'reviews-v2');
});

test('metadata exchange config: unknown fields and methods are refused with their path', () => {
  const f = metadataExchangeFilterFactory({ id: 'n' });
  assert.throws(() => f.create({ upstream_discovery: [{ workload_discovery: {} }] }, { statPrefix: 'x' }), /upstream_discovery\[0\]: only \{ istio_headers: \{\} \} is supported/);
  assert.throws(() => f.create({ bogus: [] }, { statPrefix: 'x' }), /bogus: unknown field/);
});

test('destination reporter: source_* from the downstream peer, destination_* from its own node, mTLS principals and policy', () => {
  const metrics = new IstioMetrics();
  const filter = istioStatsFilterFactory({ nodeMetadata: REVIEWS, metrics }).create({}, { statPrefix: 'inbound_0.0.0.0_9080' });
  const c = ctx({ ':authority': 'reviews:9080', ':method': 'GET' }, { tls: { peerUriSans: ['spiffe://cluster.local/ns/default/sa/bookinfo-productpage'], localUriSans: ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews'] }, cluster: 'inbound|9080||', code: 503, flags: ['UF', 'URX'] });
  c.info.filterState.set('downstream_peer', { fields: { WORKLOAD_NAME: 'productpage-v1', NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v1' }, CLUSTER_ID: 'Kubernetes' } });
  filter.onStreamComplete!(c);
  assert.deepEqual(labelsOf(metrics), [
    {
      reporter: 'destination',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'default',
      source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
      source_app: 'productpage',
      source_version: 'v1',
      source_cluster: 'Kubernetes',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'default',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: 'reviews.default.svc.cluster.local',
      destination_canonical_service: 'reviews-svc',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      destination_cluster: 'unknown',
      request_protocol: 'http',
      response_flags: 'UF,URX',
      connection_security_policy: 'mutual_tls',
      response_code: '503',
      grpc_response_status: '',
    },
  ]);
});

test('source reporter without a peer: destination_* unknown except the service from the outbound cluster; grpc status read', () => {
  const metrics = new IstioMetrics();
  const filter = istioStatsFilterFactory({ nodeMetadata: PRODUCTPAGE, metrics }).create(toStruct({ direction: 'OUTBOUND' }), { statPrefix: 'inbound_looking_prefix' });
  filter.onStreamComplete!(ctx({ ':authority': 'ratings:9080', 'content-type': 'application/grpc' }, { cluster: 'outbound|9080|v1|ratings.bookinfo.svc.cluster.local', responseHeaders: { 'grpc-status': '14' } }));
  const [l] = labelsOf(metrics);
  assert.equal(l!['reporter'], 'source');
  assert.equal(l!['source_workload'], 'productpage-v1');
  assert.equal(l!['source_cluster'], 'Kubernetes');
  assert.equal(l!['destination_workload'], 'unknown');
  assert.equal(l!['destination_canonical_revision'], 'unknown', 'no peer: unknown, not the "latest" default of a known workload');
  assert.equal(l!['destination_service'], 'ratings.bookinfo.svc.cluster.local');
  assert.equal(l!['destination_service_name'], 'ratings');
  assert.equal(l!['destination_service_namespace'], 'bookinfo');
  assert.equal(l!['request_protocol'], 'grpc');
  assert.equal(l!['grpc_response_status'], '14');
  assert.equal(l!['connection_security_policy'], 'unknown');
  assert.equal(l!['response_flags'], '-');
  assert.equal(l!['source_principal'], 'unknown');
});

test('reporter: from the direction, an inbound stat prefix, or SERVER_GATEWAY; bad values refused', () => {
  assert.equal(compileIstioStatsConfig({}, 'inbound_0.0.0.0_9080').reporter, 'destination');
  assert.equal(compileIstioStatsConfig({}, 'outbound_0.0.0.0_9080').reporter, 'source');
  assert.equal(compileIstioStatsConfig({ direction: 'INBOUND' }, 'gateway').reporter, 'destination');
  assert.equal(compileIstioStatsConfig({ reporter: 'SERVER_GATEWAY' }, 'x').reporter, 'destination');
  assert.throws(() => compileIstioStatsConfig({ reporter: 'CLIENT' }, 'x'), /reporter: expected UNSPECIFIED or SERVER_GATEWAY/);
  assert.throws(() => compileIstioStatsConfig({ metrics: [] }, 'x'), /metrics: unknown field/);
});

test('workload labels: canonical defaults and plain-text destination service fallback', () => {
  assert.deepEqual(workloadLabels({ WORKLOAD_NAME: 'details-v1', NAMESPACE: 'ns' }), { workload: 'details-v1', namespace: 'ns', app: 'unknown', version: 'unknown', canonicalService: 'details-v1', canonicalRevision: 'latest', cluster: 'unknown' });
  assert.equal(workloadLabels({ WORKLOAD_NAME: 'x'.repeat(1000) }).workload.length, 256);
  const info = ctx({ ':authority': 'example.com:443' }).info;
  assert.deepEqual(destinationService(info, 'unknown'), { service: 'example.com', name: 'example.com', namespace: 'unknown' });
});

function record(metrics: IstioMetrics, code: string, durationMs: number, requestBytes = 0, responseBytes = 0): void {
  const labels = Object.fromEntries(ISTIO_LABELS.map((n) => [n, 'unknown'])) as Record<string, string>;
  labels['response_code'] = code;
  metrics.record({ labels: labels as IstioLabels, durationMs, requestBytes, responseBytes });
}

test("histograms use Istio's buckets, cumulative with +Inf, _sum and _count; Prometheus text has # TYPE lines and no envoy_ prefix", () => {
  assert.deepEqual(DURATION_BUCKETS_MS, [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);
  const metrics = new IstioMetrics();
  record(metrics, '200', 3, 150, 5000);
  record(metrics, '200', 7000, 0, 20);
  record(metrics, '200', 5000000, 1, 1);
  const b = new StatsBuilder();
  b.plain('server.live', 1, 'gauge');
  b.families(metrics.samples());
  const text = formatPrometheus(b.build());
  assert.match(text, /^# TYPE envoy_server_live gauge$/m);
  assert.match(text, /^# TYPE istio_requests_total counter$/m);
  assert.match(text, /^# TYPE istio_request_duration_milliseconds histogram$/m);
  assert.match(text, /^# TYPE istio_request_bytes histogram$/m);
  assert.match(text, /^# TYPE istio_response_bytes histogram$/m);
  const line = (metric: string, le?: string): number => {
    const re = new RegExp(`^${metric}\\{[^}]*response_code="200"[^}]*${le ? `,le="${le.replace('+', '\\+')}"` : ''}\\} (\\S+)$`, 'm');
    const m = re.exec(text);
    assert.ok(m, `no ${metric} ${le ?? ''} in\n${text}`);
    return Number(m[1]);
  };
  assert.equal(line('istio_requests_total'), 3);
  assert.equal(line('istio_request_duration_milliseconds_bucket', '1'), 0);
  assert.equal(line('istio_request_duration_milliseconds_bucket', '5'), 1);
  assert.equal(line('istio_request_duration_milliseconds_bucket', '10000'), 2);
  assert.equal(line('istio_request_duration_milliseconds_bucket', '3600000'), 2);
  assert.equal(line('istio_request_duration_milliseconds_bucket', '+Inf'), 3);
  assert.equal(line('istio_request_duration_milliseconds_sum'), 5007003);
  assert.equal(line('istio_request_duration_milliseconds_count'), 3);
  assert.equal(line('istio_request_bytes_bucket', '1'), 2);
  assert.equal(line('istio_request_bytes_bucket', '1000'), 3);
  assert.equal(line('istio_response_bytes_bucket', '100'), 2);
  assert.equal(line('istio_response_bytes_bucket', String(BYTES_BUCKETS[BYTES_BUCKETS.length - 1])), 3);
  // The bucket lines of one series appear in increasing le order, as Prometheus expects.
  const les = [...text.matchAll(/^istio_request_duration_milliseconds_bucket\{.*le="([^"]+)"\}/gm)].map((m) => m[1]);
  assert.deepEqual(les, [...DURATION_BUCKETS_MS.map(String), '+Inf']);
  // /stats text shows the counter under Envoy's istiocustom. name, not the histogram series.
  const plain = formatStatsText(b.build());
  assert.match(plain, /^istiocustom\.istio_requests_total\.reporter\.unknown\..*: 3$/m);
  assert.doesNotMatch(plain, /_bucket/);
});

test('cardinality: label sets beyond the cap are dropped and counted, known ones keep counting', () => {
  const metrics = new IstioMetrics(3);
  for (let i = 0; i < 10; i++) record(metrics, String(200 + i), 1);
  record(metrics, '200', 1);
  assert.equal(metrics.seriesCount, 3);
  assert.equal(metrics.droppedCount, 7);
  const counts = metrics.samples().filter((s) => s.metric === 'istio_requests_total').map((s) => s.value);
  assert.deepEqual(counts, [2, 1, 1]);
  const b = new StatsBuilder();
  b.families(metrics.samples());
  assert.match(formatPrometheus(b.build()), /^istio_stats_series_dropped_total 7$/m);
});

test('TCP labels are the request labels for the same peer and TLS sessions, with tcp, the flags and no response code', () => {
  const self = workloadLabels(structToJson(PRODUCTPAGE));
  const peer = { fields: { WORKLOAD_NAME: 'reviews-v2', NAMESPACE: 'default', LABELS: { app: 'reviews', version: 'v2' } } };
  const upstreamTls = { peerUriSans: ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews'], localUriSans: ['spiffe://cluster.local/ns/default/sa/bookinfo-productpage'] };
  const cluster = 'outbound|9080||reviews.default.svc.cluster.local';
  const info = ctx({ ':authority': 'reviews:9080' }, { cluster, statPrefix: 'outbound_0.0.0.0_9080' }).info;
  info.upstreamTls = upstreamTls;
  const http = istioLabels('source', self, peer, info);
  const tcp = istioTcpLabels('source', self, peer, { upstreamCluster: cluster, upstreamTls, responseFlags: 'UF' });
  const { response_code: _code, grpc_response_status: _grpc, request_protocol: _p, response_flags: _f, ...shared } = http;
  assert.deepEqual(tcp, { ...shared, request_protocol: 'tcp', response_flags: 'UF' });
  assert.equal(tcp.source_principal, 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage');
  assert.equal(tcp.destination_principal, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');

  // Destination side: principals and mutual_tls from the downstream session; the service from the mTLS SNI.
  const downstreamTls = { sni: 'outbound_.9080_._.reviews.default.svc.cluster.local', peerUriSans: ['spiffe://a'], localUriSans: ['spiffe://b'] };
  const inbound = istioTcpLabels('destination', self, peer, { downstreamTls, responseFlags: '-' });
  assert.equal(inbound.connection_security_policy, 'mutual_tls');
  assert.equal(inbound.source_principal, 'spiffe://a');
  assert.equal(inbound.destination_principal, 'spiffe://b');
  assert.equal(inbound.destination_service_name, 'reviews');
  assert.equal(inbound.source_workload, 'reviews-v2', 'the peer is the source on the destination side');

  // Short hosts: a request's is qualified in the destination namespace, a connection's keeps its first label.
  const short = 'outbound|9080||reviews';
  const shortInfo = ctx({ ':authority': 'reviews:9080' }, { cluster: short }).info;
  assert.equal(istioLabels('source', self, peer, shortInfo).destination_service, 'reviews.default.svc.cluster.local');
  assert.equal(istioTcpLabels('source', self, peer, { upstreamCluster: 'outbound|9080||reviews.other', responseFlags: '-' }).destination_service_name, 'reviews');
  assert.equal(istioLabels('source', self, peer, ctx({}, { cluster: 'outbound|9080||reviews.other' }).info).destination_service_name, 'reviews.other');
});

test('TCP series are named on /stats as the HTTP ones: istiocustom.<metric> then label.value pairs', () => {
  const self = workloadLabels(structToJson(PRODUCTPAGE));
  const tcp = new IstioTcpMetrics();
  const recorder = tcp.connection();
  recorder.setLabels(istioTcpLabels('source', self, undefined, { upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local', responseFlags: '-' }));
  recorder.sent(5);
  const sent = tcp.samples().find((s) => s.metric === 'istio_tcp_sent_bytes_total')!;
  assert.equal(sent.value, 5);
  assert.ok(sent.name.startsWith('istiocustom.istio_tcp_sent_bytes_total.reporter.source.source_workload.productpage-v1.'), sent.name);
  assert.ok(sent.name.endsWith('.request_protocol.tcp.response_flags.-.connection_security_policy.unknown'), sent.name);
});
