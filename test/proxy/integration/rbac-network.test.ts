// envoy.filters.network.rbac in a listener's filter chain before tcp_proxy / the HTTP connection manager: a denied TCP
// connection is closed before any byte reaches the upstream, an allowed one is spliced; mTLS peer identity decides on a TLS
// chain; shadow rules only count; Envoy's <stat_prefix>.rbac.* counters; filter chain shape errors are NACKed precisely.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { XdsValidationError } from '../../../src/common/errors.js';
import { packAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { FakeCluster, FakeClusterManager, fakeHost, fakeRouteTable } from '../http/fakes.js';
import { get, HCM_MSG, routerFilter, startProxy } from '../http/harness.js';
import { hasOpenssl, spiffe, TestCa } from '../transport/pki.js';

type Listener = envoy.config.listener.v3.Listener;
type Filter = envoy.config.listener.v3.Filter;
type NetworkRbac = envoy.extensions.filters.network.rbac.v3.RBAC;

const NETWORK_RBAC_MSG = 'envoy.extensions.filters.network.rbac.v3.RBAC';
const TCP_PROXY_MSG = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

function rbac(config: NetworkRbac): Filter {
  return { name: 'envoy.filters.network.rbac', typed_config: packAny(NETWORK_RBAC_MSG, config) };
}
function tcpProxy(cluster: string): Filter {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: packAny(TCP_PROXY_MSG, { stat_prefix: cluster, cluster }) };
}
function listener(name: string, filters: Filter[], chainExtra: Partial<envoy.config.listener.v3.FilterChain> = {}): Listener {
  return { name, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters, ...chainExtra }] };
}

/** Echo upstream that records how many connections reached it. */
async function startEcho(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => count,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Sends `payload`; resolves with what came back before the proxy closed the connection (bounded by 5 s). */
function exchange(port: number, payload: string): Promise<{ data: string; closedByPeer: boolean }> {
  return new Promise((resolve) => {
    let data = '';
    const s = netConnect(port, '127.0.0.1', () => s.write(payload));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data, closedByPeer: false });
    }, 5000);
    s.on('data', (d) => {
      data += d.toString();
      if (data === payload) {
        clearTimeout(timer);
        s.end();
        resolve({ data, closedByPeer: false });
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closedByPeer: data !== payload });
    });
  });
}

