// The tracing filter against a recorded filter context and a real collector on 127.0.0.1: sampling, propagation, Envoy's span tags, Zipkin v2 and OTLP/HTTP export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { HttpFilter, HttpFilterContext } from '../../../../src/proxy/http/filter.js';
import type { HttpHeaders } from '../../../../src/proxy/http/headers.js';
import type { StreamInfo } from '../../../../src/proxy/http/stream-info.js';
import type { ResponseFlag } from '../../../../src/proxy/http/response-flags.js';
import { packAny } from '../../../../src/xds/codec.js';
import { toStruct } from '../../../../src/control/translate/common/protobuf-values.js';
import { SpanExporterPool, tracingFilterFactory, TRACING_MESSAGE } from '../../../../src/proxy/filters/tracing/tracing-filter.js';
import { SpanExporter } from '../../../../src/proxy/filters/tracing/span-exporter.js';
import { XdsValidationError } from '../../../../src/common/errors.js';
import { decodeMessage, encodeMessage } from '../../../../src/xds/codec.js';

interface Collector {
  readonly url: string;
  readonly bodies: { path: string; body: unknown }[];
  status: number;
  close(): Promise<void>;
  waitFor(n: number): Promise<void>;
}

async function collector(): Promise<Collector> {
  const bodies: { path: string; body: unknown }[] = [];
  const waiters: (() => void)[] = [];
  const c = { bodies, status: 202 } as Collector & { status: number };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      bodies.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(c.status).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  Object.assign(c, {
    url: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
    waitFor: async (n: number) => {
      for (let i = 0; i < 50 && bodies.length < n; i++) await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 100); });
      assert.ok(bodies.length >= n, `collector got ${bodies.length} reports, expected ${n}`);
    },
  });
  return c;
}

function context(headers: HttpHeaders, operation?: string): HttpFilterContext {
  const info = {
    startTime: performance.now(),
    protocol: 'HTTP/1.1',
    downstreamRemoteAddress: '10.0.0.7',
    downstreamRemotePort: 40000,
    downstreamLocalAddress: '10.0.0.1',
    downstreamLocalPort: 9080,
    listenerName: 'l',
    statPrefix: 'x',
    requestId: 'e6f1c4a6-0000-4000-8000-000000000001',
    responseFlags: new Set<ResponseFlag>(),
    bytesReceived: 0,
    bytesSent: 0,
    attemptCount: 0,
    filterState: new Map(),
    requestHeaders: headers,
  } as StreamInfo;
  return {
    requestHeaders: headers,
    info,
    routeConfig: () => undefined,
    clearRouteCache: () => {},
    route: () => (operation ? ({ operation } as ReturnType<HttpFilterContext['route']>) : undefined),
    sendLocalReply: () => {},
    continueDecoding: () => {},
    aborted: false,
  };
}

const NODE = { id: 'sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local', cluster: 'productpage.default', zone: 'zone-a' };

function zipkinConfig(address: string, sampling = 100): unknown {
  return {
    random_sampling: { value: sampling },
    provider: { name: 'envoy.tracers.zipkin', typed_config: packAny('google.protobuf.Struct', toStruct({ collector_address: address, collector_endpoint: '/api/v2/spans' })) },
  };
}

/** The filter config as it arrives over xDS: encoded and decoded through the real message. */
function viaWire(config: unknown): unknown {
  return decodeMessage(TRACING_MESSAGE, encodeMessage(TRACING_MESSAGE, config as object));
}

function make(config: unknown, statPrefix: string, pool: SpanExporterPool, stats: Record<string, number> = {}): HttpFilter {
  return tracingFilterFactory({ node: NODE, exporters: pool }).create(viaWire(config), { statPrefix, stats });
}

