// use_original_dst and the original_dst listener filter with Envoy's hand-off rules, over a fake original-destination
// reader (the real SO_ORIGINAL_DST path runs in test/e2e/traffic-capture.test.ts); and the NACK without the addon.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { packAny } from '../../../src/xds/codec.js';
import { XdsValidationError } from '../../../src/common/errors.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { TrellisListenerManager } from '../../../src/proxy/listeners/listener-manager.js';
import { createHttpFilterRegistry } from '../../../src/proxy/filters/registry.js';
import type { OriginalDestination, OriginalDestinationSupport } from '../../../src/proxy/transport/original-destination.js';
import type { LoadBalancerContext, UpstreamHost } from '../../../src/proxy/upstream/types.js';
import type { StreamInfo } from '../../../src/proxy/http/stream-info.js';
import { FakeCluster, FakeClusterManager, fakeHost, fakeRouteTable } from '../http/fakes.js';
import { get, hcmListener, startUpstream, type Upstream } from '../http/harness.js';

type Listener = envoy.config.listener.v3.Listener;
const TCP_PROXY = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

/** An ORIGINAL_DST-like cluster: connects where the connection was originally going (recorded), here always to `port`. */
class PassthroughCluster extends FakeCluster {
  readonly destinations: (string | undefined)[] = [];
  constructor(name: string, private readonly port: number) {
    super(name, []);
  }
  override chooseHost(ctx: LoadBalancerContext): UpstreamHost | undefined {
    this.destinations.push(ctx.originalDestination);
    return ctx.originalDestination ? fakeHost(this.port) : undefined;
  }
}

function tcpChain(cluster: string, match?: envoy.config.listener.v3.FilterChainMatch): envoy.config.listener.v3.FilterChain {
  return { ...(match ? { filter_chain_match: match } : {}), filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: packAny(TCP_PROXY, { stat_prefix: cluster, cluster }) }] };
}

/** A TCP server answering every connection with its name, then closing. */
async function nameServer(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.end(name));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

function readAll(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1');
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (out += c));
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
  });
}

let up: Upstream;
let exact: { server: Server; port: number };
let passthrough: { server: Server; port: number };
before(async () => {
  up = await startUpstream();
  exact = await nameServer('exact-listener');
  passthrough = await nameServer('passthrough');
});
after(async () => {
  await up.close();
  exact.server.close();
  passthrough.server.close();
});

async function startManager(listeners: Listener[], support: OriginalDestinationSupport, clusters: FakeClusterManager) {
  const completed: StreamInfo[] = [];
  const routes = new Map([['r', fakeRouteTable('r', [{ prefix: '/', cluster: 'web' }])]]);
  const manager = new TrellisListenerManager(
    { clusters, routes: { get: (n) => routes.get(n) }, httpFilters: createHttpFilterRegistry({ clusters }), nodeId: 'n', onHttpStreamComplete: (i) => completed.push(i) },
    { drainGraceMs: 1000, originalDestination: support },
  );
  await manager.apply(listeners.map((l) => manager.compile(l)));
  const status = (name: string) => manager.status().find((s) => s.name === name)!;
  return { manager, completed, status, port: (name: string) => Number(status(name).boundAddress!.split(':').pop()) };
}

test('use_original_dst hands a connection to the exact address listener, else the 0.0.0.0 one on its port, else keeps it', async () => {
  let next: OriginalDestination | undefined;
  const support: OriginalDestinationSupport = { available: true, read: () => next };
  const pass = new PassthroughCluster('PassthroughCluster', passthrough.port);
  const clusters = new FakeClusterManager()
    .add(new FakeCluster('web', [fakeHost(up.port)]))
    .add(new FakeCluster('exact', [fakeHost(exact.port)]))
    .add(new FakeCluster('BlackHoleCluster', []))
    .add(pass);
  const virtualOutbound: Listener = {
    name: 'virtualOutbound',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    use_original_dst: { value: true },
    filter_chains: [tcpChain('BlackHoleCluster', { destination_port: { value: 15001 } }), tcpChain('PassthroughCluster')],
  };
  const wildcard = hcmListener('0.0.0.0_9080', {}, { address: { socket_address: { address: '0.0.0.0', port_value: 9080 } }, bind_to_port: { value: false } });
  const exactListener: Listener = {
    name: '10.0.0.5_9080',
    address: { socket_address: { address: '10.0.0.5', port_value: 9080 } },
    bind_to_port: { value: false },
    filter_chains: [tcpChain('exact')],
  };
  const proxy = await startManager([virtualOutbound, wildcard, exactListener], support, clusters);
  try {
    const port = proxy.port('virtualOutbound');
    next = { address: '10.0.0.9', port: 9080 };
    const viaWildcard = await get(port, '/reviews');
    assert.equal(viaWildcard.status, 200, 'the 0.0.0.0_9080 HTTP listener served it');
    assert.equal(proxy.completed.at(-1)!.downstreamLocalAddress, '10.0.0.9', 'the stream sees the restored destination');
    assert.equal(proxy.status('0.0.0.0_9080').stats['downstream_cx_total'], 1);

    next = { address: '10.0.0.5', port: 9080 };
    assert.equal(await readAll(port), 'exact-listener');
    assert.equal(proxy.status('10.0.0.5_9080').stats['downstream_cx_total'], 1);

    next = { address: '10.0.0.7', port: 3306 };
    assert.equal(await readAll(port), 'passthrough');
    assert.equal(pass.destinations.at(-1), '10.0.0.7:3306', 'PassthroughCluster connects to the original destination');

    next = { address: '10.0.0.7', port: 15001 };
    assert.equal(await readAll(port), '', 'a connection to 15001 itself is black-holed');

    next = undefined; // not redirected: the listener's own address stays the destination
    assert.equal(await readAll(port), 'passthrough');
    assert.equal(pass.destinations.at(-1), `127.0.0.1:${port}`);
    assert.equal(proxy.status('virtualOutbound').stats['downstream_cx_total'], 3, 'handed-off connections count on the listener that took them');
  } finally {
    await proxy.manager.close();
    clusters.close();
  }
});