const DENY_LOCAL: NetworkRbac = {
  stat_prefix: 'tcp.',
  rules: { action: 'DENY', policies: { 'ns[db]-policy[no-loopback]-rule[0]': { permissions: [{ any: true }], principals: [{ source_ip: { address_prefix: '127.0.0.0', prefix_len: { value: 8 } } }] } } },
};
const ALLOW_LOCAL: NetworkRbac = {
  stat_prefix: 'tcp.',
  rules: { action: 'ALLOW', policies: { local: { permissions: [{ destination_ip: { address_prefix: '127.0.0.1', prefix_len: { value: 32 } } }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.1', prefix_len: { value: 32 } } }] } } },
  shadow_rules: { action: 'ALLOW', policies: {} },
  shadow_rules_stat_prefix: 'istio_dry_run_',
};

test('network RBAC before tcp_proxy: denied connections are closed unanswered, allowed ones spliced; stats', async () => {
  const echo = await startEcho();
  const clusters = new FakeClusterManager().add(new FakeCluster('db', [fakeHost(echo.port)]));
  const proxy = await startProxy([listener('denied', [rbac(DENY_LOCAL), tcpProxy('db')]), listener('allowed', [rbac(ALLOW_LOCAL), tcpProxy('db')])], new Map(), clusters);
  try {
    const denied = await exchange(proxy.port('denied'), 'SELECT 1');
    assert.equal(denied.data, '');
    assert.equal(denied.closedByPeer, true, 'the proxy closed the denied connection');
    assert.equal(echo.connections(), 0, 'a denied connection never reaches the upstream');
    const allowed = await exchange(proxy.port('allowed'), 'SELECT 1');
    assert.equal(allowed.data, 'SELECT 1');
    assert.equal(echo.connections(), 1);
    const d = proxy.manager.status().find((s) => s.name === 'denied')!.networkFilterStats!;
    const a = proxy.manager.status().find((s) => s.name === 'allowed')!.networkFilterStats!;
    assert.equal(d['tcp.rbac.denied'], 1);
    assert.equal(d['tcp.rbac.allowed'], 0);
    assert.equal(a['tcp.rbac.allowed'], 1);
    assert.equal(a['tcp.rbac.denied'], 0);
    // Shadow ALLOW with no policies would deny everything; it only counts.
    assert.equal(a['tcp.rbac.istio_dry_run_.shadow_denied'], 1);
    assert.equal(a['tcp.rbac.istio_dry_run_.shadow_allowed'], 0);
    assert.equal(proxy.manager.status().find((s) => s.name === 'allowed')!.tcpStats!['db']!['downstream_cx_total'], 1);
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('network RBAC before the HTTP connection manager closes the connection: no HTTP response at all', async () => {
  const echo = await startEcho();
  const proxy = await startProxy(
    [
      listener('http', [
        rbac({ stat_prefix: 'tcp.', rules: { action: 'ALLOW', policies: {} } }),
        { name: 'envoy.filters.network.http_connection_manager', typed_config: packAny(HCM_MSG, { stat_prefix: 'ingress', rds: { route_config_name: 'r', config_source: { ads: {} } }, http_filters: [routerFilter()] }) },
      ]),
    ],
    new Map([['r', fakeRouteTable('r', [{ prefix: '/', cluster: 'web' }])]]),
    new FakeClusterManager().add(new FakeCluster('web', [fakeHost(echo.port)])),
  );
  try {
    await assert.rejects(get(proxy.port('http'), '/'), /socket hang up|ECONNRESET/);
    assert.equal(proxy.manager.status()[0]!.networkFilterStats!['tcp.rbac.denied'], 1);
    assert.equal(proxy.manager.status()[0]!.httpStats['ingress']!['downstream_rq_total'], 0, 'the HCM never saw a request');
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('network RBAC on an mTLS chain: the peer SPIFFE identity decides', { skip: hasOpenssl() ? false : 'openssl CLI is missing' }, async () => {
  const ca = new TestCa('cluster.local');
  const server = ca.issue('server', { dns: ['db.local'] });
  const ratings = ca.issue('ratings', { uris: [spiffe('cluster.local', 'default', 'ratings')] });
  const reviews = ca.issue('reviews', { uris: [spiffe('cluster.local', 'default', 'reviews')] });
  const echo = await startEcho();
  const tls: Partial<envoy.config.listener.v3.FilterChain> = {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: packAny('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', {
        common_tls_context: {
          tls_certificates: [{ certificate_chain: { inline_string: server.cert }, private_key: { inline_string: server.key } }],
          validation_context: { trusted_ca: { inline_string: ca.root.cert } },
        },
        require_client_certificate: { value: true },
      }),
    },
  };
  const policy: NetworkRbac = {
    stat_prefix: 'tcp.',
    rules: { policies: { 'ns[default]-policy[ratings-only]-rule[0]': { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { exact: spiffe('cluster.local', 'default', 'ratings') } } }] } } },
  };
  const proxy = await startProxy([listener('mtls', [rbac(policy), tcpProxy('db')], tls)], new Map(), new FakeClusterManager().add(new FakeCluster('db', [fakeHost(echo.port)])));
  const talk = (client: { cert: string; key: string }): Promise<string> =>
    new Promise((resolve) => {
      let data = '';
      const s = tlsConnect({ host: '127.0.0.1', port: proxy.port('mtls'), ca: ca.root.cert, cert: client.cert, key: client.key, servername: 'db.local' }, () => s.write('PING'));
      const timer = setTimeout(() => s.destroy(), 5000);
      s.on('data', (d) => {
        data += d.toString();
        if (data === 'PING') s.end();
      });
      s.on('error', () => {});
      s.on('close', () => {
        clearTimeout(timer);
        resolve(data);
      });
    });
  try {
    assert.equal(await talk(ratings), 'PING');
    assert.equal(await talk(reviews), '', 'another identity is closed without an answer');
    const stats = proxy.manager.status()[0]!.networkFilterStats!;
    assert.equal(stats['tcp.rbac.allowed'], 1);
    assert.equal(stats['tcp.rbac.denied'], 1);
    assert.equal(echo.connections(), 1);
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('filter chains: read filters before one terminal filter; wrong shapes and unknown filters are NACKed with the reason', async () => {
  const proxy = await startProxy([], new Map());
  const details = (l: Listener): string => {
    try {
      proxy.manager.compile(l);
    } catch (err) {
      assert.ok(err instanceof XdsValidationError);
      return err.details.join('\n');
    }
    return assert.fail('expected a NACK');
  };
  try {
    assert.match(details(listener('a', [tcpProxy('db'), rbac(DENY_LOCAL)])), /filters\[0\]: terminal filter envoy\.filters\.network\.tcp_proxy must be the last network filter/);
    assert.match(details(listener('a', [tcpProxy('db'), rbac(DENY_LOCAL)])), /filters\[1\]: envoy\.filters\.network\.rbac is not a terminal filter/);
    assert.match(details(listener('b', [{ name: 'envoy.filters.network.mongo_proxy' }, tcpProxy('db')])), /filters\[0\]: unsupported network filter envoy\.filters\.network\.mongo_proxy \(supported before the terminal filter: envoy\.filters\.network\.rbac, istio\.metadata_exchange, istio\.stats\)/);
    assert.match(details(listener('c', [])), /filters: expected network filters ending in a terminal filter/);
    assert.match(details(listener('d', [rbac({ rules: { policies: {} } }), tcpProxy('db')])), /filters\[0\]\.typed_config\.stat_prefix: required/);
    assert.match(details(listener('e', [rbac({ stat_prefix: 'x', enforcement_type: 7, rules: { action: 'ALLOW' } }), tcpProxy('db')])), /enforcement_type: expected ONE_TIME_ON_FIRST_BYTE or CONTINUOUS \(got 7\)/);
    // CONTINUOUS is accepted (every input is fixed per connection, so one decision equals re-checking each chunk).
    proxy.manager.compile(listener('f', [rbac({ stat_prefix: 'x', enforcement_type: 'CONTINUOUS', rules: { action: 'ALLOW' } }), rbac({ stat_prefix: 'y' }), tcpProxy('db')]));
  } finally {
    await proxy.close();
  }
});
