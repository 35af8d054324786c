// Protocols through the real data plane: gRPC (unary, server streaming with trailers, a non-OK grpc-status and custom
// trailing metadata passing through) over HTTP/2 to an HTTP/2 upstream, HTTP/1.1 keep-alive reuse, h2c downstream to
// an HTTP/1.1 upstream, and a WebSocket upgrade (raw handshake, masked frames echoed) with its counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { accessLogEntries, get, h2get, H2_UPSTREAM, startDataPlane, startUpstream, staticCluster, vhost } from './support.js';

const identity = (b: Buffer): Buffer => b;
const SERVICE = {
  Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  Count: { path: '/test.Echo/Count', requestStream: false, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} as const;

test('gRPC: unary, server streaming with trailers, non-OK status through the proxy', async (t) => {
  const server = new grpc.Server();
  server.addService(SERVICE as unknown as grpc.ServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const text = call.request.toString();
      if (text === 'fail') {
        const md = new grpc.Metadata();
        md.set('x-why', 'asked-to-fail');
        callback({ code: grpc.status.FAILED_PRECONDITION, details: 'you asked for it', metadata: md });
        return;
      }
      callback(null, Buffer.from(`echo:${text}:${String(call.metadata.get('x-envoy-expected-rq-timeout-ms')[0] ?? '')}`));
    },
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = Number(call.request.toString());
      for (let i = 1; i <= n; i++) call.write(Buffer.from(`item ${i}`));
      const md = new grpc.Metadata();
      md.set('x-count', String(n));
      call.end(md);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const dp = await startDataPlane({
    clusters: [staticCluster('grpc', [port], H2_UPSTREAM)],
    virtualHosts: [vhost([{ match: { prefix: '/test.Echo/', grpc: {} }, route: { cluster: 'grpc', timeout: '5s' } }])],
  });
  const Client = grpc.makeGenericClientConstructor(SERVICE as unknown as grpc.ServiceDefinition, 'Echo');
  const client = new Client(dp.address, grpc.credentials.createInsecure()) as unknown as {
    Echo(req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void;
    Count(req: Buffer): grpc.ClientReadableStream<Buffer>;
    close(): void;
  };
  t.after(async () => {
    client.close();
    await dp.close();
    server.forceShutdown();
  });
  const reply = await new Promise<Buffer>((resolve, reject) => client.Echo(Buffer.from('hi'), (err, res) => (err ? reject(err) : resolve(res!))));
  assert.equal(reply.toString(), 'echo:hi:5000');

  const failure = await new Promise<grpc.ServiceError>((resolve) => client.Echo(Buffer.from('fail'), (err) => resolve(err!)));
  assert.equal(failure.code, grpc.status.FAILED_PRECONDITION);
  assert.equal(failure.details, 'you asked for it');
  assert.deepEqual(failure.metadata.get('x-why'), ['asked-to-fail']);

  const items: string[] = [];
  const trailers = await new Promise<grpc.Metadata>((resolve, reject) => {
    const call = client.Count(Buffer.from('5'));
    let status: grpc.StatusObject | undefined;
    call.on('data', (b: Buffer) => items.push(b.toString()));
    call.on('status', (s: grpc.StatusObject) => (status = s));
    call.on('error', reject);
    call.on('end', () => setImmediate(() => (status?.code === grpc.status.OK ? resolve(status.metadata) : reject(new Error(`status ${status?.code}`)))));
  });
  assert.deepEqual(items, ['item 1', 'item 2', 'item 3', 'item 4', 'item 5']);
  assert.deepEqual(trailers.get('x-count'), ['5']);

  // A non-gRPC request does not match the grpc route: 404 (NR).
  assert.equal((await h2get(dp.address, '/test.Echo/Echo')).status, 404);
  const log = await accessLogEntries(dp, 4);
  assert.deepEqual(log.map((e) => e['code']), [200, 200, 200, 404]);
  const stats = await dp.stats();
  assert.equal(stats.get('cluster.grpc.upstream_rq_2xx'), 3);
  assert.equal(stats.get('cluster.grpc.upstream_cx_total'), 1, 'one HTTP/2 connection multiplexes all calls');
});

test('HTTP/1.1 keep-alive reuses one downstream and one upstream connection; h2c downstream to HTTP/1.1 upstream', async (t) => {
  const up = await startUpstream('h1');
  const dp = await startDataPlane({ clusters: [staticCluster('h1', [up.port])], virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'h1' } }])] });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  for (let i = 0; i < 20; i++) {
    const r = await get(dp.address, `/k${i}`, { agent: dp.agent, method: i % 2 ? 'POST' : 'GET', ...(i % 2 ? { body: `body-${i}` } : {}) });
    assert.equal(r.status, 200);
    assert.equal(r.body, `h1 /k${i}`);
  }
  assert.equal(up.seen[1]!.body, 'body-1');
  const stats = await dp.stats();
  assert.equal(stats.get('http.ingress.downstream_cx_total'), 1);
  assert.equal(stats.get('cluster.h1.upstream_cx_total'), 1);
  assert.equal(stats.get('http.ingress.downstream_rq_http1_total'), 20);
  const h2 = await h2get(dp.address, '/from-h2', { method: 'POST', body: 'h2 body' });
  assert.equal(h2.status, 200);
  assert.equal(h2.body, 'h1 /from-h2');
  assert.equal(up.seen.at(-1)!.body, 'h2 body');
  assert.ok(up.seen.at(-1)!.headers['x-request-id'], 'x-request-id generated');
  assert.equal(up.seen.at(-1)!.headers['x-forwarded-proto'], 'http');
});

