import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect } from 'node:http2';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { packAny } from '../../../src/xds/codec.js';
import { XdsValidationError } from '../../../src/common/errors.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { FakeCluster, FakeClusterManager, fakeHost, fakeRouteTable } from '../http/fakes.js';
import { get, HCM_MSG, hcmListener, routerFilter, startProxy, startUpstream, type Upstream } from '../http/harness.js';
import type { RouteTable } from '../../../src/proxy/router/route-table.js';
import { DownstreamTlsAcceptor } from '../../../src/proxy/transport/downstream-tls-acceptor.js';

let dir: string;
let up: Upstream;
let slowUp: Upstream;

function makeCert(name: string): { cert: string; key: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`), '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-lm-'));
  up = await startUpstream();
  slowUp = await startUpstream((_req, res) => setTimeout(() => res.end('slow done'), 600));
});
after(async () => {
  await up.close();
  await slowUp.close();
  rmSync(dir, { recursive: true, force: true });
});

function routesFor(cluster: string): Map<string, RouteTable> {
  return new Map([['r', fakeRouteTable('r', [{ prefix: '/', cluster }])]]);
}

test('unsupported listener, HCM and filter fields are refused with field paths', async () => {
  const proxy = await startProxy([], new Map());
  try {
    const bad = hcmListener('bad', { scoped_routes: { name: 'x' } }, { udp_listener_config: {} });
    assert.throws(() => proxy.manager.compile(bad), (err: unknown) => {
      assert.ok(err instanceof XdsValidationError);
      assert.ok(err.details.some((d) => d.includes('udp_listener_config: not supported')));
      assert.ok(err.details.some((d) => d.includes('filter_chains[0].filters[0].typed_config.scoped_routes')));
      return true;
    });
    const noRouter = hcmListener('nr', { http_filters: [] });
    assert.throws(() => proxy.manager.compile(noRouter), /last filter must be a terminal filter/);
    const unknown = hcmListener('u', { http_filters: [{ name: 'x.unknown', typed_config: { type_url: 'type.googleapis.com/x.Unknown', value: new Uint8Array() } }, routerFilter()] });
    assert.throws(() => proxy.manager.compile(unknown), /unknown HTTP filter x.unknown/);
  } finally {
    await proxy.close();
  }
});

test('listener update while a slow request is in flight: it completes; new requests use the new config', async () => {
  const clusters = new FakeClusterManager().add(new FakeCluster('slow', [fakeHost(slowUp.port)])).add(new FakeCluster('web', [fakeHost(up.port)]));
  const routes = new Map<string, RouteTable>([
    ['r', fakeRouteTable('r', [{ prefix: '/', cluster: 'slow' }])],
    ['r2', fakeRouteTable('r2', [{ prefix: '/', cluster: 'web', addResponseHeader: ['x-version', '2'] }])],
  ]);
  const proxy = await startProxy([hcmListener('l', {}, { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } })], routes, clusters);
  try {
    const port = proxy.port('l');
    const inflight = get(port, '/slow');
    await new Promise((r) => setTimeout(r, 150));
    // Same address (port pinned to what was bound), new route config name → a new generation on the same socket.
    const updated = hcmListener('l', { rds: { route_config_name: 'r2' } }, { address: { socket_address: { address: '127.0.0.1', port_value: port } } });
    await proxy.manager.apply([proxy.manager.compile(updated)]);
    const fresh = await get(port, '/x');
    assert.equal(fresh.status, 200);
    assert.equal(fresh.headers['x-version'], '2');
    const old = await inflight;
    assert.equal(old.status, 200);
    assert.equal(old.body, 'slow done');
    assert.equal(old.headers['connection'], 'close', 'a draining keep-alive connection is told to close');
  } finally {
    await proxy.close();
  }
});

test('removed listener stops accepting and its in-flight request finishes', async () => {
  const clusters = new FakeClusterManager().add(new FakeCluster('slow', [fakeHost(slowUp.port)]));
  const proxy = await startProxy([hcmListener('gone')], routesFor('slow'), clusters);
  try {
    const port = proxy.port('gone');
    const inflight = get(port, '/slow');
    await new Promise((r) => setTimeout(r, 150));
    await proxy.manager.apply([]);
    assert.equal(proxy.manager.status().find((s) => s.name === 'gone')?.state, 'draining');
    await assert.rejects(get(port, '/new'));
    const res = await inflight;
    assert.equal(res.status, 200);
    for (let i = 0; i < 100 && proxy.manager.status().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(proxy.manager.status().length, 0, 'drained listener is gone');
  } finally {
    await proxy.close();
  }
});

function tlsChain(names: string[], cert: { cert: string; key: string }, prefix: string, alpn: string[]): envoy.config.listener.v3.FilterChain {
  return {
    filter_chain_match: { server_names: names },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: packAny('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', {
        common_tls_context: { tls_certificates: [{ certificate_chain: { filename: cert.cert }, private_key: { inline_string: readFileSync(cert.key, 'utf8') } }], alpn_protocols: alpn },
      }),
    },
    filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: packAny(HCM_MSG, { stat_prefix: prefix, rds: { route_config_name: 'r' }, http_filters: [routerFilter()] }) }],
  };
}

test('TLS: filter chain chosen by SNI, certificate per chain, ALPN h2 and http/1.1, x-forwarded-proto https', async (t) => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    t.skip('openssl not installed');
    return;
  }
  const a = makeCert('a.example.com');
  const b = makeCert('b.example.com');
  const clusters = new FakeClusterManager().add(new FakeCluster('web', [fakeHost(up.port)]));
  const listener: envoy.config.listener.v3.Listener = {
    name: 'tls',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }],
    filter_chains: [tlsChain(['a.example.com'], a, 'a', ['h2', 'http/1.1']), tlsChain(['*.example.com'], b, 'b', ['h2', 'http/1.1'])],
  };
  const proxy = await startProxy([listener], routesFor('web'), clusters);
  // The ALPN list each connection's acceptor is handed: the tls_inspector's, so the ClientHello is not read twice.
  const handed: (readonly string[] | undefined)[] = [];
  const accept = DownstreamTlsAcceptor.prototype.accept;
  DownstreamTlsAcceptor.prototype.accept = function (this: DownstreamTlsAcceptor, socket, clientAlpn) {
    handed.push(clientAlpn);
    accept.call(this, socket, clientAlpn);
  };
  try {
    const port = proxy.port('tls');
    const peerCN = (servername: string) =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
          const cn = s.getPeerCertificate().subject.CN;
          s.end();
          resolve(String(cn));
        });
        s.on('error', reject);
      });
    assert.equal(await peerCN('a.example.com'), 'a.example.com');
    assert.equal(await peerCN('c.example.com'), 'b.example.com', 'wildcard chain');
    assert.deepEqual(handed, [['http/1.1'], ['http/1.1']], 'the inspector\'s ALPN reaches the acceptor');
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, servername: 'a.example.com', path: '/tls', ca: readFileSync(a.cert), headers: { host: 'a.example.com' }, agent: false }, (r) => {
        let body = '';
        r.on('data', (d) => (body += d));
        r.on('end', () => resolve({ status: r.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'https');
    const session = h2connect(`https://a.example.com:${port}`, { ca: readFileSync(a.cert), host: '127.0.0.1', servername: 'a.example.com', createConnection: () => tlsConnect({ host: '127.0.0.1', port, servername: 'a.example.com', ca: readFileSync(a.cert), ALPNProtocols: ['h2'] }) });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':path': '/h2tls' });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.resume();
      });
      assert.equal(status, 200);
    } finally {
      session.close();
    }
    assert.equal(proxy.httpStats('tls', 'a')['downstream_cx_http2_total'], 1);
    assert.ok(proxy.httpStats('tls', 'a')['downstream_cx_http1_total']! >= 1);
    // No chain for this SNI (and no default chain): the connection is closed.
    await assert.rejects(peerCN('other.test'));
    assert.ok(proxy.manager.status()[0]!.stats['no_filter_chain_match']! >= 1);
  } finally {
    DownstreamTlsAcceptor.prototype.accept = accept;
    await proxy.close();
  }
});

