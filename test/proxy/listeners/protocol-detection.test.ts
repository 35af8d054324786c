// Protocol detection with real sockets: tls_inspector and http_inspector telling HTTP/1.1, h2c, TLS and opaque TCP apart on
// one listener; filter_disabled sparing a server-first port; listener_filters_timeout falling through to the TCP chain.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { packAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { compileFilterDisabled, detectHttpProtocol } from '../../../src/proxy/listeners/protocol-detection.js';
import { H2_PREFACE } from '../../../src/proxy/transport/tls-inspector.js';
import { FakeCluster, FakeClusterManager, fakeHost } from '../http/fakes.js';
import { startProxy } from '../http/harness.js';

type Listener = envoy.config.listener.v3.Listener;
type FilterChain = envoy.config.listener.v3.FilterChain;

test('http_inspector: request lines, the h2 preface, and early refusal of what cannot be HTTP', () => {
  const d = (s: string | Buffer) => detectHttpProtocol(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  assert.equal(d('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 'http/1.1');
  assert.equal(d('POST /upload?x=1 HTTP/1.0\r\n'), 'http/1.0');
  assert.equal(d('OPTIONS * HTTP/1.1\n'), 'http/1.1', 'a bare LF ends the line too');
  assert.equal(d(H2_PREFACE), 'h2c');
  assert.equal(d(H2_PREFACE.subarray(0, 10)), 'need_more');
  for (const partial of ['G', 'GE', 'GET', 'GET ', 'GET /index', 'GET / ', 'GET / HTTP/1', 'GET / HTTP/1.1', 'GET / HTTP/1.1\r']) assert.equal(d(partial), 'need_more', partial);
  for (const other of ['hello world\n', 'get / HTTP/1.1\r\n', 'GET / HTTP/2\r\n', 'GET /\r\n', 'SSH-2.0-OpenSSH_9.2\r\n', 'GET /a\x01b HTTP/1.1\r\n', 'GETTING / HTTP/1.1\r\n', '\x00\x00\x00\x01']) {
    assert.equal(d(other), 'none', JSON.stringify(other));
  }
  assert.equal(d(`GET /${'a'.repeat(9000)}`), 'none', 'no request line within 8 KiB');
});

test('filter_disabled predicates: port ranges with or/and/not/any, and what is refused', () => {
  const problems: string[] = [];
  const or = compileFilterDisabled({ or_match: { rules: [{ destination_port_range: { start: 80, end: 81 } }, { destination_port_range: { start: 3306, end: 3310 } }] } }, 'p', problems);
  assert.deepEqual([80, 81, 3306, 3309, 3310].map(or), [true, false, true, true, false]);
  const not = compileFilterDisabled({ not_match: { destination_port_range: { start: 443, end: 444 } } }, 'p', problems);
  assert.deepEqual([443, 80].map(not), [false, true]);
  const and = compileFilterDisabled({ and_match: { rules: [{ destination_port_range: { start: 1, end: 100 } }, { not_match: { destination_port_range: { start: 50, end: 51 } } }] } }, 'p', problems);
  assert.deepEqual([10, 50, 100].map(and), [true, false, false]);
  assert.equal(compileFilterDisabled({ any_match: true }, 'p', problems)(1), true);
  assert.deepEqual(problems, []);
  compileFilterDisabled({ destination_port_range: { start: 90, end: 80 } }, 'a', problems);
  compileFilterDisabled({ or_match: { rules: [{ any_match: true }] } }, 'b', problems);
  compileFilterDisabled({}, 'c', problems);
  assert.deepEqual(problems, [
    'a.destination_port_range: end (80) must be greater than start (90); the range is [start, end)',
    'b.or_match.rules: at least 2 rules are required (Envoy\'s validation)',
    'c: a rule is required',
  ]);
});

/** A TCP upstream that records it was reached and answers with its name; `greeting` speaks first (server-first). */
interface Tagged {
  readonly server: Server;
  readonly port: number;
  reached: number;
}

async function taggedUpstream(name: string, greeting?: string): Promise<Tagged> {
  const tagged: Tagged = { server: createServer(), port: 0, reached: 0 };
  tagged.server.on('connection', (s: Socket) => {
    s.on('error', () => s.destroy());
    if (greeting) s.write(greeting);
    s.once('data', () => {
      tagged.reached++;
      s.end(name);
    });
  });
  await new Promise<void>((r) => tagged.server.listen(0, '127.0.0.1', r));
  (tagged as { port: number }).port = (tagged.server.address() as AddressInfo).port;
  return tagged;
}

const tcpProxy = (cluster: string) => [{ name: 'envoy.filters.network.tcp_proxy', typed_config: packAny('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', { stat_prefix: cluster, cluster }) }];
const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: packAny('envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector', {}) };
const HTTP_INSPECTOR = { name: 'envoy.filters.listener.http_inspector', typed_config: packAny('envoy.extensions.filters.listener.http_inspector.v3.HttpInspector', {}) };

let h1: Tagged, h2c: Tagged, tls: Tagged, raw: Tagged, serverFirst: Tagged;
let clusters: FakeClusterManager;

before(async () => {
  [h1, h2c, tls, raw, serverFirst] = await Promise.all([taggedUpstream('h1'), taggedUpstream('h2c'), taggedUpstream('tls'), taggedUpstream('raw'), taggedUpstream('mysql', '220 greeting\n')]);
  clusters = new FakeClusterManager()
    .add(new FakeCluster('h1', [fakeHost(h1.port)]))
    .add(new FakeCluster('h2c', [fakeHost(h2c.port)]))
    .add(new FakeCluster('tls', [fakeHost(tls.port)]))
    .add(new FakeCluster('raw', [fakeHost(raw.port)]))
    .add(new FakeCluster('mysql', [fakeHost(serverFirst.port)]));
});

after(() => {
  for (const t of [h1, h2c, tls, raw, serverFirst]) t.server.close();
});

const CHAINS: FilterChain[] = [
  // As Istio writes them: plaintext chains say raw_buffer too, since transport_protocol is matched before ALPN.
  { name: 'h1', filter_chain_match: { transport_protocol: 'raw_buffer', application_protocols: ['http/1.1'] }, filters: tcpProxy('h1') },
  { name: 'h2c', filter_chain_match: { transport_protocol: 'raw_buffer', application_protocols: ['h2c'] }, filters: tcpProxy('h2c') },
  { name: 'tls', filter_chain_match: { transport_protocol: 'tls' }, filters: tcpProxy('tls') },
];

function listener(name: string, extra: Partial<Listener>, rawCluster = 'raw', port = 0): Listener {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    listener_filters: [TLS_INSPECTOR, HTTP_INSPECTOR],
    filter_chains: [...CHAINS, { name: 'raw', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: tcpProxy(rawCluster) }],
    ...extra,
  };
}

/** Sends `bytes` (nothing when undefined) and collects what comes back until the proxy or upstream closes (bounded: 3 s). */
function exchange(port: number, bytes?: Buffer | string): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => {
      if (bytes !== undefined) s.write(bytes);
    });
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(`${out}<timeout>`);
    }, 3_000);
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => undefined);
  });
}

