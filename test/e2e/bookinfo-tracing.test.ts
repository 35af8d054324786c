// Tracing on Bookinfo under `trellis up`: a Telemetry (root namespace) sends every sidecar's and the gateway's spans to an
// OTLP/HTTP receiver on 127.0.0.1; each product page is one trace with the span of every hop and correct parent ids.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { copyBookinfo, freePortBase, startTrellisUp, stopTrellisUp } from './trellis-up.js';

const PAGES = 6;

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

let dir = '';
let up: ChildProcess | undefined;
let output = '';
let gatewayPort = 0;
let receiver: Receiver | undefined;

before(async () => {
  receiver = await otlpReceiver();
  const telemetry = stringify({
    apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 'mesh-default', namespace: 'istio-system' },
    spec: { tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 100 }] },
  });
  ({ dir, gatewayPort } = await copyBookinfo('trellis-bookinfo-tracing-', {
    config: { 'telemetry.yaml': telemetry },
    mesh: { extensionProviders: [{ name: 'otel', opentelemetry: { service: '127.0.0.1', port: receiver.port, http: { path: '/v1/traces' } } }] },
  }));
  const base = await freePortBase(dir);

  up = await startTrellisUp(dir, base, (c) => (output += c));
});

after(async () => {
  await stopTrellisUp(up, dir);
  await receiver?.close();
});


interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue: string } }[];
  service: string;
}
interface Receiver {
  readonly port: number;
  readonly spans: OtlpSpan[];
  close(): Promise<void>;
}

async function otlpReceiver(): Promise<Receiver> {
  const spans: OtlpSpan[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { resource: { attributes: { key: string; value: { stringValue: string } }[] }; scopeSpans: { spans: Omit<OtlpSpan, 'service'>[] }[] }[];
      };
      for (const rs of body.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const s of rs.scopeSpans.flatMap((x) => x.spans)) spans.push({ ...s, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    spans,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const tag = (s: OtlpSpan, key: string): string | undefined => s.attributes.find((a) => a.key === key)?.value.stringValue;
const SERVER = 2;
const CLIENT = 3;

test(`${PAGES} product pages, each started with a caller's traceparent: one trace per page with the span of every hop, parents linked`, async () => {
  const roots = new Map<string, string>();
  for (let i = 0; i < PAGES; i++) {
    const traceId = randomBytes(16).toString('hex');
    const rootSpan = randomBytes(8).toString('hex');
    roots.set(traceId, rootSpan);
    assert.equal((await get(gatewayPort, '/productpage', { traceparent: `00-${traceId}-${rootSpan}-01` })).status, 200);
  }
  // Spans leave each proxy by batch of 5 or on the 5 s timer: wait (bounded) until every page's trace has its ratings-less minimum of 6 spans.
  const trace = (id: string): OtlpSpan[] => receiver!.spans.filter((s) => s.traceId === id);
  for (let i = 0; i < 150 && [...roots.keys()].some((id) => trace(id).length < 6); i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 6000)); // one more flush period, so ratings spans (when the page went to reviews v2/v3) are in too
  let withRatings = 0; // pages that went to reviews v2/v3 (informational: the split is random)
  for (const [traceId, rootSpan] of roots) {
    const spans = trace(traceId);
    const describe = spans.map((s) => `${s.service} ${s.kind === SERVER ? 'SERVER' : 'CLIENT'} ${s.name} ${s.spanId}<-${s.parentSpanId ?? '-'}`).join('\n');
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    assert.equal(byId.size, spans.length, `unique span ids:\n${describe}`);
    // The gateway's span continues the caller's.
    const gateway = spans.filter((s) => s.parentSpanId === rootSpan);
    assert.equal(gateway.length, 1, `one span under the caller's:\n${describe}`);
    assert.equal(gateway[0]!.kind, CLIENT, 'gateways report CLIENT spans');
    assert.equal(tag(gateway[0]!, 'http.url')?.endsWith('/productpage'), true);
    // Every other span's parent is in the trace: the tree is connected.
    for (const s of spans) if (s !== gateway[0]) assert.ok(s.parentSpanId && byId.has(s.parentSpanId), `parent of ${s.service} ${s.name}:\n${describe}`);
    const server = (service: string): OtlpSpan[] => spans.filter((s) => s.kind === SERVER && s.service === service);
    const client = (service: string, host: string): OtlpSpan[] => spans.filter((s) => s.kind === CLIENT && s.service === service && (tag(s, 'upstream_cluster') ?? '').includes(`||${host}.`));
    const pp = server('productpage.default');
    assert.equal(pp.length, 1, `productpage SERVER span:\n${describe}`);
    assert.equal(pp[0]!.parentSpanId, gateway[0]!.spanId);
    for (const callee of ['details', 'reviews']) {
      const out = client('productpage.default', callee);
      assert.equal(out.length, 1, `productpage → ${callee} CLIENT span:\n${describe}`);
      assert.equal(out[0]!.parentSpanId, pp[0]!.spanId, `productpage's call to ${callee} is a child of its SERVER span`);
      const inbound = server(`${callee}.default`);
      assert.equal(inbound.length, 1, `${callee} SERVER span:\n${describe}`);
      assert.equal(inbound[0]!.parentSpanId, out[0]!.spanId);
      assert.equal(tag(inbound[0]!, 'http.status_code'), '200');
    }
    const ratingsOut = client('reviews.default', 'ratings');
    if (ratingsOut.length > 0) {
      withRatings++;
      assert.equal(ratingsOut[0]!.parentSpanId, server('reviews.default')[0]!.spanId);
      const ratings = server('ratings.default');
      assert.equal(ratings.length, 1, `ratings SERVER span:\n${describe}`);
      assert.equal(ratings[0]!.parentSpanId, ratingsOut[0]!.spanId);
    }
    assert.equal(spans.length, ratingsOut.length > 0 ? 8 : 6, `every hop once:\n${describe}`);
  }
});
