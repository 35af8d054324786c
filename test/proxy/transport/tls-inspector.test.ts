// The TLS inspector on real ClientHellos (node:tls and openssl s_client): SNI and ALPN read, plaintext told apart, bytes left for the next reader.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { test } from 'node:test';
import { detectHttp2Preface, MAX_CLIENT_HELLO, parseClientHello, peekSocket } from '../../../src/proxy/transport/tls-inspector.js';
import { hasOpenssl } from './pki.js';

/** Accepts one connection, peeks until the inspector has an answer, then reads whatever follows to prove nothing was consumed. */
async function capture(client: (port: number) => void): Promise<{ peeked: Buffer; replay: Buffer }> {
  return new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
      void peekSocket(socket, (b) => parseClientHello(b).kind !== 'need_more' || b.length >= MAX_CLIENT_HELLO, 5000).then((peek) => {
        socket.unshift(peek.bytes);
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => {
          chunks.push(c);
          const all = Buffer.concat(chunks);
          if (all.length >= peek.bytes.length) {
            socket.destroy();
            server.close();
            resolve({ peeked: peek.bytes, replay: all.subarray(0, peek.bytes.length) });
          }
        });
        socket.resume();
      }, reject);
    });
    server.listen(0, '127.0.0.1', () => client((server.address() as AddressInfo).port));
  });
}

test('node:tls ClientHello: SNI (lower-cased) and ALPN in the client\'s order; the bytes are replayed untouched', async () => {
  const { peeked, replay } = await capture((port) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'Outbound_.9080_._.Reviews.default.svc.cluster.local', ALPNProtocols: ['istio-peer-exchange', 'istio'], rejectUnauthorized: false });
    s.on('error', () => {});
  });
  assert.deepEqual(parseClientHello(peeked), { kind: 'tls', serverName: 'outbound_.9080_._.reviews.default.svc.cluster.local', alpn: ['istio-peer-exchange', 'istio'] });
  assert.ok(replay.equals(peeked));
});

test('openssl s_client ClientHello without SNI: TLS, no server name, ALPN h2 then http/1.1', { skip: hasOpenssl() ? false : 'openssl CLI is missing' }, async () => {
  const { peeked } = await capture((port) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-noservername', '-alpn', 'h2,http/1.1'], { stdio: ['pipe', 'ignore', 'ignore'] });
    setTimeout(() => child.kill(), 3000).unref();
  });
  assert.deepEqual(parseClientHello(peeked), { kind: 'tls', alpn: ['h2', 'http/1.1'] });
});

test('plaintext HTTP/1.1 and the HTTP/2 preface are not TLS; a partial record needs more bytes', async () => {
  const { peeked } = await capture((port) => {
    const s = netConnect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    s.on('error', () => {});
  });
  assert.deepEqual(parseClientHello(peeked), { kind: 'not_tls' });
  assert.equal(detectHttp2Preface(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), 'h2');
  assert.equal(detectHttp2Preface(Buffer.from('PRI * HT')), 'need_more');
  assert.equal(detectHttp2Preface(peeked), 'http1');
  assert.deepEqual(parseClientHello(Buffer.from([0x16, 0x03, 0x01])), { kind: 'need_more' });
  assert.deepEqual(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])), { kind: 'need_more' });
  assert.deepEqual(parseClientHello(Buffer.from([0x16, 0x01])), { kind: 'not_tls' });
});

test('a client that sends nothing: the peek times out and leaves the socket usable', async () => {
  const result = await new Promise<{ timedOut: boolean; closed: boolean }>((resolve) => {
    const server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
      void peekSocket(socket, () => false, 100).then((peek) => {
        socket.destroy();
        server.close();
        resolve({ timedOut: peek.timedOut, closed: peek.closed });
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const s = netConnect((server.address() as AddressInfo).port, '127.0.0.1');
      s.on('error', () => {});
    });
  });
  assert.deepEqual(result, { timedOut: true, closed: false });
});

test('a timeout of 0 waits without a limit, as Envoy reads listener_filters_timeout 0s: a slow client is still inspected', async () => {
  const result = await new Promise<{ timedOut: boolean; closed: boolean; bytes: string }>((resolve) => {
    const server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
      void peekSocket(socket, (b) => b.includes(0x0a), 0).then((peek) => {
        socket.destroy();
        server.close();
        resolve({ timedOut: peek.timedOut, closed: peek.closed, bytes: peek.bytes.toString() });
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const s = netConnect((server.address() as AddressInfo).port, '127.0.0.1');
      s.on('error', () => {});
      setTimeout(() => s.write('GET / HTTP/1.1\r\n'), 300);
    });
  });
  assert.deepEqual(result, { timedOut: false, closed: false, bytes: 'GET / HTTP/1.1\r\n' });
});