test('the original_dst listener filter alone restores the destination for chain matching, without a hand-off', async () => {
  const support: OriginalDestinationSupport = { available: true, read: () => ({ address: '10.1.2.3', port: 9080 }) };
  const clusters = new FakeClusterManager().add(new FakeCluster('web', [fakeHost(up.port)])).add(new FakeCluster('exact', [fakeHost(exact.port)]));
  const inbound: Listener = {
    name: 'virtualInbound',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: packAny('envoy.extensions.filters.listener.original_dst.v3.OriginalDst', {}) }],
    filter_chains: [tcpChain('exact', { destination_port: { value: 9080 } }), tcpChain('web', { destination_port: { value: 9999 } })],
  };
  const other = { ...exactListenerFor9080() };
  const proxy = await startManager([inbound, other], support, clusters);
  try {
    assert.equal(await readAll(proxy.port('virtualInbound')), 'exact-listener', 'chain picked by the restored port 9080');
    assert.equal(proxy.status('10.1.2.3_9080').stats['downstream_cx_total'], 0, 'no hand-off without use_original_dst');
  } finally {
    await proxy.manager.close();
    clusters.close();
  }
});

function exactListenerFor9080(): Listener {
  return { name: '10.1.2.3_9080', address: { socket_address: { address: '10.1.2.3', port_value: 9080 } }, bind_to_port: { value: false }, filter_chains: [tcpChain('web')] };
}

test('without the native addon, use_original_dst and original_dst are NACKed with the reason and the way out', () => {
  const clusters = new FakeClusterManager();
  const manager = new TrellisListenerManager(
    { clusters, routes: { get: () => undefined }, httpFilters: createHttpFilterRegistry({ clusters }), nodeId: 'n' },
    { originalDestination: { available: false, reason: '/x/original_dst.node is missing' } },
  );
  const listener: Listener = {
    name: 'virtualOutbound',
    address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
    use_original_dst: { value: true },
    listener_filters: [{ name: 'envoy.filters.listener.original_dst' }],
    filter_chains: [tcpChain('PassthroughCluster')],
  };
  assert.throws(() => manager.compile(listener), (err: unknown) => {
    assert.ok(err instanceof XdsValidationError);
    assert.deepEqual(err.details, [
      'Listener virtualOutbound: use_original_dst: native addon not built: /x/original_dst.node is missing; use explicit (HTTP_PROXY) mode',
      'Listener virtualOutbound: listener_filters[0]: envoy.filters.listener.original_dst: native addon not built: /x/original_dst.node is missing; use explicit (HTTP_PROXY) mode',
    ]);
    return true;
  });
  clusters.close();
});

test('bind_to_port: false as it arrives over the wire (an empty BoolValue) leaves the listener unbound', async () => {
  const { unpackAny } = await import('../../../src/xds/codec.js');
  const clusters = new FakeClusterManager().add(new FakeCluster('web', [fakeHost(up.port)]));
  const wire = packAny('envoy.config.listener.v3.Listener', { ...hcmListener('0.0.0.0_9080', {}, { address: { socket_address: { address: '0.0.0.0', port_value: 9080 } } }), bind_to_port: { value: false } });
  const decoded = unpackAny(wire) as Listener;
  assert.deepEqual(decoded.bind_to_port, {}, 'proto3 leaves the false value out');
  const proxy = await startManager([decoded], { available: false, reason: 'unused' }, clusters);
  try {
    const status = proxy.status('0.0.0.0_9080');
    assert.equal(status.boundAddress, undefined);
    assert.equal(status.configuredAddress, '0.0.0.0:9080');
  } finally {
    await proxy.manager.close();
    clusters.close();
  }
});
