// VirtualService tcp and tls routes → outbound filter chains (Istio's tls.go), then run by the proxy over real sockets:
// a weighted TCP split between two echo servers, TLS passed through by SNI to two TLS servers, the idle timeout.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import type { DestinationRule, VirtualService } from '../../../src/api/index.js';
import { buildOutboundListeners } from '../../../src/control/translate/listener/sidecar-outbound.js';
import { matchesOnSource, type L4RouteSource } from '../../../src/control/translate/listener/outbound-l4-routes.js';
import { unpackAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { FakeCluster, FakeClusterManager, fakeHost } from '../../proxy/http/fakes.js';
import { startProxy } from '../../proxy/http/harness.js';
import { MESH, service } from './bookinfo-translate-fixture.js';

type Listener = envoy.config.listener.v3.Listener;
type TcpProxy = envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;

function vs(name: string, spec: Record<string, unknown>): VirtualService {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: 'default' }, spec } as unknown as VirtualService;
}

function dr(host: string, spec: Record<string, unknown>): DestinationRule {
  return { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: host.split('.')[0]!, namespace: 'default' }, spec: { host, ...spec } } as unknown as DestinationRule;
}

function source(vss: VirtualService[], drs: DestinationRule[] = [], from?: L4RouteSource['source']): L4RouteSource {
  return {
    virtualServiceFor: (h) => vss.find((v) => ((v.spec as { hosts?: string[] }).hosts ?? []).includes(h)),
    destinationRule: (h) => drs.find((d) => (d.spec as { host?: string }).host === h),
    ...(from ? { source: from } : {}),
  };
}

const tcpOf = (l: Listener | undefined, i = 0): TcpProxy => unpackAny<TcpProxy>(l!.filter_chains![i]!.filters!.at(-1)!.typed_config!);

const echo = service('echo', [{ name: 'tcp', number: 9000, protocol: 'TCP' }], { addresses: ['10.96.0.60'] });
const apiA = service('a.example.com', [{ name: 'tls', number: 443, protocol: 'TLS' }], { location: 'MESH_EXTERNAL' });
const apiB = service('b.example.com', [{ name: 'https', number: 443, protocol: 'HTTPS' }], { location: 'MESH_EXTERNAL' });

const WEIGHTED = vs('echo', {
  hosts: ['echo.default.svc.cluster.local'],
  tcp: [
    { match: [{ port: 9000, destinationSubnets: ['10.20.0.0/16'] }], route: [{ destination: { host: 'echo.default.svc.cluster.local', subset: 'v3' } }] },
    { match: [{ port: 9000, sourceLabels: { app: 'canary' } }], route: [{ destination: { host: 'echo.default.svc.cluster.local', subset: 'v2' } }] },
    { route: [{ destination: { host: 'echo.default.svc.cluster.local', subset: 'v1' }, weight: 50 }, { destination: { host: 'echo.default.svc.cluster.local', subset: 'v2' }, weight: 50 }] },
  ],
});

test('tcp routes: destinationSubnets chain first, sourceLabels evaluated per proxy, weighted_clusters for the split, idle timeout from the DestinationRule', () => {
  const rule = dr('echo.default.svc.cluster.local', { trafficPolicy: { connectionPool: { tcp: { idleTimeout: '30s' } } }, subsets: [{ name: 'v3', labels: { version: 'v3' }, trafficPolicy: { connectionPool: { tcp: { idleTimeout: '5s', maxConnectionDuration: '1h' } } } }] });
  const plain = buildOutboundListeners([echo], { mesh: MESH }, source([WEIGHTED], [rule], { labels: { app: 'web' }, namespace: 'default' }));
  const l = plain.find((x) => x.name === '10.96.0.60_9000')!;
  assert.deepEqual(l.filter_chains!.map((c) => c.filter_chain_match?.prefix_ranges?.map((r) => `${r.address_prefix}/${r.prefix_len?.value}`) ?? []), [['10.20.0.0/16'], []]);
  assert.equal(tcpOf(l, 0).cluster, 'outbound|9000|v3|echo.default.svc.cluster.local');
  assert.deepEqual(tcpOf(l, 0).idle_timeout, { seconds: 5 }, 'the subset\'s idle timeout');
  assert.deepEqual(tcpOf(l, 0).max_downstream_connection_duration, { seconds: 3600 });
  const split = tcpOf(l, 1);
  assert.equal(split.stat_prefix, 'echo.default');
  assert.deepEqual(split.weighted_clusters?.clusters?.map((c) => `${c.name}=${c.weight}`), ['outbound|9000|v1|echo.default.svc.cluster.local=50', 'outbound|9000|v2|echo.default.svc.cluster.local=50']);
  assert.deepEqual(split.idle_timeout, { seconds: 30 });
  // A canary sender takes the sourceLabels route instead of the split.
  const canary = buildOutboundListeners([echo], { mesh: MESH }, source([WEIGHTED], [rule], { labels: { app: 'canary' }, namespace: 'default' })).find((x) => x.name === '10.96.0.60_9000')!;
  assert.equal(tcpOf(canary, 1).cluster, 'outbound|9000|v2|echo.default.svc.cluster.local');
  assert.equal(matchesOnSource([WEIGHTED]), true);
  // Without a VirtualService: the service's own cluster, Envoy's default idle timeout (1 h) left to the proxy.
  const bare = buildOutboundListeners([echo], { mesh: MESH }).find((x) => x.name === '10.96.0.60_9000')!;
  assert.equal(tcpOf(bare).cluster, 'outbound|9000||echo.default.svc.cluster.local');
  assert.equal(tcpOf(bare).idle_timeout, undefined);
});

