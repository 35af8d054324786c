// Connection pools against real upstreams on 127.0.0.1: HTTP/1.1 and HTTP/2, keep-alive, circuit breakers, failures, TLS.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createH2Server, createSecureServer, type Http2Server, type Http2SecureServer } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileCluster, type UpstreamClusterImpl } from '../../../src/proxy/upstream/cluster.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import type { UpstreamFailure } from '../../../src/proxy/upstream/types.js';
import { packAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type Cluster = envoy.config.cluster.v3.Cluster;

interface Result {
  status?: number;
  headers?: HttpHeaders;
  body: string;
  chunks: number;
  trailers?: HttpHeaders;
  failure?: UpstreamFailure;
  detail?: string;
}

function cluster(port: number, extra: Partial<Cluster> = {}, address = '127.0.0.1'): UpstreamClusterImpl {
  return compileCluster({
    name: 'up',
    type: 'STATIC',
    connect_timeout: { seconds: 2 },
    load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } } }] }] },
    ...extra,
  });
}

function send(c: UpstreamClusterImpl, headers: HttpHeaders, body: string[] = []): Promise<Result> {
  return new Promise((resolve) => {
    const r: Result = { body: '', chunks: 0 };
    const host = c.chooseHost({})!;
    const req = c.request(host, { ':method': 'GET', ':path': '/', ':authority': 'up.test', ':scheme': 'http', ...headers }, {
      onHeaders: (status, h) => {
        r.status = status;
        r.headers = h;
      },
      onData: (chunk) => {
        r.body += chunk.toString();
        r.chunks++;
      },
      onTrailers: (t) => {
        r.trailers = t;
      },
      onEnd: () => resolve(r),
      onFailure: (failure, detail) => {
        r.failure = failure;
        r.detail = detail;
        resolve(r);
      },
    });
    for (const b of body) req.write(Buffer.from(b));
    req.end();
  });
}

async function listen<T extends Server | Http2Server | Http2SecureServer | ReturnType<typeof createNetServer>>(server: T): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: { close(cb?: () => void): unknown; closeAllConnections?: () => void }): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((r) => server.close(() => r()));
}

/** Drains the cluster and checks nothing leaked: no connections, no active or pending requests. */
async function assertNoLeaks(c: UpstreamClusterImpl): Promise<void> {
  await c.drain();
  assert.equal(c.connectionCount, 0, 'connections left open');
  assert.equal(c.stats.upstream_cx_active, 0, 'upstream_cx_active');
  assert.equal(c.stats.upstream_rq_active, 0, 'upstream_rq_active');
  assert.equal(c.stats.upstream_rq_pending_active, 0, 'upstream_rq_pending_active');
  for (const h of c.hosts) {
    assert.equal(h.stats.rqActive, 0);
    assert.equal(h.stats.cxActive, 0);
  }
}

function echoHandler(req: IncomingMessage, res: ServerResponse): void {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    res.setHeader('x-method', req.method ?? '');
    res.setHeader('x-host', req.headers.host ?? '');
    res.write(`echo:`);
    res.end(Buffer.concat(parts));
  });
}

test('HTTP/1.1: request and response bodies stream through; keep-alive reuses one socket for sequential requests', async () => {
  let connections = 0;
  const server = createHttpServer(echoHandler);
  server.on('connection', () => connections++);
  const port = await listen(server);
  const c = cluster(port);
  const r = await send(c, { ':method': 'POST', 'content-type': 'text/plain' }, ['one,', 'two,', 'three']);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'echo:one,two,three');
  assert.equal(r.headers?.['x-method'], 'POST');
  assert.equal(r.headers?.['x-host'], 'up.test', ':authority becomes Host');
  assert.equal(r.headers?.[':status'], '200');
  for (let i = 0; i < 4; i++) assert.equal((await send(c, {})).status, 200);
  assert.equal(connections, 1, 'one socket for five sequential requests');
  assert.equal(c.stats.upstream_cx_total, 1);
  assert.equal(c.stats.upstream_rq_total, 5);
  assert.equal(c.stats.upstream_rq_2xx, 5);
  assert.equal(c.hosts[0]!.stats.rqSuccess, 5);
  await assertNoLeaks(c);
  await closeServer(server);
});

test('HTTP/1.1: max_requests_per_connection closes a connection after N requests', async () => {
  let connections = 0;
  const server = createHttpServer(echoHandler);
  server.on('connection', () => connections++);
  const port = await listen(server);
  const c = cluster(port, { max_requests_per_connection: { value: 2 } });
  for (let i = 0; i < 5; i++) assert.equal((await send(c, {})).status, 200);
  assert.equal(connections, 3);
  await assertNoLeaks(c);
  await closeServer(server);
});

