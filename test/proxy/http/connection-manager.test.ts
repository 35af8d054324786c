import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { FakeCluster, FakeClusterManager, fakeHost, fakeRouteTable } from './fakes.js';
import { get, hcmListener, raw, startProxy, startUpstream, type Proxy, type Upstream } from './harness.js';
import type { RouteTable } from '../../../src/proxy/router/route-table.js';

let up: Upstream;
let proxy: Proxy;
let port: number;

before(async () => {
  up = await startUpstream();
  const clusters = new FakeClusterManager().add(new FakeCluster('web', [fakeHost(up.port)]));
  const routes = new Map<string, RouteTable>([
    ['r', fakeRouteTable('r', [
      { prefix: '/direct', direct: { status: 200, body: 'hello direct' } },
      { prefix: '/nocluster', cluster: 'missing' },
      { prefix: '/', cluster: 'web', addResponseHeader: ['x-route', 'yes'] },
    ])],
  ]);
  proxy = await startProxy(
    [hcmListener('http', { use_remote_address: { value: true }, request_headers_timeout: { seconds: 0, nanos: 300_000_000 } })],
    routes,
    clusters,
  );
  port = proxy.port('http');
});

after(async () => {
  await proxy.close();
  await up.close();
});

const info0 = (p: typeof proxy) => p.completed.at(-1)!;

test('proxies a GET with x-request-id, x-forwarded-for/proto, server and route response headers', async () => {
  const res = await get(port, '/hello?x=1', { 'x-custom': 'v', connection: 'keep-alive, x-hop', 'x-hop': 'drop me', 'keep-alive': 'timeout=5', 'proxy-connection': 'keep-alive' });
  assert.equal(res.status, 200);
  const echoed = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
  assert.equal(echoed.url, '/hello?x=1');
  assert.match(echoed.headers['x-request-id']!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(echoed.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(echoed.headers['x-forwarded-proto'], 'http');
  assert.equal(echoed.headers['x-envoy-internal'], 'true');
  assert.equal(echoed.headers['x-custom'], 'v');
  assert.equal(echoed.headers['x-hop'], undefined, 'headers named in Connection are hop-by-hop');
  assert.equal(echoed.headers['keep-alive'], undefined);
  assert.equal(echoed.headers['proxy-connection'], undefined);
  assert.equal(info0(proxy).requestHeaders['connection'], undefined, 'never in the request header object');
  assert.equal(res.headers['server'], 'envoy');
  assert.equal(res.headers['x-route'], 'yes');
  assert.ok(Number(res.headers['x-envoy-upstream-service-time']) >= 0);
  const info = proxy.completed.at(-1)!;
  assert.equal(info.responseCode, 200);
  assert.equal(info.upstreamCluster, 'web');
  assert.equal(info.upstreamHost, `127.0.0.1:${up.port}`);
});

test('keeps an incoming x-request-id and appends to x-forwarded-for', async () => {
  const res = await get(port, '/x', { 'x-request-id': 'abc', 'x-forwarded-for': '10.0.0.1' });
  const echoed = JSON.parse(res.body) as { headers: Record<string, string> };
  assert.equal(echoed.headers['x-request-id'], 'abc');
  assert.equal(echoed.headers['x-forwarded-for'], '10.0.0.1,127.0.0.1');
});

test('direct_response, no cluster (503 NC) and counters', async () => {
  const before2xx = proxy.httpStats('http')['downstream_rq_2xx']!;
  const direct = await get(port, '/direct');
  assert.equal(direct.status, 200);
  assert.equal(direct.body, 'hello direct');
  const nc = await get(port, '/nocluster');
  assert.equal(nc.status, 503);
  assert.ok(proxy.completed.at(-1)!.responseFlags.has('NC'));
  const stats = proxy.httpStats('http');
  assert.equal(stats['downstream_rq_2xx'], before2xx + 1);
  assert.ok(stats['downstream_rq_5xx']! >= 1);
  assert.ok(stats['no_cluster']! >= 1);
  assert.ok(stats['rq_direct_response']! >= 1);
});

test('POST with a chunked body and 100-continue reaches the upstream intact', async () => {
  const { request } = await import('node:http');
  const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/post', method: 'POST', headers: { expect: '100-continue' }, agent: false }, (r) => {
      let b = '';
      r.on('data', (d) => (b += d));
      r.on('end', () => resolve({ status: r.statusCode!, body: b }));
    });
    req.on('error', reject);
    req.on('continue', () => {
      req.write('part1-');
      req.end('part2');
    });
  });
  assert.equal(res.status, 200);
  assert.equal((JSON.parse(res.body) as { body: string }).body, 'part1-part2');
});