const TLS_ROUTES = vs('apis', {
  hosts: ['a.example.com'],
  tls: [
    { match: [{ port: 443, sniHosts: ['a.example.com'] }], route: [{ destination: { host: 'a.example.com' } }] },
    { match: [{ port: 443, sniHosts: ['a.example.com'] }], route: [{ destination: { host: 'b.example.com' } }] },
    { match: [{ port: 8443, sniHosts: ['other.example.com'] }], route: [{ destination: { host: 'b.example.com' } }] },
  ],
});

test('tls routes: SNI chains on the wildcard listener with the TLS inspector; a repeated SNI match is dropped; a service without a route gets its host as SNI', () => {
  const listeners = buildOutboundListeners([apiA, apiB], { mesh: MESH }, source([TLS_ROUTES]));
  const l = listeners.find((x) => x.name === '0.0.0.0_443')!;
  assert.deepEqual(l.listener_filters?.map((f) => f.name), ['envoy.filters.listener.tls_inspector']);
  assert.deepEqual(l.filter_chains!.map((c) => c.filter_chain_match?.server_names), [['a.example.com'], ['b.example.com']]);
  assert.equal(tcpOf(l, 0).cluster, 'outbound|443||a.example.com');
  assert.equal(tcpOf(l, 1).cluster, 'outbound|443||b.example.com', 'b has no tls route of its own for port 443: its host is its SNI');
});

test('auto-allocated VIPs: address-less TCP ServiceEntries on one port get a listener each instead of sharing a catch-all', () => {
  const pgA = service('pg-a.example.com', [{ name: 'pg', number: 5432, protocol: 'TCP' }], { location: 'MESH_EXTERNAL' });
  const pgB = service('pg-b.example.com', [{ name: 'pg', number: 5432, protocol: 'TCP' }], { location: 'MESH_EXTERNAL' });
  const shared = buildOutboundListeners([pgA, pgB], { mesh: MESH });
  assert.deepEqual(shared.find((l) => l.name === '0.0.0.0_5432')!.filter_chains!.map((c) => c.name), ['outbound|5432||pg-a.example.com'], 'without VIPs the first takes the port');
  const vips = new Map([['pg-a.example.com', '240.240.1.1'], ['pg-b.example.com', '240.240.1.2']]);
  const own = buildOutboundListeners([pgA, pgB], { mesh: MESH }, undefined, vips);
  assert.equal(tcpOf(own.find((l) => l.name === '240.240.1.1_5432')).cluster, 'outbound|5432||pg-a.example.com');
  assert.equal(tcpOf(own.find((l) => l.name === '240.240.1.2_5432')).cluster, 'outbound|5432||pg-b.example.com');
  assert.equal(own.find((l) => l.name === '0.0.0.0_5432'), undefined);
});