test('circuit breaker: max_requests 1 with a slow upstream → the second request fails with overflow and is counted', async () => {
  let release: () => void = () => undefined;
  const server = createHttpServer((_req, res) => {
    release = () => res.end('slow');
  });
  const port = await listen(server);
  const c = cluster(port, { circuit_breakers: { thresholds: [{ max_requests: { value: 1 } }] } });
  const first = send(c, {});
  await new Promise((r) => setTimeout(r, 50));
  const second = await send(c, {});
  assert.equal(second.failure, 'overflow');
  assert.match(second.detail ?? '', /max_requests \(1\)/);
  assert.equal(c.stats.upstream_rq_pending_overflow, 1);
  release();
  assert.equal((await first).body, 'slow');
  assert.equal(c.stats.upstream_rq_total, 1, 'the refused request never reached the upstream');
  await assertNoLeaks(c);
  await closeServer(server);
});

test('circuit breaker: max_connections 1 queues the second request (upstream_cx_overflow) and max_pending_requests 1 refuses the third', async () => {
  const pending: ServerResponse[] = [];
  const server = createHttpServer((_req, res) => {
    pending.push(res);
  });
  const port = await listen(server);
  const c = cluster(port, { circuit_breakers: { thresholds: [{ max_connections: { value: 1 } }] } });
  const a = send(c, {});
  await new Promise((r) => setTimeout(r, 50));
  const b = send(c, {});
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(c.stats.upstream_cx_overflow, 1);
  assert.equal(c.stats.upstream_rq_pending_active, 1);
  pending.shift()!.end('a');
  assert.equal((await a).body, 'a');
  for (let i = 0; i < 50 && pending.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  pending.shift()!.end('b');
  assert.equal((await b).body, 'b');
  assert.equal(c.stats.upstream_cx_total, 1, 'the queued request reused the one connection');
  await assertNoLeaks(c);
  // One connection, one pending slot: x holds the connection, y waits, z overflows.
  const strict = cluster(port, { circuit_breakers: { thresholds: [{ max_connections: { value: 1 }, max_pending_requests: { value: 1 } }] } });
  const x = send(strict, {});
  await new Promise((r) => setTimeout(r, 50));
  const y = send(strict, {});
  const z = await send(strict, {});
  assert.equal(z.failure, 'overflow');
  assert.match(z.detail ?? '', /max_pending_requests \(1\)/);
  assert.equal(strict.stats.upstream_rq_pending_overflow, 1);
  for (let i = 0; i < 50 && pending.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  pending.shift()!.end('x');
  assert.equal((await x).body, 'x');
  for (let i = 0; i < 50 && pending.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  pending.shift()!.end('y');
  assert.equal((await y).body, 'y');
  await assertNoLeaks(strict);
  await closeServer(server);
});

test('connect failure to a closed port → connect_failure, upstream_cx_connect_fail counted', async () => {
  const probe = createNetServer();
  const port = await listen(probe);
  await closeServer(probe);
  const c = cluster(port);
  const r = await send(c, {});
  assert.equal(r.failure, 'connect_failure');
  assert.equal(c.stats.upstream_cx_connect_fail, 1);
  assert.equal(c.hosts[0]!.stats.cxConnectFail, 1);
  assert.equal(c.hosts[0]!.stats.rqError, 1);
  await assertNoLeaks(c);
});

test('connect timeout: a listener whose backlog is full never completes the handshake → connect_timeout', async (t) => {
  // A socket that listens with backlog 0 and never accepts; two connections fill its queue so further SYNs are dropped.
  let child: ChildProcess | undefined;
  try {
    child = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    t.skip('python3 is not available to hold a non-accepting listener');
    return;
  }
  const port = await new Promise<number | undefined>((resolve) => {
    child!.once('error', () => resolve(undefined));
    child!.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  if (!port) {
    t.skip('python3 is not available to hold a non-accepting listener');
    return;
  }
  try {
    const { connect } = await import('node:net');
    const fillers = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    for (const f of fillers) f.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const c = cluster(port, { connect_timeout: { nanos: 200_000_000 } });
    const r = await send(c, {});
    if (r.failure !== 'connect_timeout') {
      // Kernels with a larger minimum accept queue may still accept: report rather than fail spuriously.
      t.diagnostic(`kernel completed the handshake (${r.failure ?? r.status}); connect timeout not observable here`);
    } else {
      assert.equal(c.stats.upstream_cx_connect_timeout, 1);
      assert.equal(c.stats.upstream_cx_connect_fail, 1);
    }
    for (const f of fillers) f.destroy();
    await assertNoLeaks(c);
  } finally {
    child.kill();
  }
});

test('upstream reset mid-body → headers and part of the body, then remote_reset', async () => {
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const port = await listen(server);
  const c = cluster(port);
  const r = await send(c, {});
  assert.equal(r.status, 200);
  assert.equal(r.body, 'partial');
  assert.equal(r.failure, 'remote_reset');
  assert.equal(c.stats.upstream_rq_rx_reset, 1);
  await assertNoLeaks(c);
  await closeServer(server);
});

test('malformed upstream response → protocol_error', async () => {
  const server = createNetServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 twohundred OK\r\nbad header line\r\n\r\n'));
  });
  const port = await listen(server);
  const c = cluster(port);
  const r = await send(c, {});
  assert.equal(r.failure, 'protocol_error');
  assert.equal(r.status, undefined);
  await assertNoLeaks(c);
  await closeServer(server);
});

function h2Options(extra: object = {}): Partial<Cluster> {
  return {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': packAny('envoy.extensions.upstreams.http.v3.HttpProtocolOptions', { explicit_http_config: { http2_protocol_options: {} }, ...extra }),
    },
  };
}

test('HTTP/2 (explicit_http_config): streams multiplex on one session, bodies stream, gRPC trailers reach onTrailers', async () => {
  let sessions = 0;
  const server = createH2Server();
  server.on('session', () => sessions++);
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const parts: Buffer[] = [];
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-path': String(headers[':path']) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
      stream.write('h2:');
      stream.end(Buffer.concat(parts));
    });
  });
  const port = await listen(server);
  const c = cluster(port, h2Options());
  const results = await Promise.all([1, 2, 3].map((i) => send(c, { ':method': 'POST', ':path': `/svc/${i}`, 'content-type': 'application/grpc', te: 'trailers', connection: 'keep-alive' }, [`a${i}`, `b${i}`])));
  results.forEach((r, i) => {
    assert.equal(r.status, 200);
    assert.equal(r.body, `h2:a${i + 1}b${i + 1}`);
    assert.equal(r.headers?.['x-path'], `/svc/${i + 1}`);
    assert.equal(r.trailers?.['grpc-status'], '0');
  });
  assert.equal(sessions, 1);
  assert.equal(c.stats.upstream_cx_total, 1);
  assert.equal(c.stats.upstream_rq_2xx, 3);
  await assertNoLeaks(c);
  await closeServer(server);
});

