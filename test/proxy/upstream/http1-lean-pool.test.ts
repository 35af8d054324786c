// The raw-socket HTTP/1.1 pool against scripted upstreams on 127.0.0.1: framing both ways, no-body responses,
// informational responses, trailers, connection: close, an idle connection closed under a request, stray bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { compileCluster, type UpstreamClusterImpl } from '../../../src/proxy/upstream/cluster.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import type { UpstreamFailure } from '../../../src/proxy/upstream/types.js';

interface Result {
  status?: number;
  headers?: HttpHeaders;
  heads: number;
  body: string;
  trailers?: HttpHeaders;
  failure?: UpstreamFailure;
}

interface SeenRequest {
  readonly head: string;
  readonly body: string;
  readonly connection: number;
}

/** A TCP upstream that parses request heads (content-length or chunked bodies) and answers with `reply`. */
async function scripted(reply: (req: SeenRequest, socket: Socket, index: number) => void): Promise<{ server: Server; port: number; seen: SeenRequest[] }> {
  const seen: SeenRequest[] = [];
  let connections = 0;
  const server = createNetServer((socket) => {
    const connection = ++connections;
    let buf = '';
    socket.setEncoding('latin1');
    socket.on('error', () => undefined);
    socket.on('data', (data: string) => {
      buf += data;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        let rest = buf.slice(end + 4);
        let body = '';
        const length = /\r\ncontent-length: (\d+)/i.exec(head);
        if (length) {
          const n = Number(length[1]);
          if (rest.length < n) return;
          body = rest.slice(0, n);
          rest = rest.slice(n);
        } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
          const last = rest.indexOf('0\r\n\r\n');
          if (last < 0) return;
          for (let p = 0; p < last; ) {
            const eol = rest.indexOf('\r\n', p);
            const size = parseInt(rest.slice(p, eol), 16);
            body += rest.slice(eol + 2, eol + 2 + size);
            p = eol + 2 + size + 2;
          }
          rest = rest.slice(last + 5);
        }
        buf = rest;
        const req = { head, body, connection };
        seen.push(req);
        reply(req, socket, seen.length - 1);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

function cluster(port: number): UpstreamClusterImpl {
  return compileCluster({
    name: 'up',
    type: 'STATIC',
    connect_timeout: { seconds: 2 },
    load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
  });
}

function send(c: UpstreamClusterImpl, headers: HttpHeaders, body: string[] = []): Promise<Result> {
  return new Promise((resolve) => {
    const r: Result = { heads: 0, body: '' };
    const req = c.request(c.chooseHost({})!, { ':method': 'GET', ':path': '/', ':authority': 'up.test', ':scheme': 'http', ...headers }, {
      onHeaders: (status, h) => {
        r.heads++;
        r.status = status;
        r.headers = h;
      },
      onData: (chunk) => (r.body += chunk.toString('latin1')),
      onTrailers: (t) => (r.trailers = t),
      onEnd: () => resolve(r),
      onFailure: (failure) => {
        r.failure = failure;
        resolve(r);
      },
    });
    for (const b of body) req.write(Buffer.from(b));
    req.end();
  });
}

async function done(c: UpstreamClusterImpl, server: Server): Promise<void> {
  await c.drain();
  assert.equal(c.connectionCount, 0, 'connections left open');
  assert.equal(c.stats.upstream_cx_active, 0);
  assert.equal(c.stats.upstream_rq_active, 0);
  assert.equal(c.stats.upstream_rq_pending_active, 0);
  await new Promise<void>((r) => server.close(() => r()));
}

const OK = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`;

test('lean pool: request framing — GET has none, POST without body gets content-length: 0, a body of unknown length goes chunked', async () => {
  const up = await scripted((_req, s) => s.write(OK('ok')));
  const c = cluster(up.port);
  assert.equal((await send(c, {})).status, 200);
  assert.equal((await send(c, { ':method': 'POST' })).status, 200);
  const r = await send(c, { ':method': 'POST' }, ['one,', 'two']);
  assert.equal(r.body, 'ok');
  const l = await send(c, { ':method': 'PUT', 'content-length': '3' }, ['abc']);
  assert.equal(l.status, 200);
  const [get, emptyPost, chunked, sized] = up.seen;
  assert.match(get!.head, /^GET \/ HTTP\/1\.1\r\nhost: up\.test/);
  assert.doesNotMatch(get!.head, /content-length|transfer-encoding/i);
  assert.match(emptyPost!.head, /\r\ncontent-length: 0/);
  assert.match(chunked!.head, /\r\ntransfer-encoding: chunked/);
  assert.equal(chunked!.body, 'one,two');
  assert.equal(sized!.body, 'abc');
  assert.ok(up.seen.every((s) => s.connection === 1), 'one kept-alive connection');
  await done(c, up.server);
});

test('lean pool: HEAD, 204 and 304 end without a body and keep the connection; 100-continue is swallowed', async () => {
  const up = await scripted((req, s, i) => {
    if (req.head.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n');
    else if (i === 1) s.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (i === 2) s.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n');
    else s.write(`HTTP/1.1 100 Continue\r\n\r\n${OK('after')}`);
  });
  const c = cluster(up.port);
  const head = await send(c, { ':method': 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers?.['content-length'], '5');
  assert.equal(head.body, '');
  assert.equal((await send(c, {})).status, 204);
  assert.equal((await send(c, {})).status, 304);
  const cont = await send(c, { ':method': 'POST', expect: '100-continue', 'content-length': '2' }, ['hi']);
  assert.equal(cont.status, 200);
  assert.equal(cont.heads, 1, 'the 100 is not a response');
  assert.equal(cont.body, 'after');
  assert.equal(c.stats.upstream_rq_2xx, 3, 'HEAD, 204 and the 200 after 100');
  assert.equal(c.stats.upstream_rq_3xx, 1);
  assert.equal(c.stats.upstream_rq_1xx, 0);
  assert.equal(c.stats.upstream_cx_total, 1);
  await done(c, up.server);
});

test('lean pool: chunked response with trailers, repeated headers folded like node:http, body delimited by close', async () => {
  const up = await scripted((_req, s, i) => {
    if (i === 0) {
      s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nx-list: a\r\nx-list: b\r\ntrailer: grpc-status\r\n\r\n');
      s.write('3\r\nabc\r\n');
      s.write('2\r\nde\r\n0\r\ngrpc-status: 0\r\n\r\n');
    } else {
      s.end('HTTP/1.1 200 OK\r\n\r\nuntil-close');
    }
  });
  const c = cluster(up.port);
  const r = await send(c, {});
  assert.equal(r.body, 'abcde');
  assert.deepEqual(r.headers?.['set-cookie'], ['a=1', 'b=2']);
  assert.equal(r.headers?.['x-list'], 'a, b');
  assert.deepEqual(r.trailers, { 'grpc-status': '0' });
  const eof = await send(c, {});
  assert.equal(eof.status, 200);
  assert.equal(eof.body, 'until-close');
  await done(c, up.server);
});

test('lean pool: connection: close from the upstream is honoured; stray bytes on an idle connection close it', async () => {
  const up = await scripted((_req, s, i) => {
    if (i === 0) s.write(OK('bye', 'connection: close\r\n'));
    else if (i === 1) s.write(OK('x') + 'garbage');
    else s.write(OK('fine'));
  });
  const c = cluster(up.port);
  assert.equal((await send(c, {})).body, 'bye');
  assert.equal((await send(c, {})).body, 'x');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await send(c, {})).body, 'fine');
  assert.deepEqual(up.seen.map((s) => s.connection), [1, 2, 3]);
  await done(c, up.server);
});

test('lean pool: a reused connection closed before any response byte — GET goes once more on a new connection, POST fails remote_reset', async () => {
  const up = await scripted((req, s) => {
    // Every connection answers its first request and drops its second unanswered (an idle close racing reuse).
    const n = up.seen.filter((x) => x.connection === req.connection).length;
    if (n === 1) s.write(OK('first'));
    else s.destroy();
  });
  const c = cluster(up.port);
  assert.equal((await send(c, {})).body, 'first');
  const retried = await send(c, {});
  assert.equal(retried.status, 200, 'GET retried on a fresh connection');
  assert.equal(retried.body, 'first');
  const post = await send(c, { ':method': 'POST' }, ['data']);
  assert.equal(post.failure, 'remote_reset');
  assert.equal(c.stats.upstream_rq_total, 3, 'the retry is the same request');
  assert.equal(c.stats.upstream_rq_rx_reset, 1);
  await done(c, up.server);
});

test('lean pool: malformed response → protocol_error; upstream reset mid-body → remote_reset; nothing leaks', async () => {
  const up = await scripted((_req, s, i) => {
    if (i === 0) s.write('HTTP/1.1 2x0 Nope\r\n\r\n');
    else {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
      setTimeout(() => s.destroy(), 20);
    }
  });
  const c = cluster(up.port);
  assert.equal((await send(c, {})).failure, 'protocol_error');
  const cut = await send(c, {});
  assert.equal(cut.status, 200);
  assert.equal(cut.body, 'partial');
  assert.equal(cut.failure, 'remote_reset');
  assert.equal(c.hosts[0]!.stats.rqError, 2);
  await done(c, up.server);
});

test('lean pool: response headers on one connection as names repeat, change and come back (the remembered header names)', async () => {
  const replies = [
    'HTTP/1.1 200 OK\r\nServer: a\r\nX-One: 1\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nServer: b\r\nX-One: 2\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nServer: c\r\nX-One: 3\r\nX-One: 4\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nSet-Cookie: s=2\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nSERVER: d\r\nx-one: 5\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nServer: e\r\nX-One: 6\r\nX-Two: 7\r\nContent-Length: 0\r\n\r\n',
  ];
  const up = await scripted((_req, s, i) => s.write(replies[i]!));
  const c = cluster(up.port);
  const got: HttpHeaders[] = [];
  for (let i = 0; i < replies.length; i++) got.push((await send(c, {})).headers!);
  const pick = (h: HttpHeaders) => ({ server: h['server'], one: h['x-one'], two: h['x-two'], cookie: h['set-cookie'] });
  assert.deepEqual(got.map(pick), [
    { server: 'a', one: '1', two: undefined, cookie: undefined },
    { server: 'b', one: '2', two: undefined, cookie: undefined },
    { server: 'c', one: '3, 4', two: undefined, cookie: undefined },
    { server: undefined, one: undefined, two: undefined, cookie: ['s=1'] },
    { server: undefined, one: undefined, two: undefined, cookie: ['s=2'] },
    { server: 'd', one: '5', two: undefined, cookie: undefined },
    { server: 'e', one: '6', two: '7', cookie: undefined },
  ]);
  assert.equal(new Set(up.seen.map((r) => r.connection)).size, 1, 'one kept-alive connection');
  await done(c, up.server);
});