let dir: string;
const servers: Server[] = [];

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Binds a generated (unbound) outbound listener to 127.0.0.1:0 so a test can dial it. */
function bound(l: Listener): Listener {
  return { ...l, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, bind_to_port: { value: true } };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-l4-'));
});
after(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the proxy runs the generated split: connections reach both echo subsets, the bytes come back', async () => {
  const v1 = await listen(createServer((s) => s.on('data', (d) => s.write(`v1:${d}`))));
  const v2 = await listen(createServer((s) => s.on('data', (d) => s.write(`v2:${d}`))));
  const l = buildOutboundListeners([echo], { mesh: MESH }, source([WEIGHTED], [], { labels: {}, namespace: 'default' })).find((x) => x.name === '10.96.0.60_9000')!;
  const clusters = new FakeClusterManager()
    .add(new FakeCluster('outbound|9000|v1|echo.default.svc.cluster.local', [fakeHost(v1)]))
    .add(new FakeCluster('outbound|9000|v2|echo.default.svc.cluster.local', [fakeHost(v2)]))
    .add(new FakeCluster('outbound|9000|v3|echo.default.svc.cluster.local', [fakeHost(v1)]));
  const proxy = await startProxy([bound(l)], new Map(), clusters);
  try {
    const seen = { v1: 0, v2: 0 };
    for (let i = 0; i < 40; i++) {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = netConnect(proxy.port('10.96.0.60_9000'), '127.0.0.1', () => s.write('ping'));
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString());
        });
        s.on('error', reject);
      });
      assert.match(reply, /^v[12]:ping$/);
      seen[reply.slice(0, 2) as 'v1' | 'v2']++;
    }
    // 40 draws at 50/50: both sides are hit except with probability 2^-39.
    assert.ok(seen.v1 > 0 && seen.v2 > 0, JSON.stringify(seen));
  } finally {
    await proxy.close();
  }
});

function makeCert(name: string): { key: string; cert: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`), '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.pem`), 'utf8') };
}

test('TLS passthrough by SNI: each ClientHello reaches the TLS server of its name, end to end encrypted', async () => {
  const a = makeCert('a.example.com');
  const b = makeCert('b.example.com');
  const portA = await listen(createTlsServer(a, (s) => s.end('hello from a')));
  const portB = await listen(createTlsServer(b, (s) => s.end('hello from b')));
  const l = buildOutboundListeners([apiA, apiB], { mesh: MESH }, source([TLS_ROUTES])).find((x) => x.name === '0.0.0.0_443')!;
  const clusters = new FakeClusterManager().add(new FakeCluster('outbound|443||a.example.com', [fakeHost(portA)])).add(new FakeCluster('outbound|443||b.example.com', [fakeHost(portB)]));
  const proxy = await startProxy([bound(l)], new Map(), clusters);
  try {
    const port = proxy.port('0.0.0.0_443');
    const fetch = (servername: string, ca: string) =>
      new Promise<string>((resolve, reject) => {
        let secure = false;
        const c = tlsConnect({ port, host: '127.0.0.1', servername, ca }, () => (secure = true));
        let out = '';
        c.on('data', (d) => (out += d.toString()));
        c.on('end', () => (secure ? resolve(out) : reject(new Error('closed before the handshake'))));
        c.on('error', reject);
      });
    // The client verifies each server's own certificate: the proxy never terminated TLS.
    assert.equal(await fetch('a.example.com', a.cert), 'hello from a');
    assert.equal(await fetch('b.example.com', b.cert), 'hello from b');
    // An SNI no chain matches has no filter chain (PassthroughFilterChain is the default: its cluster is absent here).
    await assert.rejects(fetch('c.example.com', a.cert));
  } finally {
    await proxy.close();
  }
});

test('tcp_proxy idle_timeout (from the DestinationRule) closes an idle connection and counts it', async () => {
  const quiet = await listen(createServer((s) => s.on('data', (d) => s.write(d))));
  const rule = dr('echo.default.svc.cluster.local', { trafficPolicy: { connectionPool: { tcp: { idleTimeout: '300ms' } } } });
  const l = buildOutboundListeners([echo], { mesh: MESH }, source([], [rule])).find((x) => x.name === '10.96.0.60_9000')!;
  const clusters = new FakeClusterManager().add(new FakeCluster('outbound|9000||echo.default.svc.cluster.local', [fakeHost(quiet)]));
  const proxy = await startProxy([bound(l)], new Map(), clusters);
  try {
    const closed = await new Promise<string>((resolve) => {
      const s = netConnect(proxy.port('10.96.0.60_9000'), '127.0.0.1', () => s.write('once'));
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      const timer = setTimeout(() => {
        s.destroy();
        resolve('still open after 5 s');
      }, 5_000);
      s.on('close', () => {
        clearTimeout(timer);
        resolve(`closed after ${got}`);
      });
      s.on('error', () => undefined);
    });
    assert.equal(closed, 'closed after once');
    assert.equal(proxy.manager.status()[0]!.tcpStats!['outbound|9000||echo.default.svc.cluster.local']!['idle_timeout'], 1);
  } finally {
    await proxy.close();
  }
});
