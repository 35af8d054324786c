// The lean HTTP/1.1 downstream codec on real sockets, driven directly (no connection manager): framing, one write per
// response, pipelining order, 100-continue, HTTP/1.0, half-close, codec errors and timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Http1LeanCodec } from '../../../src/proxy/http/http1-lean-codec.js';
import type { DownstreamCodecOptions, DownstreamProtocolError } from '../../../src/proxy/http/codec-options.js';
import type { ServerStream } from '../../../src/proxy/http/server-stream.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';

interface Harness {
  port: number;
  errors: DownstreamProtocolError[];
  /** Sockets the codec serves, with a count of the write() calls made on each. */
  served: { socket: Socket; writes: number }[];
  close(): Promise<void>;
}

async function start(onStream: (s: ServerStream) => void, options: Partial<DownstreamCodecOptions> = {}): Promise<Harness> {
  const errors: DownstreamProtocolError[] = [];
  const served: Harness['served'] = [];
  const codec = new Http1LeanCodec({
    maxRequestHeadersKb: 60,
    maxHeadersCount: 100,
    requestHeadersTimeoutMs: 0,
    idleTimeoutMs: 3_600_000,
    onStream,
    onProtocolError: (kind) => errors.push(kind),
    ...options,
  });
  const server: Server = createServer((socket) => {
    const entry = { socket, writes: 0 };
    // Writes are counted at the libuv handle (each call is one write syscall or one queued uv_write): the codec writes
    // there directly when nothing is queued (direct-write.ts), and socket.write ends there too.
    const handle = (socket as Socket & { _handle: Record<string, (...args: unknown[]) => unknown> })._handle;
    for (const method of ['writeBuffer', 'writev', 'writeLatin1String', 'writeUtf8String', 'writeAsciiString', 'writeUcs2String']) {
      const original = handle[method]!.bind(handle);
      handle[method] = (...args: unknown[]) => {
        entry.writes++;
        return original(...args);
      };
    }
    served.push(entry);
    codec.serve(socket, { remoteAddress: '127.0.0.1', remotePort: socket.remotePort ?? 0, localAddress: '127.0.0.1', localPort: 0 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    errors,
    served,
    close: async () => {
      codec.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Writes `payload` (all at once, or piece by piece with pauses) and collects what comes back until close or timeout. */
function exchange(port: number, payload: string | string[], opts: { timeoutMs?: number; halfClose?: boolean; until?: (got: string) => boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, opts.timeoutMs ?? 3000);
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (opts.until?.(got)) done();
    });
    socket.on('error', () => {});
    socket.on('close', done);
    const parts = Array.isArray(payload) ? payload : [payload];
    let i = 0;
    const next = (): void => {
      if (i >= parts.length) {
        if (opts.halfClose) socket.end();
        return;
      }
      socket.write(parts[i++]!);
      setTimeout(next, 30);
    };
    next();
  });
}

/** Collects a stream's request body, then calls `then`. */
function readBody(s: ServerStream, then: (body: string, trailers?: HttpHeaders) => void): void {
  let body = '';
  s.setBodySink({ onData: (c) => (body += c.toString()), onEnd: (t) => then(body, t) });
}

test('framing: headers-only gets content-length: 0 and a date; a streamed body is chunked with trailers; HEAD and 204 carry no body', async (t) => {
  const h = await start((s) => {
    const path = s.headers[':path'];
    readBody(s, () => {
      if (path === '/empty') s.respond(200, { 'x-a': '1' }, true);
      else if (path === '/stream') {
        s.respond(200, { 'content-type': 'text/plain' }, false);
        s.write(Buffer.from('hello '));
        s.write(Buffer.from('world'));
        s.end({ 'grpc-status': '0' });
      } else if (path === '/head' || path === '/nocontent') {
        s.respond(path === '/head' ? 200 : 204, path === '/head' ? { 'content-length': '5' } : {}, false);
        s.write(Buffer.from('never'));
        s.end();
      }
    });
  });
  t.after(() => h.close());
  const empty = await exchange(h.port, 'GET /empty HTTP/1.1\r\nhost: a\r\n\r\n', { until: (g) => g.includes('\r\n\r\n') });
  assert.match(empty, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(empty, /\r\ncontent-length: 0\r\n/);
  assert.match(empty, /\r\ndate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
  assert.doesNotMatch(empty, /transfer-encoding|connection:/i);
  const streamed = await exchange(h.port, 'GET /stream HTTP/1.1\r\nhost: a\r\n\r\n', { until: (g) => g.endsWith('\r\n\r\n') && g.includes('0\r\n') });
  assert.match(streamed, /\r\ntransfer-encoding: chunked\r\n/);
  assert.ok(streamed.endsWith('\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\ngrpc-status: 0\r\n\r\n'), streamed);
  const head = await exchange(h.port, 'HEAD /head HTTP/1.1\r\nhost: a\r\n\r\nGET /nocontent HTTP/1.1\r\nhost: a\r\n\r\n', { timeoutMs: 500 });
  assert.deepEqual(head.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 200', 'HTTP/1.1 204']);
  assert.doesNotMatch(head, /never/);
  assert.match(head, /content-length: 5/);
});

test('a response head and a small body leave in one socket write', async (t) => {
  const body = Buffer.alloc(1024, 'x');
  const h = await start((s) => {
    readBody(s, () => {
      s.respond(200, { 'content-length': String(body.length) }, false);
      s.write(body);
      s.end();
    });
  });
  t.after(() => h.close());
  const out = await exchange(h.port, 'GET / HTTP/1.1\r\nhost: a\r\n\r\n', { until: (g) => g.endsWith('x'.repeat(1024)) });
  assert.ok(out.endsWith(`\r\n\r\n${'x'.repeat(1024)}`));
  assert.equal(h.served[0]!.writes, 1);
});

test('pipelined requests with bodies are answered in order, one at a time, each with its own body', async (t) => {
  const order: string[] = [];
  let active = 0;
  const h = await start((s) => {
    active++;
    assert.equal(active, 1, 'the next request waits for the previous response');
    const path = String(s.headers[':path']);
    order.push(path);
    readBody(s, (b) => {
      // The first answer is late: the second request must still wait for it.
      setTimeout(() => {
        active--;
        s.respond(200, { 'content-length': String(b.length + path.length) }, false);
        s.write(Buffer.from(path + b));
        s.end();
      }, path === '/1' ? 100 : 0);
    });
  });
  t.after(() => h.close());
  const out = await exchange(
    h.port,
    'POST /1 HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabcPOST /2 HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\nGET /3 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n',
  );
  assert.deepEqual(order, ['/1', '/2', '/3']);
  const bodies = out.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
  assert.deepEqual(bodies, ['/1abc', '/2de', '/3']);
  assert.match(out, /connection: close\r\n\r\n\/3$/, 'the last request asked to close: the connection closed after it');
});

test('100-continue is answered by the codec and the Expect header is not passed on; a body held until the sink is set', async (t) => {
  let seen: HttpHeaders | undefined;
  const h = await start((s) => {
    seen = s.headers;
    // A filter that pauses before the router takes the body: bytes wait in the codec.
    setTimeout(() => readBody(s, (b) => {
      s.respond(200, { 'content-length': String(b.length) }, false);
      s.write(Buffer.from(b));
      s.end();
    }), 100);
  });
  t.after(() => h.close());
  const out = await exchange(h.port, ['POST /c HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 10\r\n\r\n', 'hello', 'world'], { until: (g) => g.endsWith('helloworld') });
  assert.match(out, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  assert.equal(seen?.['expect'], undefined);
  assert.equal(seen?.[':authority'], 'a');
});

test('HTTP/1.0: a body without a length ends with the connection; a sized one keeps a keep-alive connection open', async (t) => {
  const h = await start((s) => {
    assert.equal(s.protocol, 'HTTP/1.0');
    readBody(s, () => {
      s.respond(200, s.headers[':path'] === '/sized' ? { 'content-length': '3' } : {}, false);
      s.write(Buffer.from('old'));
      s.end();
    });
  });
  t.after(() => h.close());
  const plain = await exchange(h.port, 'GET / HTTP/1.0\r\n\r\n');
  assert.match(plain, /\r\nconnection: close\r\n\r\nold$/);
  assert.doesNotMatch(plain, /transfer-encoding|content-length/);
  const kept = await exchange(h.port, 'GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n', { timeoutMs: 500 });
  // No length and no chunking in HTTP/1.0: the body still has to end with the connection.
  assert.match(kept, /\r\nconnection: close\r\n\r\nold$/);
  const sized = await exchange(h.port, 'GET /sized HTTP/1.0\r\nconnection: keep-alive\r\n\r\nGET /sized HTTP/1.0\r\nconnection: keep-alive\r\n\r\n', { timeoutMs: 500 });
  assert.deepEqual(sized.match(/connection: [a-z-]+/g), ['connection: keep-alive', 'connection: keep-alive']);
});

test('a client that half-closes with a request in flight resets it; a request cut short is answered 400', async (t) => {
  let resets = 0;
  const h = await start((s) => {
    s.onReset(() => resets++);
    readBody(s, () => {}); // never answers
  });
  t.after(() => h.close());
  await exchange(h.port, 'GET /slow HTTP/1.1\r\nhost: a\r\n\r\n', { halfClose: true, timeoutMs: 1000 });
  assert.equal(resets, 1);
  const cut = await exchange(h.port, 'GET /cut HTTP/1.1\r\nhost: a\r\nx-partial', { halfClose: true, timeoutMs: 1000 });
  assert.match(cut, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.deepEqual(h.errors, ['malformed']);
});

test('codec errors: 431 for oversize headers, 400 for smuggling, 408 when headers stall, idle connections close', async (t) => {
  let streams = 0;
  const h = await start(() => streams++, { maxRequestHeadersKb: 1, requestHeadersTimeoutMs: 200, idleTimeoutMs: 300 });
  t.after(() => h.close());
  assert.match(await exchange(h.port, `GET / HTTP/1.1\r\nhost: a\r\nx-big: ${'a'.repeat(2048)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
  assert.match(await exchange(h.port, 'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'), /^HTTP\/1\.1 400 .*\r\nconnection: close\r\n/s);
  const started = performance.now();
  assert.match(await exchange(h.port, 'GET / HTTP/1.1\r\nhost: a\r\n'), /^HTTP\/1\.1 408 /);
  assert.ok(performance.now() - started < 2500);
  assert.deepEqual(h.errors, ['header_overflow', 'smuggling', 'header_timeout']);
  // An idle keep-alive connection (no bytes at all) is closed by idle_timeout, not by the header timer.
  const idle = await exchange(h.port, [], { timeoutMs: 2000 });
  assert.equal(idle, '');
  assert.equal(streams, 0);
});
