// The agent's status port: merged metrics from a fake proxy admin and a fake app, failures counted and left out,
// readiness from the proxy's /ready, the CLI flag wiring and its refusals.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startStatusServer, type StatusServer } from '../../src/agent/status-server.js';

function get(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const server = createServer(handler!);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

let ready = true;
let adminQueries: string[] = [];
let appHeaders: Record<string, unknown> = {};
let appStatus = 200;
const servers: Server[] = [];
let adminPort = 0;
let appPort = 0;
let status: StatusServer;

before(async () => {
  const admin = await serve((req, res) => {
    if (req.url?.startsWith('/stats/prometheus')) {
      adminQueries.push(req.url);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('# TYPE istio_requests_total counter\nistio_requests_total{response_code="200"} 4\n');
    } else if (req.url === '/ready') res.writeHead(ready ? 200 : 503).end(ready ? 'LIVE\n' : 'PRE_INITIALIZING\n');
    else res.writeHead(404).end();
  });
  const app = await serve((req, res) => {
    appHeaders = req.headers;
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    res.writeHead(appStatus, { 'content-type': 'text/plain' }).end('# HELP productpage_requests_total Requests.\n# TYPE productpage_requests_total counter\nproductpage_requests_total{code="200"} 7\n# TYPE istio_requests_total counter\nistio_requests_total 1\n');
  });
  servers.push(admin.server, app.server);
  adminPort = admin.port;
  appPort = app.port;
  status = await startStatusServer({ port: 0, adminPort, application: { port: appPort, path: '/metrics' } });
});

after(async () => {
  await status?.close();
  for (const s of servers) await new Promise((r) => s.close(r));
});

test('/stats/prometheus and /metrics: agent, proxy and app metrics, each family once; Prometheus headers passed on', async () => {
  for (const path of ['/stats/prometheus', '/metrics']) {
    const res = await get(status.port, path, 'GET', { 'user-agent': 'Prometheus/2.42.0', 'x-prometheus-scrape-timeout-seconds': '1' });
    assert.equal(res.status, 200);
    assert.equal(res.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(res.body, /^istio_agent_scrapes_total \d+$/m);
    assert.match(res.body, /^istio_requests_total\{response_code="200"\} 4$/m);
    assert.match(res.body, /^productpage_requests_total\{code="200"\} 7$/m);
    assert.doesNotMatch(res.body, /^istio_requests_total 1$/m, "the app's istio_requests_total is left out: the proxy's came first");
    const types = [...res.body.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    assert.deepEqual(types, [...new Set(types)], 'no family twice');
  }
  assert.equal(appHeaders['user-agent'], 'Prometheus/2.42.0');
  assert.equal(appHeaders['x-prometheus-scrape-timeout-seconds'], '1');
  const res = await get(status.port, '/stats/prometheus?usedonly');
  assert.equal(adminQueries.at(-1), '/stats/prometheus?usedonly', "the query string goes to the proxy's endpoint");
  assert.match(res.body, /^istio_agent_scrapes_total 3$/m, 'three scrapes counted, this one included');
});

test("the app failing: the proxy's metrics still served, istio_agent_scrape_failures_total{type=\"application\"} counts it", async () => {
  appStatus = 500;
  try {
    const before = Number(/istio_agent_scrape_failures_total\{type="application"\} (\d+)/.exec((await get(status.port, '/metrics')).body)?.[1]);
    const res = await get(status.port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.body, /^istio_requests_total\{response_code="200"\} 4$/m);
    assert.doesNotMatch(res.body, /productpage_requests_total/);
    assert.match(res.body, new RegExp(`^istio_agent_scrape_failures_total\\{type="application"\\} ${before + 1}$`, 'm'));
  } finally {
    appStatus = 200;
  }
});

test('/healthz/ready follows the proxy: 503 before it is ready, then 200 and istio_agent_startup_duration_seconds', async () => {
  ready = false;
  const notReady = await get(status.port, '/healthz/ready');
  assert.equal(notReady.status, 503);
  assert.match(notReady.body, /PRE_INITIALIZING/);
  assert.doesNotMatch((await get(status.port, '/metrics')).body, /istio_agent_startup_duration_seconds/);
  ready = true;
  assert.equal((await get(status.port, '/healthz/ready')).status, 200);
  assert.match((await get(status.port, '/metrics')).body, /^istio_agent_startup_duration_seconds \d+(\.\d+)?$/m);
});

test('a proxy that does not answer: 503 on readiness, failures{type="envoy"} counted, other paths 404, other methods 405', async () => {
  const dead = await serve(() => undefined);
  const port = dead.port;
  await new Promise((r) => dead.server.close(r));
  const lonely = await startStatusServer({ port: 0, adminPort: port });
  try {
    assert.equal((await get(lonely.port, '/healthz/ready')).status, 503);
    const res = await get(lonely.port, '/stats/prometheus');
    assert.equal(res.status, 200);
    assert.match(res.body, /^istio_agent_scrape_failures_total\{type="envoy"\} 1$/m);
    assert.match(res.body, /^istio_agent_scrape_failures_total\{type="application"\} 0$/m);
    assert.equal((await get(lonely.port, '/nope')).status, 404);
    assert.equal((await get(lonely.port, '/metrics', 'POST')).status, 405);
  } finally {
    await lonely.close();
  }
});

test('a taken status port is an error at start', async () => {
  await assert.rejects(startStatusServer({ port: status.port, adminPort }), /EADDRINUSE/);
});
