// The workloads' outbound client: explicit HTTP-proxy mode (absolute-form target, Host header, kept-alive connections), direct mode, timeouts and failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MeshCallError, MeshClient, proxyFromEnvironment } from '../../../examples/bookinfo/src/mesh-client.js';
import { startFake } from './bookinfo-support.js';

test('with a proxy: absolute-form request target and Host of the mesh name, to the proxy\'s address', async () => {
  const sockets = new Set<net.Socket>();
  const sidecar = await startFake((req, res) => {
    sockets.add(req.socket);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ routedBy: req.headers.host }));
  });
  const client = new MeshClient({ proxy: sidecar.url });
  try {
    const first = await client.get('http://reviews:9080/reviews/0?x=1', { headers: { 'x-request-id': 'abc' } });
    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(first.body), { routedBy: 'reviews:9080' });
    await client.get('http://ratings:9080/ratings/0');
    await client.request('http://api.external.test/echo', { method: 'POST', body: 'hi' });
    assert.deepEqual(sidecar.requests.map((r) => [r.method, r.url, r.headers.host]), [
      ['GET', 'http://reviews:9080/reviews/0?x=1', 'reviews:9080'],
      ['GET', 'http://ratings:9080/ratings/0', 'ratings:9080'],
      ['POST', 'http://api.external.test/echo', 'api.external.test'],
    ]);
    assert.equal(sidecar.requests[0]?.headers['x-request-id'], 'abc');
    assert.equal(sidecar.requests[2]?.headers['content-length'], '2');
    assert.equal(sockets.size, 1, 'one kept-alive connection to the sidecar');
  } finally {
    client.close();
    await sidecar.close();
  }
});

test('without a proxy: origin-form request straight to the target', async () => {
  const target = await startFake();
  const client = new MeshClient({ proxy: undefined });
  try {
    await client.get(`${target.url}/details/0`);
    assert.equal(target.requests[0]?.url, '/details/0');
    assert.equal(target.requests[0]?.headers.host, `127.0.0.1:${target.port}`);
  } finally {
    client.close();
    await target.close();
  }
});

test('HTTP_PROXY from the environment; a malformed one is refused by name', () => {
  assert.equal(proxyFromEnvironment({ HTTP_PROXY: 'http://127.0.0.1:15001' }), 'http://127.0.0.1:15001');
  assert.equal(proxyFromEnvironment({ http_proxy: 'http://127.0.0.1:15002' }), 'http://127.0.0.1:15002');
  assert.equal(proxyFromEnvironment({ HTTP_PROXY: '  ' }), undefined);
  assert.equal(proxyFromEnvironment({}), undefined);
  assert.throws(() => new MeshClient({ proxy: '127.0.0.1:15001' }), /HTTP_PROXY: expected http:\/\/HOST:PORT/);
  assert.throws(() => new MeshClient({ proxy: 'https://127.0.0.1:15001' }), /HTTP_PROXY/);
  assert.throws(() => new MeshClient({ proxy: 'http://127.0.0.1' }), /HTTP_PROXY/);
});

test('a silent upstream times out with MESH_CALL_TIMEOUT; a refused connection is MESH_CALL_FAILED', async () => {
  const silent = await startFake(() => { /* never answers */ });
  const client = new MeshClient({ proxy: undefined });
  try {
    await assert.rejects(client.get(`${silent.url}/x`, { timeoutMs: 200 }), (e: unknown) => e instanceof MeshCallError && e.code === 'MESH_CALL_TIMEOUT');
    const port = silent.port;
    await silent.close();
    await assert.rejects(client.get(`http://127.0.0.1:${port}/x`), (e: unknown) => e instanceof MeshCallError && e.code === 'MESH_CALL_FAILED');
    await assert.rejects(client.get('https://reviews:9080/'), /only http: URLs/);
    await assert.rejects(client.get('not a url'), /not a URL/);
  } finally {
    client.close();
    await silent.close();
  }
});

test('a response body over the limit is refused', async () => {
  const big = await startFake((_req, res) => res.end('x'.repeat(10_000)));
  const client = new MeshClient({ proxy: undefined, maxBodyBytes: 1_000 });
  try {
    await assert.rejects(client.get(`${big.url}/`), /larger than 1000 bytes/);
  } finally {
    client.close();
    await big.close();
  }
});

test('a GET that meets a kept-alive connection the server dropped is sent again on a fresh one', async () => {
  const perSocket = new WeakMap<net.Socket, number>();
  const server = await startFake((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n > 1) {
      req.socket.destroy(); // the idle connection "closed" just as the next request arrived
      return;
    }
    res.end(`ok ${req.url}`);
  });
  const client = new MeshClient({ proxy: undefined });
  try {
    assert.equal((await client.get(`${server.url}/a`)).body, 'ok /a');
    assert.equal((await client.get(`${server.url}/b`)).body, 'ok /b');
    assert.deepEqual(server.requests.map((r) => r.url), ['/a', '/b', '/b']);
    assert.equal((await client.get(`${server.url}/c`)).body, 'ok /c', 'a new pooled connection');
    await assert.rejects(client.request(`${server.url}/d`, { method: 'POST', body: 'x' }), (e: unknown) => e instanceof MeshCallError && e.code === 'MESH_CALL_FAILED', 'a POST is not repeated');
    assert.deepEqual(server.requests.map((r) => r.url), ['/a', '/b', '/b', '/c', '/d']);
  } finally {
    client.close();
    await server.close();
  }
});