test('keep-alive connection serves several requests, pipelined', async () => {
  const out = await raw(port, 'GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  const statuses = out.match(/HTTP\/1\.1 \d{3}/g);
  assert.deepEqual(statuses, ['HTTP/1.1 200', 'HTTP/1.1 200']);
  assert.ok(out.indexOf('"url":"/a"') < out.indexOf('"url":"/b"'), 'responses in request order');
});

test('request smuggling: Content-Length with Transfer-Encoding → 400 and close', async () => {
  const out = await raw(port, 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 400/);
  assert.match(out, /connection: close/i);
});

test('request smuggling: differing duplicate Content-Length → 400', async () => {
  const out = await raw(port, 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\nabcde');
  assert.match(out, /^HTTP\/1\.1 400/);
});

test('invalid chunk size → 400', async () => {
  const out = await raw(port, 'POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 400/);
});

test('invalid header name → 400', async () => {
  const out = await raw(port, 'GET / HTTP/1.1\r\nhost: x\r\nbad header: v\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 400/);
});

test('a 100 KiB header → 431; 101 headers → 431', async () => {
  const big = await raw(port, `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(100 * 1024)}\r\n\r\n`);
  assert.match(big, /^HTTP\/1\.1 431/);
  let many = 'GET / HTTP/1.1\r\nhost: x\r\n';
  for (let i = 0; i < 101; i++) many += `x-h${i}: v\r\n`;
  const res = await raw(port, `${many}connection: close\r\n\r\n`);
  assert.match(res, /^HTTP\/1\.1 431/);
  assert.equal(up.requests.filter((r) => r.headers['x-h0'] !== undefined).length, 0, 'nothing reached the upstream');
});

test('a client that stalls mid-headers gets 408 (request_headers_timeout)', async () => {
  const before = proxy.httpStats('http')['downstream_rq_header_timeout']!;
  const out = await raw(port, 'GET / HTTP/1.1\r\nhost: x\r\n', 5000);
  assert.match(out, /^HTTP\/1\.1 408/);
  assert.equal(proxy.httpStats('http')['downstream_rq_header_timeout'], before + 1);
});

test('HTTP/2 prior knowledge (h2c) is proxied to an HTTP/1.1 upstream', async () => {
  const session = h2connect(`http://127.0.0.1:${port}`);
  try {
    const res = await new Promise<{ status: number; body: string; server: string }>((resolve, reject) => {
      const s = session.request({ ':path': '/h2', ':method': 'GET', 'x-a': 'b' });
      let status = 0;
      let server = '';
      let body = '';
      s.on('response', (h) => {
        status = Number(h[':status']);
        server = String(h['server']);
      });
      s.on('data', (d) => (body += d));
      s.on('end', () => resolve({ status, body, server }));
      s.on('error', reject);
    });
    assert.equal(res.status, 200);
    assert.equal(res.server, 'envoy');
    const echoed = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(echoed.url, '/h2');
    assert.equal(echoed.headers['x-a'], 'b');
    assert.equal(proxy.completed.at(-1)!.protocol, 'HTTP/2');
  } finally {
    session.close();
  }
});

test('curl through the proxy (HTTP/1.1 and --http2-prior-knowledge)', async (t) => {
  const { execFileSync } = await import('node:child_process');
  try {
    execFileSync('curl', ['--version']);
  } catch {
    t.skip('curl not installed');
    return;
  }
  const { execFile } = await import('node:child_process');
  const run = (args: string[]) =>
    new Promise<string>((resolve, reject) => execFile('curl', args, (err, stdout) => (err ? reject(err) : resolve(stdout))));
  const h1 = await run(['-s', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `http://127.0.0.1:${port}/curl`]);
  assert.equal(h1, '200 1.1');
  const h2 = await run(['-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `http://127.0.0.1:${port}/curl`]);
  assert.equal(h2, '200 2');
});
