// Failures end to end: circuit breakers (503 UO, upstream_rq_pending_overflow), connect failure (503 UF), no healthy
// upstream (503 UH), upstreams that reset, hang or answer garbage, request smuggling and oversize headers from the
// client; the proxy keeps serving, and at the end no request, connection or socket is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { accessLogEntries, eventually, get, h2get, startDataPlane, startUpstream, staticCluster, vhost } from './support.js';

/** Sends raw bytes and collects everything until the proxy closes the connection (bounded). */
function raw(address: string, bytes: string | Buffer, waitMs = 3000): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, waitMs);
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (out += c));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (out) resolve(out);
      else reject(err);
    });
    socket.write(bytes);
  });
}

/** A TCP "upstream" that does something unusual with each connection. */
async function rawUpstream(onConnection: (socket: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

test('failures: circuit breaker UO, connect failure UF, no healthy upstream UH, reset, hang, malformed; nothing leaks', async (t) => {
  const slow = await startUpstream('slow', (_req, res) => setTimeout(() => res.writeHead(200).end('slow done'), 400));
  slow.server.keepAliveTimeout = 200;
  const reset = await rawUpstream((s) => s.once('data', () => s.resetAndDestroy()));
  const hang = await rawUpstream((s) => s.resume());
  const garbage = await rawUpstream((s) => s.once('data', () => s.end('HTTP/1.1 abc nonsense\r\n\r\n')));
  const midBody = await rawUpstream((s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial');
      setTimeout(() => s.resetAndDestroy(), 50);
    }),
  );
  const closedPort = await rawUpstream(() => undefined);
  const deadPort = closedPort.port;
  await closedPort.close();
  const dp = await startDataPlane({
    clusters: [
      staticCluster('slow', [slow.port], { circuit_breakers: { thresholds: [{ max_requests: 1, max_pending_requests: 1 }] } }),
      staticCluster('dead', [deadPort]),
      { name: 'empty', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'empty', endpoints: [] } },
      staticCluster('reset', [reset.port]),
      staticCluster('hang', [hang.port]),
      staticCluster('garbage', [garbage.port]),
      staticCluster('midbody', [midBody.port]),
    ],
    virtualHosts: [
      vhost([
        { match: { prefix: '/slow' }, route: { cluster: 'slow' } },
        { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
        { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
        { match: { prefix: '/reset' }, route: { cluster: 'reset' } },
        { match: { prefix: '/hang' }, route: { cluster: 'hang', timeout: '0.3s' } },
        { match: { prefix: '/garbage' }, route: { cluster: 'garbage' } },
        { match: { prefix: '/midbody' }, route: { cluster: 'midbody' } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await Promise.all([slow.close(), reset.close(), hang.close(), garbage.close(), midBody.close()]);
  });

  // max_requests 1: the second concurrent request overflows.
  const first = get(dp.address, '/slow/1');
  await eventually('the first request upstream', async () => (await dp.stat('cluster.slow.upstream_rq_active')) === 1);
  const overflow = await get(dp.address, '/slow/2');
  assert.equal(overflow.status, 503);
  assert.equal(overflow.body, 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
  assert.equal((await first).status, 200);
  assert.equal(await dp.stat('cluster.slow.upstream_rq_pending_overflow'), 1);

  const uf = await get(dp.address, '/dead');
  assert.equal(uf.status, 503);
  assert.equal(uf.body, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure');
  // Envoy's response code details hold no spaces: the reset reason's words are joined by '_'.
  await eventually('the /dead access log entry', async () => dp.accessLog().some((e) => e.path === '/dead'));
  assert.equal(dp.accessLog().find((e) => e.path === '/dead')?.details, 'upstream_reset_before_response_started{connection_failure}');
  const uh = await h2get(dp.address, '/empty');
  assert.equal(uh.status, 503);
  assert.equal(uh.body, 'no healthy upstream');
  const rst = await get(dp.address, '/reset');
  assert.equal(rst.status, 503);
  assert.match(rst.body, /reset reason: connection termination/);
  const hung = await get(dp.address, '/hang');
  assert.equal(hung.status, 504);
  const bad = await get(dp.address, '/garbage');
  assert.equal(bad.status, 502);
  assert.match(bad.body, /protocol error/);
  // A reset after the response started resets the downstream: the client sees an aborted body.
  await assert.rejects(get(dp.address, '/midbody'), /aborted|socket hang up|ECONNRESET/);

  const log = await accessLogEntries(dp, 8);
  // The overflow answers before the first request ends; the rest in order.
  assert.deepEqual(
    log.map((e) => [e['code'], e['flags']]),
    [[503, 'UO'], [200, '-'], [503, 'UF'], [503, 'UH'], [503, 'UC'], [504, 'UT'], [502, 'UPE'], [200, 'UR']],
  );

  // Still serving, and nothing left behind: no active requests or connections upstream, no downstream connections.
  assert.equal((await get(dp.address, '/slow/after')).status, 200);
  for (const cluster of ['slow', 'dead', 'empty', 'reset', 'hang', 'garbage', 'midbody']) {
    await eventually(`cluster ${cluster} idle`, async () => {
      const s = await dp.stats();
      return s.get(`cluster.${cluster}.upstream_rq_active`) === 0 && s.get(`cluster.${cluster}.upstream_cx_active`) === 0 && s.get(`cluster.${cluster}.upstream_rq_pending_active`) === 0;
    });
  }
  await eventually('downstream connections closed', async () => (await dp.stat('http.ingress.downstream_cx_active')) === 0);
  assert.equal(await dp.stat('http.ingress.downstream_rq_active'), 0);
});

test('bad input from clients: smuggling, oversize and too many headers, invalid names; proxy stays up', async (t) => {
  const up = await startUpstream('svc');
  const dp = await startDataPlane({ clusters: [staticCluster('svc', [up.port])], virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])] });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  const status = (response: string): string => response.split('\r\n')[0] ?? '';
  // Content-Length with Transfer-Encoding.
  assert.match(status(await raw(dp.address, 'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n')), /^HTTP\/1.1 400/);
  // Two different Content-Lengths.
  assert.match(status(await raw(dp.address, 'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!')), /^HTTP\/1.1 400/);
  // An invalid chunk size: the request already went upstream, so the answer is 400 or a reset, never the upstream's 200.
  const badChunk = await raw(dp.address, 'POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n');
  assert.ok(badChunk === '' || /^HTTP\/1.1 400/.test(status(badChunk)), badChunk);
  // Header name with a space; obs-fold.
  assert.match(status(await raw(dp.address, 'GET / HTTP/1.1\r\nhost: a\r\nbad name: x\r\n\r\n')), /^HTTP\/1.1 400/);
  // 70 KiB of headers (default limit 60 KiB) and 101 headers (default limit 100): 431.
  assert.match(status(await raw(dp.address, `GET / HTTP/1.1\r\nhost: a\r\nx-big: ${'a'.repeat(70 * 1024)}\r\n\r\n`)), /^HTTP\/1.1 431/);
  let many = 'GET / HTTP/1.1\r\nhost: a\r\n';
  for (let i = 0; i < 100; i++) many += `x-h${i}: v\r\n`;
  assert.match(status(await raw(dp.address, `${many}\r\n`)), /^HTTP\/1.1 431/);
  const h2big = await h2get(dp.address, '/', { headers: { 'x-big': 'a'.repeat(70 * 1024) } }).catch((err: Error) => err);
  assert.ok(h2big instanceof Error || h2big.status === 431, `h2 oversize headers: ${h2big instanceof Error ? h2big.message : h2big.status}`);
  // No smuggled request reached the upstream, and the proxy still serves.
  assert.equal(up.seen.filter((s) => s.path === '/smuggled').length, 0);
  assert.equal((await get(dp.address, '/ok')).status, 200);
  assert.ok((await dp.stat('http.ingress.downstream_cx_protocol_error')) >= 5);
  await eventually('downstream connections closed', async () => (await dp.stat('http.ingress.downstream_cx_active')) === 0);
});

test('after stop: no sockets, servers or timers of the proxy remain', async () => {
  const before = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap').length;
  const up = await startUpstream('svc');
  const dp = await startDataPlane({ clusters: [staticCluster('svc', [up.port])], virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])] });
  for (let i = 0; i < 5; i++) assert.equal((await get(dp.address, '/x', { agent: dp.agent })).status, 200);
  assert.equal((await h2get(dp.address, '/x')).status, 200);
  await dp.close();
  await up.close();
  await eventually('sockets closed', () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap').length <= before);
});