test('one listener: HTTP/1.1, h2c prior knowledge, TLS and opaque TCP each reach their own chain', async () => {
  const proxy = await startProxy([listener('detect', { listener_filters_timeout: { seconds: 5 } })], new Map(), clusters);
  try {
    const port = proxy.port('detect');
    assert.equal(await exchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 'h1');
    assert.equal(await exchange(port, H2_PREFACE), 'h2c');
    assert.equal(await exchange(port, 'hello, opaque TCP\n'), 'raw');
    // A binary protocol's first byte is neither TLS nor an HTTP method: raw at once, no line end needed.
    assert.equal(await exchange(port, Buffer.from([0x00, 0x01, 0x02])), 'raw');
    const tlsReached = tls.reached;
    await new Promise<void>((resolve) => {
      const c = tlsConnect({ port, host: '127.0.0.1', servername: 'db.example.com', ALPNProtocols: ['h2'], rejectUnauthorized: false });
      c.on('error', () => resolve()); // the "tls" upstream answers in plaintext: the handshake fails after the chain was picked
      c.on('close', () => resolve());
    });
    assert.equal(tls.reached, tlsReached + 1, 'the ClientHello went to the TLS chain');
    const stats = proxy.manager.status()[0]!.stats;
    assert.equal(stats['http_inspector.http11_found'], 1);
    assert.equal(stats['http_inspector.http2_found'], 1);
    assert.equal(stats['http_inspector.http_not_found'], 2);
    assert.equal(stats['tls_inspector.tls_found'], 1);
    assert.equal(stats['tls_inspector.sni_found'], 1);
    assert.equal(stats['tls_inspector.alpn_found'], 1);
  } finally {
    await proxy.close();
  }
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('a server-first port with the inspectors disabled (filter_disabled) is not held: the greeting arrives before the client says anything', async () => {
  const port = await freePort();
  const off = { destination_port_range: { start: port, end: port + 1 } };
  // listener_filters_timeout 0: an inspector that ran would wait for client bytes for ever.
  const l = listener('server-first', { listener_filters: [{ ...TLS_INSPECTOR, filter_disabled: off }, { ...HTTP_INSPECTOR, filter_disabled: off }], listener_filters_timeout: { seconds: 0 } }, 'mysql', port);
  const proxy = await startProxy([l], new Map(), clusters);
  try {
    const greeting = await new Promise<string>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      const timer = setTimeout(() => {
        s.destroy();
        resolve('<held>');
      }, 3_000);
      s.once('data', (d) => {
        clearTimeout(timer);
        s.destroy();
        resolve(d.toString());
      });
      s.on('error', () => undefined);
    });
    assert.equal(greeting, '220 greeting\n');
    assert.equal(proxy.manager.status()[0]!.stats['tls_inspector.tls_not_found'], undefined, 'nothing was inspected');
  } finally {
    await proxy.close();
  }
});