test('HTTP/2: max_concurrent_streams 1 opens a second connection; stream reset → remote_reset', async () => {
  const server = createH2Server();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (headers[':path'] === '/reset') {
      stream.respond({ ':status': 200 });
      stream.write('x');
      // The upstream goes away mid-response. (A bare RST_STREAM after the client's END_STREAM is reported by Node's client
      // as a clean end with rstCode 0, so it cannot be told apart; a dropped session can.)
      setTimeout(() => stream.session?.destroy(), 20);
      return;
    }
    setTimeout(() => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    }, 30);
  });
  const port = await listen(server);
  const c = cluster(port, h2Options({ explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 1 } } } }));
  const [a, b] = await Promise.all([send(c, {}), send(c, {})]);
  assert.equal(a.body + b.body, 'okok');
  assert.equal(c.stats.upstream_cx_total, 2);
  const r = await send(c, { ':path': '/reset' });
  assert.equal(r.status, 200);
  assert.equal(r.failure, 'remote_reset');
  await assertNoLeaks(c);
  await closeServer(server);
});

test('HTTP/2: connect failure to a closed port → connect_failure', async () => {
  const probe = createNetServer();
  const port = await listen(probe);
  await closeServer(probe);
  const c = cluster(port, { http2_protocol_options: {} });
  assert.equal((await send(c, {})).failure, 'connect_failure');
  await assertNoLeaks(c);
});

/** A self-signed certificate for SAN DNS:upstream.test made with the openssl CLI, or undefined when it is missing. */
function makeCert(): { dir: string; cert: string; key: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-upstream-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=upstream.test', '-addext', 'subjectAltName=DNS:upstream.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return { dir, cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
}

const tlsMaterial = makeCert();
after(() => {
  if (tlsMaterial) rmSync(tlsMaterial.dir, { recursive: true, force: true });
});

function tlsSocket(ctx: object): Partial<Cluster> {
  return {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: packAny('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', ctx),
    },
  };
}