test('outbound: a new trace, a CLIENT span named by the route decorator, propagated as the upstream parent, exported as Zipkin v2 JSON', async () => {
  const col = await collector();
  const pool = new SpanExporterPool({ batchSize: 1, flushIntervalMs: 50 });
  try {
    const f = make(zipkinConfig(col.url), 'outbound_0.0.0.0_9080', pool);
    const h: HttpHeaders = { ':method': 'GET', ':path': '/reviews/1', ':authority': 'reviews:9080', ':scheme': 'http', 'user-agent': 'curl/8', 'x-request-id': 'e6f1' };
    const ctx = context(h, 'reviews.default.svc.cluster.local:9080/*');
    assert.equal(f.onRequestHeaders!(ctx), 'continue');
    assert.match(String(h['traceparent']), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.equal(h['x-b3-sampled'], '1');
    assert.equal(h['x-b3-parentspanid'], undefined);
    assert.equal(h['x-envoy-decorator-operation'], 'reviews.default.svc.cluster.local:9080/*');
    Object.assign(ctx.info, { responseCode: 503, bytesReceived: 12, bytesSent: 95, upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local', upstreamHost: '10.0.0.9:9080' });
    (ctx.info.responseFlags as Set<ResponseFlag>).add('UF');
    f.onStreamComplete!(ctx);
    await col.waitFor(1);
    assert.equal(col.bodies[0]!.path, '/api/v2/spans');
    const spans = col.bodies[0]!.body as Record<string, unknown>[];
    assert.equal(spans.length, 1);
    const s = spans[0]!;
    assert.equal(s['traceId'], h['x-b3-traceid']);
    assert.equal(s['id'], h['x-b3-spanid']);
    assert.equal(s['parentId'], undefined);
    assert.equal(s['name'], 'reviews.default.svc.cluster.local:9080/*');
    assert.equal(s['kind'], 'CLIENT');
    assert.equal(typeof s['timestamp'], 'number');
    assert.ok((s['timestamp'] as number) > 1.6e15, 'timestamp in epoch microseconds');
    assert.deepEqual(s['localEndpoint'], { serviceName: 'productpage.default' });
    assert.deepEqual(s['tags'], {
      component: 'proxy',
      node_id: NODE.id,
      zone: 'zone-a',
      'guid:x-request-id': 'e6f1c4a6-0000-4000-8000-000000000001',
      'http.url': 'http://reviews:9080/reviews/1',
      'http.method': 'GET',
      downstream_cluster: '-',
      user_agent: 'curl/8',
      'http.protocol': 'HTTP/1.1',
      'peer.address': '10.0.0.7',
      request_size: '12',
      response_size: '95',
      response_flags: 'UF',
      'http.status_code': '503',
      upstream_cluster: 'outbound|9080||reviews.default.svc.cluster.local',
      'upstream_cluster.name': 'outbound|9080||reviews.default.svc.cluster.local',
      upstream_address: '10.0.0.9:9080',
      error: 'true',
    });
    await pool.all()[0]!.settled();
    assert.equal(pool.all()[0]!.stats.spans_sent, 1);
  } finally {
    await pool.close();
    await col.close();
  }
});

test('inbound: continues the caller\'s B3 trace as a SERVER span whose parent is the caller\'s span; the caller\'s decorator names it', async () => {
  const col = await collector();
  const pool = new SpanExporterPool({ batchSize: 1, flushIntervalMs: 50 });
  try {
    const f = make(zipkinConfig(col.url, 0), 'inbound_0.0.0.0_9080', pool);
    const h: HttpHeaders = {
      ':method': 'GET', ':path': '/r', ':authority': 'reviews:9080',
      'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-sampled': '1',
      'x-envoy-decorator-operation': 'reviews.default.svc.cluster.local:9080/*',
    };
    const ctx = context(h, 'inbound-route-op');
    f.onRequestHeaders!(ctx);
    assert.equal(h['x-b3-traceid'], '463ac35c9f6413ad48485a3953bb6124');
    assert.equal(h['x-b3-parentspanid'], 'a2fb4a1d1a96d312');
    assert.notEqual(h['x-b3-spanid'], 'a2fb4a1d1a96d312');
    assert.equal(h['x-envoy-decorator-operation'], undefined, 'not forwarded to the app');
    Object.assign(ctx.info, { responseCode: 200 });
    f.onStreamComplete!(ctx);
    await col.waitFor(1);
    const s = (col.bodies[0]!.body as Record<string, unknown>[])[0]!;
    assert.equal(s['kind'], 'SERVER');
    assert.equal(s['parentId'], 'a2fb4a1d1a96d312');
    assert.equal(s['name'], 'reviews.default.svc.cluster.local:9080/*');
    assert.equal((s['tags'] as Record<string, string>)['error'], undefined);
  } finally {
    await pool.close();
    await col.close();
  }
});

test('sampling: 0% samples nothing but still propagates an unsampled context; a caller\'s "not sampled" wins over 100%; x-envoy-force-trace traces', async () => {
  const pool = new SpanExporterPool({ batchSize: 1000, flushIntervalMs: 60_000 });
  try {
    const stats: Record<string, number> = {};
    const none = make(zipkinConfig('127.0.0.1:9', 0), 'outbound_x', pool, stats);
    for (let i = 0; i < 50; i++) {
      const h: HttpHeaders = { ':method': 'GET', ':path': '/', ':authority': 'a' };
      const ctx = context(h);
      none.onRequestHeaders!(ctx);
      assert.equal(h['x-b3-sampled'], '0');
      assert.match(String(h['traceparent']), /-00$/);
      none.onStreamComplete!(ctx);
    }
    assert.equal(stats['tracing.not_traceable'], 50);
    const forced: HttpHeaders = { ':method': 'GET', ':path': '/', ':authority': 'a', 'x-envoy-force-trace': 'true' };
    none.onRequestHeaders!(context(forced));
    assert.equal(forced['x-b3-sampled'], '1');
    const all = make(zipkinConfig('127.0.0.1:9', 100), 'outbound_x', pool);
    const declined: HttpHeaders = { ':method': 'GET', ':path': '/', ':authority': 'a', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' };
    all.onRequestHeaders!(context(declined));
    assert.match(String(declined['traceparent']), /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/);
    // Nothing was queued for the unsampled requests.
    assert.equal((pool.all()[0] as unknown as { queue: unknown[] }).queue.length, 0);
  } finally {
    await pool.close();
  }
});

test('bad config is refused with field paths: sampling out of range, unknown provider, missing collector', () => {
  const pool = new SpanExporterPool();
  assert.throws(() => make({ random_sampling: { value: 150 } }, 'outbound_x', pool), (e: unknown) => e instanceof XdsValidationError && e.details.some((d) => d.startsWith('random_sampling.value')));
  assert.throws(() => make({ provider: { name: 'envoy.tracers.datadog' } }, 'outbound_x', pool), (e: unknown) => e instanceof XdsValidationError && e.details.some((d) => d.includes('provider.name')));
  assert.throws(() => make({ provider: { name: 'envoy.tracers.zipkin', typed_config: packAny('google.protobuf.Struct', toStruct({})) } }, 'outbound_x', pool), (e: unknown) => e instanceof XdsValidationError && e.details.some((d) => d.includes('collector_address')));
});

test('OTLP/HTTP JSON export: resource service.name, hex ids, nanosecond strings, kinds, error status; failures are counted and dropped, the queue is bounded', async () => {
  const col = await collector();
  const exporter = new SpanExporter({ format: 'otlp', url: `http://${col.url}/v1/traces`, source: { serviceName: 'reviews.default' }, batchSize: 2, flushIntervalMs: 60_000, maxQueuedSpans: 3 });
  try {
    const base = { traceId: '48485a3953bb6124', startMicros: 1_700_000_000_000_000, durationMicros: 1500 };
    exporter.add({ ...base, spanId: '1111111111111111', name: 'a', kind: 'CLIENT', tags: { 'http.status_code': '200' } });
    exporter.add({ ...base, spanId: '2222222222222222', parentSpanId: '1111111111111111', name: 'b', kind: 'SERVER', tags: { error: 'true' } });
    await col.waitFor(1);
    const body = col.bodies[0]!.body as { resourceSpans: { resource: unknown; scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
    assert.equal(col.bodies[0]!.path, '/v1/traces');
    assert.deepEqual(body.resourceSpans[0]!.resource, { attributes: [{ key: 'service.name', value: { stringValue: 'reviews.default' } }] });
    const [a, b] = body.resourceSpans[0]!.scopeSpans[0]!.spans;
    assert.equal(a!['traceId'], '000000000000000048485a3953bb6124');
    assert.equal(a!['kind'], 3);
    assert.equal(a!['startTimeUnixNano'], '1700000000000000000');
    assert.equal(a!['endTimeUnixNano'], '1700000000001500000');
    assert.deepEqual(a!['attributes'], [{ key: 'http.status_code', value: { stringValue: '200' } }]);
    assert.equal(b!['kind'], 2);
    assert.equal(b!['parentSpanId'], '1111111111111111');
    assert.deepEqual(b!['status'], { code: 2 });
    await exporter.settled();
    assert.equal(exporter.stats.spans_sent, 2);
    // The collector refuses: the report is counted as dropped, not retried.
    col.status = 500;
    exporter.add({ ...base, spanId: '3333333333333333', name: 'c', kind: 'CLIENT', tags: {} });
    await exporter.flush();
    assert.equal(exporter.stats.reports_dropped, 1);
    // Bounded queue: past maxQueuedSpans spans are dropped and counted (no flush is due: the batch triggers async).
    for (let i = 0; i < 5; i++) exporter.add({ ...base, spanId: '4444444444444444', name: 'd', kind: 'CLIENT', tags: {} });
    assert.equal(exporter.stats.spans_dropped_queue_full, 2);
  } finally {
    await exporter.close();
    await col.close();
  }
  // A collector that is gone: the failure is counted.
  const gone = new SpanExporter({ format: 'zipkin', url: `http://${col.url}/api/v2/spans`, source: { serviceName: 's' }, batchSize: 100 });
  gone.add({ traceId: '48485a3953bb6124', spanId: '1111111111111111', name: 'x', kind: 'CLIENT', startMicros: 1, durationMicros: 1, tags: {} });
  await gone.flush();
  assert.equal(gone.stats.reports_failed, 1);
  await gone.close();
});