test('listener_filters_timeout: with continue_on_listener_filters_timeout a silent client falls through to the TCP chain; without it the connection is closed', async () => {
  const proxy = await startProxy(
    [
      listener('continue', { listener_filters_timeout: { nanos: 200_000_000 }, continue_on_listener_filters_timeout: true }, 'mysql'),
      listener('close', { listener_filters_timeout: { nanos: 200_000_000 } }, 'mysql'),
    ],
    new Map(),
    clusters,
  );
  try {
    const greeting = await new Promise<string>((resolve) => {
      const s = netConnect(proxy.port('continue'), '127.0.0.1');
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString());
      });
      s.on('error', () => undefined);
    });
    assert.equal(greeting, '220 greeting\n', 'raw_buffer chain after the timeout: the server-first upstream spoke');
    assert.equal(await exchange(proxy.port('close')), '', 'closed without a chain');
    const closed = proxy.manager.status().find((s) => s.name === 'close')!;
    assert.equal(closed.stats['downstream_pre_cx_timeout'], 1);
  } finally {
    await proxy.close();
  }
});

test('invalid filter_disabled is NACKed with its field path', async () => {
  const proxy = await startProxy([], new Map(), clusters);
  try {
    const bad = listener('bad', { listener_filters: [{ ...TLS_INSPECTOR, filter_disabled: { destination_port_range: { start: 10, end: 10 } } }] });
    assert.throws(() => proxy.manager.compile(bad), /listener_filters\[0\]\.filter_disabled\.destination_port_range: end \(10\) must be greater than start/);
  } finally {
    await proxy.close();
  }
});