test('TLS upstream: SNI sent, chain verified against trusted_ca, SAN matched; a wrong SAN fails the connection', async (t) => {
  if (!tlsMaterial) {
    t.skip('openssl CLI is missing: cannot make a test certificate');
    return;
  }
  let sni: string | undefined;
  const server = createHttpsServer({ cert: tlsMaterial.cert, key: tlsMaterial.key }, (req, res) => res.end(`tls:${req.url}`));
  server.on('secureConnection', (s) => (sni = (s as unknown as { servername?: string }).servername));
  const port = await listen(server);
  const good = cluster(port, tlsSocket({
    sni: 'upstream.test',
    common_tls_context: { validation_context: { trusted_ca: { filename: join(tlsMaterial.dir, 'cert.pem') }, match_subject_alt_names: [{ exact: 'upstream.test' }] } },
  }));
  const r = await send(good, { ':path': '/secure' });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'tls:/secure');
  assert.equal(sni, 'upstream.test');
  await assertNoLeaks(good);
  const wrongSan = cluster(port, tlsSocket({
    sni: 'upstream.test',
    common_tls_context: { validation_context: { trusted_ca: { inline_string: tlsMaterial.cert }, match_subject_alt_names: [{ exact: 'other.test' }] } },
  }));
  assert.equal((await send(wrongSan, {})).failure, 'connect_failure');
  assert.equal(wrongSan.stats.upstream_cx_connect_fail, 1);
  await assertNoLeaks(wrongSan);
  // SDS by name: the secret is read when the connection is made.
  const secretCluster = compileCluster(
    {
      name: 'sds', type: 'STATIC', connect_timeout: { seconds: 2 },
      load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
      ...tlsSocket({ sni: 'upstream.test', common_tls_context: { validation_context_sds_secret_config: { name: 'ROOTCA' } } }),
    },
    { secrets: { get: (name) => (name === 'ROOTCA' ? { name, validation_context: { trusted_ca: { inline_string: tlsMaterial.cert } } } : undefined) } },
  );
  assert.equal((await send(secretCluster, {})).status, 200);
  await assertNoLeaks(secretCluster);
  const missing = cluster(port, tlsSocket({ common_tls_context: { validation_context_sds_secret_config: { name: 'NOPE' } } }));
  const m = await send(missing, {});
  assert.equal(m.failure, 'connect_failure');
  await assertNoLeaks(missing);
  await closeServer(server);
});

test('auto_config: ALPN picks HTTP/2 when the upstream offers it, HTTP/1.1 otherwise; plaintext auto_config is refused', async (t) => {
  if (!tlsMaterial) {
    t.skip('openssl CLI is missing: cannot make a test certificate');
    return;
  }
  const auto = {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': packAny('envoy.extensions.upstreams.http.v3.HttpProtocolOptions', { auto_config: {} }),
    },
  };
  const h2server = createSecureServer({ cert: tlsMaterial.cert, key: tlsMaterial.key, allowHTTP1: true }, (req, res) => res.end(`v${req.httpVersion}`));
  const h2port = await listen(h2server);
  const c2 = cluster(h2port, { ...auto, ...tlsSocket({}) });
  const [a, b] = await Promise.all([send(c2, {}), send(c2, {})]);
  assert.equal(a.body, 'v2.0');
  assert.equal(b.body, 'v2.0');
  assert.equal(c2.stats.upstream_cx_total, 1, 'the ALPN probe connection is the HTTP/2 session');
  await assertNoLeaks(c2);
  const h1server = createHttpsServer({ cert: tlsMaterial.cert, key: tlsMaterial.key }, (req, res) => res.end(`v${req.httpVersion}`));
  const h1port = await listen(h1server);
  const c1 = cluster(h1port, { ...auto, ...tlsSocket({}) });
  assert.equal((await send(c1, {})).body, 'v1.1');
  assert.equal((await send(c1, {})).body, 'v1.1');
  assert.equal(c1.stats.upstream_cx_total, 1, 'the ALPN probe connection is reused for HTTP/1.1');
  await assertNoLeaks(c1);
  assert.throws(() => cluster(1, auto), /auto_config: requires a TLS transport_socket/);
  await closeServer(h2server);
  await closeServer(h1server);
});

test('a removed host or cluster drains: in-flight requests finish, then connections close', async () => {
  let release: () => void = () => undefined;
  const server = createHttpServer((_req, res) => {
    release = () => res.end('late');
  });
  const port = await listen(server);
  const c = cluster(port);
  const inflight = send(c, {});
  await new Promise((r) => setTimeout(r, 50));
  let drained = false;
  const d = c.drain().then(() => (drained = true));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(drained, false, 'drain waits for the in-flight request');
  release();
  assert.equal((await inflight).body, 'late');
  await d;
  assert.equal(c.connectionCount, 0);
  assert.equal(c.stats.upstream_cx_active, 0);
  await closeServer(server);
});