test('tcp_proxy splices bytes both ways and counts them; destination_port chain match', async () => {
  const echo = createTcpServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as AddressInfo).port;
  const clusters = new FakeClusterManager().add(new FakeCluster('echo', [fakeHost(echoPort)]));
  const listener: envoy.config.listener.v3.Listener = {
    name: 'tcp',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      { filter_chain_match: { destination_port: { value: 1 } }, filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: packAny('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', { stat_prefix: 'wrong', cluster: 'none' }) }] },
    ],
    default_filter_chain: { filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: packAny('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', { stat_prefix: 'echo', weighted_clusters: { clusters: [{ name: 'echo', weight: 1 }] } }) }] },
  };
  const proxy = await startProxy([listener], new Map(), clusters);
  try {
    const port = proxy.port('tcp');
    const reply = await new Promise<string>((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => s.write('ping'));
      s.on('data', (d) => {
        s.end();
        resolve(d.toString());
      });
      s.on('error', reject);
    });
    assert.equal(reply, 'ping');
    const stats = proxy.manager.status()[0]!.tcpStats!['echo']!;
    for (let i = 0; i < 50 && stats['downstream_cx_tx_bytes_total']! < 4; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(stats['downstream_cx_total'], 1);
    assert.equal(stats['downstream_cx_rx_bytes_total'], 4);
    assert.equal(stats['downstream_cx_tx_bytes_total'], 4);
  } finally {
    await proxy.close();
    echo.close();
  }
});
