import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { packAny } from '../../../src/xds/codec.js';
import { FakeCluster, FakeClusterManager, fakeHost, fakeRouteTable } from '../http/fakes.js';
import { get, hcmListener, routerFilter, startProxy, startUpstream, type Proxy, type Upstream } from '../http/harness.js';
import type { RouteTable } from '../../../src/proxy/router/route-table.js';
import { compileCorsPolicy } from '../../../src/proxy/filters/cors.js';

let up: Upstream;
let flaky: Upstream;
let slow: Upstream;
let proxy: Proxy;
let port: number;
let flakyCalls = 0;
let deadPort: number;

before(async () => {
  up = await startUpstream();
  flaky = await startUpstream((_req, res) => {
    flakyCalls++;
    res.statusCode = flakyCalls % 2 === 1 ? 503 : 200;
    res.end(`call ${flakyCalls}`);
  });
  slow = await startUpstream((_req, res) => {
    setTimeout(() => res.end('slow'), 2000).unref();
  });
  const dead = await startUpstream();
  deadPort = dead.port;
  await dead.close();
  const empty = new FakeCluster('empty', [fakeHost(1)]);
  empty.hosts[0] = { ...empty.hosts[0]!, health: 'UNHEALTHY' };
  const clusters = new FakeClusterManager()
    .add(new FakeCluster('web', [fakeHost(up.port)]))
    .add(new FakeCluster('flaky', [fakeHost(flaky.port)]))
    .add(new FakeCluster('slow', [fakeHost(slow.port)]))
    .add(new FakeCluster('dead', [fakeHost(deadPort)]))
    .add(empty);
  const cors = compileCorsPolicy({ allow_origin_string_match: [{ exact: 'https://app.example' }], allow_methods: 'GET,POST', allow_headers: 'x-a', max_age: '60', expose_headers: 'x-b' });
  const routes = new Map<string, RouteTable>([
    ['r', fakeRouteTable('r', [
      { prefix: '/flaky', cluster: 'flaky', retry: { retryOn: new Set(['5xx']), numRetries: 2 }, vh: { includeAttemptCountInResponse: true } },
      { prefix: '/noretry', cluster: 'flaky' },
      { prefix: '/slow', cluster: 'slow' },
      { prefix: '/dead', cluster: 'dead' },
      { prefix: '/empty', cluster: 'empty' },
      { prefix: '/cors', cluster: 'web', perFilter: new Map([['envoy.filters.http.cors', cors]]) },
      { prefix: '/mirror', cluster: 'web', mirrors: [{ cluster: 'web', fraction: 1 }] },
      { prefix: '/web', cluster: 'web' },
    ])],
  ]);
  proxy = await startProxy(
    [
      hcmListener('http', {
        http_filters: [
          { name: 'envoy.filters.http.fault', typed_config: packAny('envoy.extensions.filters.http.fault.v3.HTTPFault', { abort: { header_abort: {}, percentage: { numerator: 100 } }, delay: { header_delay: {}, percentage: { numerator: 100 } } }) },
          { name: 'envoy.filters.http.cors', typed_config: packAny('envoy.extensions.filters.http.cors.v3.Cors', {}) },
          routerFilter(),
        ],
      }),
    ],
    routes,
    clusters,
  );
  port = proxy.port('http');
});

after(async () => {
  await proxy.close();
  await Promise.all([up.close(), flaky.close(), slow.close()]);
});

const last = () => proxy.completed.at(-1)!;

test('no route → 404 NR', async () => {
  const res = await get(port, '/nowhere');
  assert.equal(res.status, 404);
  assert.ok(last().responseFlags.has('NR'));
  assert.equal(last().responseCodeDetails, 'route_not_found');
});

test('no healthy upstream → 503 UH with Envoy body', async () => {
  const res = await get(port, '/empty');
  assert.equal(res.status, 503);
  assert.equal(res.body, 'no healthy upstream');
  assert.ok(last().responseFlags.has('UH'));
});