/** A masked client text frame (RFC 6455). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

test('WebSocket: upgrade through the proxy, frames echoed both ways; refused without upgrade_configs', async (t) => {
  // A minimal WebSocket echo upstream: handshake, then unmask each text frame and send it back unmasked.
  const up = await startUpstream('ws');
  up.server.on('upgrade', (req, socket: Socket) => {
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-upstream-host: ${String(req.headers.host)}\r\n\r\n`);
    socket.on('data', (frame: Buffer) => {
      const len = frame[1]! & 0x7f;
      const mask = frame.subarray(2, 6);
      const payload = Buffer.from(frame.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]!));
      socket.write(Buffer.concat([Buffer.from([0x81, len]), payload]));
    });
  });
  const dp = await startDataPlane({
    clusters: [staticCluster('ws', [up.port])],
    hcm: { upgrade_configs: [{ upgrade_type: 'websocket' }] },
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'ws' } }])],
  });
  const plain = await startDataPlane({ clusters: [staticCluster('ws', [up.port])], virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'ws' } }])] });
  t.after(async () => {
    await dp.close();
    await plain.close();
    await up.close();
  });
  const handshake = 'GET /chat HTTP/1.1\r\nhost: chat.example\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n';
  const socket = connect({ host: '127.0.0.1', port: dp.port });
  const received: Buffer[] = [];
  socket.on('data', (c: Buffer) => received.push(c));
  socket.write(handshake);
  const waitFor = async (what: (b: Buffer) => boolean): Promise<Buffer> => {
    for (let i = 0; i < 200; i++) {
      const all = Buffer.concat(received);
      if (what(all)) return all;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out; got ${Buffer.concat(received).toString('latin1')}`);
  };
  const head = (await waitFor((b) => b.includes('\r\n\r\n'))).toString('latin1');
  assert.match(head, /^HTTP\/1.1 101/);
  assert.match(head, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
  assert.match(head, /x-upstream-host: chat.example/);
  const headLength = head.indexOf('\r\n\r\n') + 4;
  socket.write(clientFrame('hello'));
  const echoed = await waitFor((b) => b.length >= headLength + 7);
  assert.deepEqual([...echoed.subarray(headLength, headLength + 7)], [0x81, 5, ...Buffer.from('hello')]);
  socket.write(clientFrame('again'));
  const second = await waitFor((b) => b.length >= headLength + 14);
  assert.equal(second.subarray(headLength + 9, headLength + 14).toString(), 'again');
  socket.destroy();
  assert.equal(await dp.stat('http.ingress.downstream_cx_upgrades_total'), 1);

  // Without upgrade_configs the HCM refuses the upgrade with 403.
  const refused = await new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: plain.port });
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => (out += c));
    s.on('close', () => resolve(out));
    s.write(handshake);
  });
  assert.match(refused, /^HTTP\/1.1 403/);
});
