import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshSource, type DashboardState } from '../../src/dashboard/mesh-source.js';
import { startDashboardServer } from '../../src/dashboard/dashboard-server.js';
import { startFakeMesh } from './fake-mesh.js';

test('the dashboard server scrapes the mesh and serves the graph, config, sync status and the page over HTTP', async (t) => {
  const mesh = await startFakeMesh();
  t.after(() => mesh.close());
  const source = new MeshSource({ monitoringUrl: mesh.monitoringUrl, proxyAdminUrls: [mesh.adminUrl, mesh.deadAdminUrl], windowSeconds: 30, timeoutMs: 1_000 });
  const dashboard = await startDashboardServer(source, { refreshMs: 100 });
  t.after(() => dashboard.close());

  let state: DashboardState | undefined;
  for (let i = 0; i < 50; i++) {
    state = (await (await fetch(`${dashboard.url}/api/state`)).json()) as DashboardState;
    if (state.graph.edges.length > 0 && state.graph.edges.every((e) => (e.rps ?? 0) > 0)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(state);
  const edges = Object.fromEntries(state.graph.edges.map((e) => [`${e.source}->${e.destination}`, e]));
  assert.deepEqual(Object.keys(edges).sort(), ['productpage->details', 'productpage->reviews', 'reviews->ratings']);
  const pr = edges['productpage->reviews']!;
  assert.ok(pr.rps! > 0, `productpage->reviews rps ${pr.rps}`);
  assert.equal(pr.errorRate, 0.05);
  assert.equal(pr.mtls, true);
  assert.ok(pr.p99Ms! > 5 && pr.p99Ms! <= 10, `p99 ${pr.p99Ms}`);
  assert.equal(edges['productpage->details']!.mtls, false);
  assert.deepEqual(state.services['reviews']!.virtualServices.map((r) => r.metadata.name), ['reviews-route']);
  assert.deepEqual(state.services['reviews']!.destinationRules.map((r) => r.metadata.name), ['reviews']);
  assert.equal(state.services['ratings']!.problems.length, 1);
  assert.equal(state.configProblems, 1);
  assert.equal(state.sync[1]!.types['LDS']!.state, 'NACKED');
  assert.match(state.sync[1]!.types['LDS']!.nack!, /unknown filter/);
  // The dead proxy is reported, and does not hide the others.
  assert.deepEqual(state.sources.filter((s) => !s.ok).map((s) => s.url), [`${mesh.deadAdminUrl}/stats/prometheus`]);

  const page = await fetch(`${dashboard.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type')!, /text\/html/);
  assert.match(await page.text(), /<script type="module" src="\/app.js">/);
  for (const path of ['/app.js', '/dagre.min.js']) {
    const res = await fetch(`${dashboard.url}${path}`);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-type')!, /javascript/);
    assert.ok((await res.text()).length > 1000, `${path} has content`);
  }
  const missing = await fetch(`${dashboard.url}/nope`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /\/api\/state/);
  assert.equal((await fetch(`${dashboard.url}/api/state`, { method: 'POST' })).status, 405);
});

test('with --prometheus, the graph comes from PromQL increase() queries over the window', async (t) => {
  const { createServer } = await import('node:http');
  const queries: string[] = [];
  const prom = createServer((req, res) => {
    const q = new URL(req.url!, 'http://p').searchParams.get('query') ?? '';
    queries.push(q);
    const base = { reporter: 'destination', source_canonical_service: 'productpage', destination_canonical_service: 'reviews', response_code: '200', connection_security_policy: 'mutual_tls' };
    const result = q.includes('_bucket')
      ? [{ metric: { ...base, le: '10' }, value: [0, '60'] }, { metric: { ...base, le: '+Inf' }, value: [0, '60'] }]
      : [{ metric: base, value: [0, '60'] }];
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }));
  });
  await new Promise<void>((r) => prom.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => prom.close(() => r())));
  const port = (prom.address() as { port: number }).port;
  const source = new MeshSource({ proxyAdminUrls: [], prometheusUrl: `http://127.0.0.1:${port}`, windowSeconds: 60 });
  const state = await source.refresh();
  assert.equal(state.metricsFrom, 'prometheus');
  assert.equal(state.graph.edges.length, 1);
  assert.equal(state.graph.edges[0]!.rps, 1);
  assert.equal(state.graph.edges[0]!.mtls, true);
  assert.match(queries[0]!, /^sum by \(reporter, .*\) \(increase\(istio_requests_total\[60s\]\)\)$/);
  assert.match(queries[1]!, /le\) \(increase\(istio_request_duration_milliseconds_bucket\[60s\]\)\)$/);
});