test('connect failure → 503 UF with Envoy body', async () => {
  const res = await get(port, '/dead');
  assert.equal(res.status, 503);
  assert.equal(res.body, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure');
  assert.ok(last().responseFlags.has('UF'));
});

test('x-envoy-upstream-rq-timeout-ms → 504 UT "upstream request timeout"', async () => {
  const res = await get(port, '/slow', { 'x-envoy-upstream-rq-timeout-ms': '200' });
  assert.equal(res.status, 504);
  assert.equal(res.body, 'upstream request timeout');
  assert.ok(last().responseFlags.has('UT'));
});

test('retry on 5xx succeeds on the second attempt; attempt count in response', async () => {
  const cluster = proxy.clusters.clusters.get('flaky')!;
  const before = cluster.stats.upstream_rq_retry;
  flakyCalls = 0;
  const res = await get(port, '/flaky');
  assert.equal(res.status, 200);
  assert.equal(res.body, 'call 2');
  assert.equal(res.headers['x-envoy-attempt-count'], '2');
  assert.equal(cluster.stats.upstream_rq_retry, before + 1);
  assert.equal(last().attemptCount, 2);
});

test('x-envoy-retry-on / x-envoy-max-retries on a route without a policy; the retry header is not forwarded', async () => {
  flakyCalls = 0;
  const res = await get(port, '/noretry', { 'x-envoy-retry-on': 'gateway-error', 'x-envoy-max-retries': '1' });
  assert.equal(res.status, 200);
  const cluster = proxy.clusters.clusters.get('flaky')!;
  assert.equal(cluster.requests.at(-1)!['x-envoy-retry-on'], undefined);
  assert.equal(cluster.requests.at(-1)!['x-envoy-expected-rq-timeout-ms'], '15000');
});

test('retries exhausted → last 503 forwarded with URX', async () => {
  flakyCalls = 0;
  // call 1 → 503, retry (max 0 via header) → exhausted
  const res = await get(port, '/noretry', { 'x-envoy-retry-on': '5xx', 'x-envoy-max-retries': '0' });
  assert.equal(res.status, 503);
  assert.ok(last().responseFlags.has('URX'));
});

test('fault abort from x-envoy-fault-abort-request → status, FI, counter', async () => {
  const res = await get(port, '/web', { 'x-envoy-fault-abort-request': '418' });
  assert.equal(res.status, 418);
  assert.equal(res.body, 'fault filter abort');
  assert.ok(last().responseFlags.has('FI'));
  assert.equal(proxy.httpStats('http')['fault.aborts_injected'], 1);
});

test('fault delay from x-envoy-fault-delay-request then the request proceeds (DI)', async () => {
  const res = await get(port, '/web', { 'x-envoy-fault-delay-request': '50' });
  assert.equal(res.status, 200);
  assert.ok(last().responseFlags.has('DI'));
  assert.equal(proxy.httpStats('http')['fault.delays_injected'], 1);
});

test('fault percentage header of 0 disables the abort', async () => {
  const res = await get(port, '/web', { 'x-envoy-fault-abort-request': '500', 'x-envoy-fault-abort-request-percentage': '0' });
  assert.equal(res.status, 200);
});

test('CORS preflight from an allowed origin is answered by the proxy; actual requests get allow-origin/expose', async () => {
  const pre = await get(port, '/cors', { origin: 'https://app.example', 'access-control-request-method': 'POST' }, 'OPTIONS');
  assert.equal(pre.status, 200);
  assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
  assert.equal(pre.headers['access-control-allow-methods'], 'GET,POST');
  assert.equal(pre.headers['access-control-allow-headers'], 'x-a');
  assert.equal(pre.headers['access-control-max-age'], '60');
  const actual = await get(port, '/cors', { origin: 'https://app.example' });
  assert.equal(actual.status, 200);
  assert.equal(actual.headers['access-control-allow-origin'], 'https://app.example');
  assert.equal(actual.headers['access-control-expose-headers'], 'x-b');
  const bad = await get(port, '/cors', { origin: 'https://evil.example' });
  assert.equal(bad.headers['access-control-allow-origin'], undefined);
  assert.equal(proxy.httpStats('http')['cors.origin_invalid'], 1);
});

test('mirror sends a copy with the -shadow host suffix', async () => {
  const n = up.requests.length;
  const res = await get(port, '/mirror', { host: 'svc:8080' });
  assert.equal(res.status, 200);
  for (let i = 0; i < 50 && up.requests.length < n + 2; i++) await new Promise((r) => setTimeout(r, 20));
  const hosts = up.requests.slice(n).map((r) => r.headers.host).sort();
  assert.deepEqual(hosts, ['svc-shadow:8080', 'svc:8080']);
});

test('a client that disconnects mid-body aborts the upstream request (DC)', async () => {
  const cluster = proxy.clusters.clusters.get('slow')!;
  const req = request({ host: '127.0.0.1', port, path: '/slow', method: 'POST', headers: { 'content-length': '100' }, agent: false });
  req.on('error', () => {});
  req.write('partial');
  for (let i = 0; i < 100 && cluster.active.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(cluster.active.size, 1);
  req.destroy();
  for (let i = 0; i < 100 && cluster.active.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(cluster.active.size, 0, 'upstream request aborted');
  for (let i = 0; i < 100 && !proxy.completed.some((c) => c.responseFlags.has('DC')); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(proxy.completed.some((c) => c.responseFlags.has('DC')));
  assert.ok(proxy.httpStats('http')['downstream_rq_rx_reset']! >= 1);
});
