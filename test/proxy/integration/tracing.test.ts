// Tracing through two real proxies (an outbound sidecar in front of an inbound one) to an OTLP/HTTP receiver on 127.0.0.1:
// one trace per request, a CLIENT span and a SERVER span whose parent is the client span, and the app sees the server span.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { get, startDataPlane, startUpstream, staticCluster, type Json } from './support.js';
import { TRACING_FILTER_NAME, TRACING_TYPE_URL } from '../../../src/proxy/filters/tracing/tracing-filter.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue: string } }[];
}
interface Report {
  service: string;
  spans: OtlpSpan[];
}

async function otlpReceiver(): Promise<{ port: number; reports: Report[]; close(): Promise<void> }> {
  const reports: Report[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/json') {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { resource: { attributes: { key: string; value: { stringValue: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of body.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        reports.push({ service, spans: rs.scopeSpans.flatMap((s) => s.spans) });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    reports,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function tracingFilter(receiverPort: number, serviceName: string, samplingPercent: number): Json {
  return {
    name: TRACING_FILTER_NAME,
    typed_config: {
      '@type': TRACING_TYPE_URL,
      random_sampling: { value: samplingPercent },
      provider: {
        name: 'envoy.tracers.opentelemetry',
        typed_config: {
          '@type': 'type.googleapis.com/google.protobuf.Struct',
          value: { service_name: serviceName, http_service: { http_uri: { uri: `http://127.0.0.1:${receiverPort}/v1/traces` } } },
        },
      },
    },
  };
}

const tag = (s: OtlpSpan, key: string): string | undefined => s.attributes.find((a) => a.key === key)?.value.stringValue;

test('two proxies: one trace per request with a client span and a server span, parent ids linked, exported over OTLP/HTTP', async () => {
  const receiver = await otlpReceiver();
  const app = await startUpstream('reviews');
  const inbound = await startDataPlane({
    hcm: { stat_prefix: 'inbound_0.0.0.0_9080' },
    // The server side samples nothing by itself: it must follow the caller's decision.
    httpFilters: [tracingFilter(receiver.port, 'reviews.default', 0)],
    virtualHosts: [{ name: 'inbound', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'inbound|9080||' }, decorator: { operation: 'reviews.default.svc.cluster.local:9080/*' } }] }],
    clusters: [staticCluster('inbound|9080||', [app.port])],
  });
  const outbound = await startDataPlane({
    hcm: { stat_prefix: 'outbound_0.0.0.0_9080' },
    httpFilters: [tracingFilter(receiver.port, 'productpage.default', 100)],
    virtualHosts: [{ name: 'reviews', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||reviews.default.svc.cluster.local' }, decorator: { operation: 'reviews.default.svc.cluster.local:9080/*' } }] }],
    clusters: [staticCluster('outbound|9080||reviews.default.svc.cluster.local', [inbound.port])],
  });
  try {
    const N = 5; // Envoy's default batch (min_flush_spans): each proxy reports once
    for (let i = 0; i < N; i++) {
      const r = await get(outbound.address, `/reviews/${i}`, { headers: { host: 'reviews:9080', 'user-agent': 'tracing-test' } });
      assert.equal(r.status, 200);
    }
    for (let i = 0; i < 100 && receiver.reports.reduce((n, r) => n + r.spans.length, 0) < 2 * N; i++) await new Promise((r) => setTimeout(r, 100));
    const clientSpans = receiver.reports.filter((r) => r.service === 'productpage.default').flatMap((r) => r.spans);
    const serverSpans = receiver.reports.filter((r) => r.service === 'reviews.default').flatMap((r) => r.spans);
    assert.equal(clientSpans.length, N, 'one CLIENT span per request from the outbound proxy');
    assert.equal(serverSpans.length, N, 'one SERVER span per request from the inbound proxy');
    assert.equal(app.seen.length, N);
    for (const seen of app.seen) {
      const i = Number(seen.path.split('/').pop());
      const client = clientSpans.find((s) => tag(s, 'http.url') === `http://reviews:9080/reviews/${i}`)!;
      assert.ok(client, `client span of /reviews/${i}`);
      const server = serverSpans.find((s) => s.traceId === client.traceId)!;
      assert.ok(server, `server span in trace ${client.traceId}`);
      assert.equal(new Set([...clientSpans, ...serverSpans].filter((s) => s.traceId === client.traceId)).size, 2, 'exactly two spans in the trace');
      assert.equal(client.kind, 3);
      assert.equal(client.parentSpanId, undefined, 'the outbound proxy started the trace');
      assert.equal(server.kind, 2);
      assert.equal(server.parentSpanId, client.spanId);
      assert.equal(client.name, 'reviews.default.svc.cluster.local:9080/*');
      assert.equal(server.name, 'reviews.default.svc.cluster.local:9080/*');
      assert.equal(tag(client, 'upstream_cluster'), 'outbound|9080||reviews.default.svc.cluster.local');
      assert.equal(tag(server, 'upstream_cluster'), 'inbound|9080||');
      assert.equal(tag(client, 'http.status_code'), '200');
      assert.equal(tag(client, 'http.method'), 'GET');
      assert.equal(tag(client, 'user_agent'), 'tracing-test');
      assert.equal(tag(client, 'node_id'), 'integration');
      assert.equal(tag(client, 'guid:x-request-id'), tag(server, 'guid:x-request-id'), 'x-request-id travels with the trace');
      // The app is the child of the server span: that is the context it must forward.
      assert.equal(seen.headers['traceparent'], `00-${client.traceId}-${server.spanId}-01`);
      assert.equal(seen.headers['x-b3-traceid'], client.traceId);
      assert.equal(seen.headers['x-b3-spanid'], server.spanId);
      assert.equal(seen.headers['x-b3-parentspanid'], client.spanId);
      assert.equal(seen.headers['x-b3-sampled'], '1');
      assert.equal(seen.headers['x-envoy-decorator-operation'], undefined);
    }
  } finally {
    await outbound.close();
    await inbound.close();
    await app.close();
    await receiver.close();
  }
});

test('a proxy that stops sends the spans still queued (fewer than a batch, before the flush timer)', async () => {
  const receiver = await otlpReceiver();
  const app = await startUpstream('details');
  const proxy = await startDataPlane({
    hcm: { stat_prefix: 'outbound_0.0.0.0_9080' },
    httpFilters: [tracingFilter(receiver.port, 'productpage.default', 100)],
    virtualHosts: [{ name: 'details', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'details' } }] }],
    clusters: [staticCluster('details', [app.port])],
  });
  try {
    assert.equal((await get(proxy.address, '/details/0', { headers: { host: 'details:9080' } })).status, 200);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(receiver.reports.length, 0, 'one span is below the batch size and the 5 s timer has not fired');
    await proxy.close();
    const spans = receiver.reports.flatMap((r) => r.spans);
    assert.equal(spans.length, 1);
    // No route decorator: Envoy's default egress operation name.
    assert.equal(spans[0]!.name, 'egress details:9080');
  } finally {
    await proxy.close();
    await app.close();
    await receiver.close();
  }
});
