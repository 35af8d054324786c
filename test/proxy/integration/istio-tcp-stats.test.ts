// Istio's TCP metrics through two real proxies over mTLS: a client sidecar's outbound tcp_proxy (istio.stats as source,
// the cluster's istio.metadata_exchange) to a server sidecar's inbound TCP chain (metadata exchange and istio.stats as
// destination) to a server-first TCP app. Both reporters name both workloads and principals and count the bytes each
// way and the connections opened and closed; the exchange prefix never reaches either app.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ProxyLog } from '../../../src/proxy/admin/log-levels.js';
import { startProxy, type RunningProxy } from '../../../src/proxy/main.js';
import { hasOpenssl, spiffe, TestCa, type Pem } from '../transport/pki.js';
import { eventually, get, type Json } from './support.js';

const TD = 'cluster.local';
const STRUCT = 'type.googleapis.com/google.protobuf.Struct';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } };
const MONGO_CLUSTER = 'outbound|27017||mongodb.default.svc.cluster.local';
const skip = hasOpenssl() ? false : 'openssl CLI is missing: cannot make test certificates';

const GREETING = 'ready\n';
const PING = 'ping 12345\n';
const PONG = 'pong 12345\n';

const secrets = (pem: Pem, ca: string): Json[] => [
  { name: 'default', tls_certificate: { certificate_chain: { inline_string: pem.cert }, private_key: { inline_string: pem.key } } },
  { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca } } },
];

const mx = { name: 'istio.metadata_exchange', typed_config: { '@type': STRUCT, value: { protocol: 'istio-peer-exchange' } } };
const stats = (direction: 'INBOUND' | 'OUTBOUND'): Json => ({ name: 'istio.stats', typed_config: { '@type': STRUCT, value: { direction } } });
const tcpProxy = (cluster: string): Json => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: cluster, cluster } });

function staticCluster(name: string, port: number, extra: Json = {}): Json {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] }, ...extra };
}

async function proxyFrom(bootstrap: Json): Promise<{ proxy: RunningProxy; admin: string; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tcp-stats-'));
  const path = join(dir, 'bootstrap.json');
  writeFileSync(path, JSON.stringify({ admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }, ...bootstrap }));
  const proxy = await startProxy({ bootstrapPath: path, drainTimeMs: 100, log: new ProxyLog('error') });
  const admin = proxy.admin!.address;
  const listeners = JSON.parse((await get(admin, '/listeners?format=json')).body) as { listener_statuses: { local_address: { socket_address: { port_value: number } } }[] };
  return { proxy, admin, port: listeners.listener_statuses[0]!.local_address.socket_address.port_value };
}

/** Series of one family on a Prometheus page, as label maps with their value. */
function series(text: string, family: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const m of text.matchAll(new RegExp(`^${family}\\{(.*)\\} (\\S+)$`, 'gm'))) {
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

/** One client connection: reads the greeting, sends PING, reads PONG, ends. Returns what it read. */
function session(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect(port, '127.0.0.1');
    let read = '';
    let sent = false;
    s.setEncoding('utf8');
    s.setTimeout(5000, () => s.destroy(new Error(`timed out; read ${JSON.stringify(read)}`)));
    s.on('data', (c: string) => {
      read += c;
      if (!sent && read === GREETING) {
        sent = true;
        s.write(PING);
      } else if (read === GREETING + PONG) s.end();
    });
    s.on('close', () => resolve(read));
    s.on('error', reject);
  });
}

describe("Istio's TCP metrics through two sidecars over mTLS", { skip }, () => {
  let app: Server;
  const appReceived: string[] = [];
  let server: Awaited<ReturnType<typeof proxyFrom>>;
  let client: Awaited<ReturnType<typeof proxyFrom>>;

  before(async () => {
    const ca = new TestCa(TD);
    const mongodb = ca.issue('mongodb', { uris: [spiffe(TD, 'default', 'mongodb')] });
    const productpage = ca.issue('productpage', { uris: [spiffe(TD, 'default', 'productpage')] });
    // A server-first app (as MySQL or SMTP): it greets, then answers one line and closes when the client does.
    app = createServer((s) => {
      let got = '';
      s.setEncoding('utf8');
      s.write(GREETING);
      s.on('data', (c: string) => {
        got += c;
        if (got.endsWith('\n')) s.write(got.replace('ping', 'pong'));
      });
      s.on('end', () => {
        appReceived.push(got);
        s.end();
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const appPort = (app.address() as AddressInfo).port;

    server = await proxyFrom({
      node: { id: 'sidecar~127.0.0.1~mongodb-v1.default~default.svc.cluster.local', cluster: 'mongodb.default', metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'mongodb-v1', LABELS: { app: 'mongodb', version: 'v1' }, CLUSTER_ID: 'Kubernetes' } },
      static_resources: {
        secrets: secrets(mongodb, ca.root.cert),
        listeners: [{
          name: 'inbound_27017',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          listener_filters: [TLS_INSPECTOR],
          filter_chains: [{
            filter_chain_match: { transport_protocol: 'tls', application_protocols: ['istio-peer-exchange', 'istio'] },
            transport_socket: {
              name: 'envoy.transport_sockets.tls',
              typed_config: {
                '@type': DOWNSTREAM_TLS,
                require_client_certificate: true,
                common_tls_context: {
                  alpn_protocols: ['istio-peer-exchange', 'istio'],
                  tls_certificate_sds_secret_configs: [{ name: 'default' }],
                  combined_validation_context: { default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${TD}/` } }] }, validation_context_sds_secret_config: { name: 'ROOTCA' } },
                },
              },
            },
            filters: [mx, stats('INBOUND'), tcpProxy('inbound|27017||')],
          }],
        }],
        clusters: [staticCluster('inbound|27017||', appPort)],
      },
    });
    client = await proxyFrom({
      node: { id: 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local', cluster: 'productpage.default', metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, CLUSTER_ID: 'Kubernetes' } },
      static_resources: {
        secrets: secrets(productpage, ca.root.cert),
        listeners: [{
          name: 'outbound_27017',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [{ filters: [stats('OUTBOUND'), tcpProxy(MONGO_CLUSTER)] }],
        }],
        clusters: [staticCluster(MONGO_CLUSTER, 0, {
          load_assignment: { cluster_name: MONGO_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: server.port } } } }] }] },
          filters: [mx],
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': UPSTREAM_TLS,
              sni: 'outbound_.27017_._.mongodb.default.svc.cluster.local',
              common_tls_context: {
                alpn_protocols: ['istio-peer-exchange', 'istio'],
                tls_certificate_sds_secret_configs: [{ name: 'default' }],
                combined_validation_context: { default_validation_context: { match_subject_alt_names: [{ exact: spiffe(TD, 'default', 'mongodb') }] }, validation_context_sds_secret_config: { name: 'ROOTCA' } },
              },
            },
          },
        })],
      },
    });
  });

  after(async () => {
    await client?.proxy.stop();
    await server?.proxy.stop();
    await new Promise((r) => app?.close(r));
  });

  test('two connections: bytes each way, opened and closed, both workloads and principals on both reporters', async () => {
    for (let i = 0; i < 2; i++) assert.equal(await session(client.port), GREETING + PONG, 'the client app reads exactly what the server app wrote');
    await eventually('the server app saw both connections end', () => appReceived.length === 2);
    assert.deepEqual(appReceived, [PING, PING], 'no exchange prefix reached the server app');

    const productpageSpiffe = spiffe(TD, 'default', 'productpage');
    const mongodbSpiffe = spiffe(TD, 'default', 'mongodb');
    const common = {
      source_workload: 'productpage-v1', source_app: 'productpage', source_version: 'v1', source_workload_namespace: 'default', source_canonical_service: 'productpage',
      destination_workload: 'mongodb-v1', destination_app: 'mongodb', destination_version: 'v1', destination_workload_namespace: 'default', destination_canonical_service: 'mongodb',
      destination_service: 'mongodb.default.svc.cluster.local', destination_service_name: 'mongodb', destination_service_namespace: 'default',
      source_principal: productpageSpiffe, destination_principal: mongodbSpiffe, request_protocol: 'tcp', response_flags: '-',
    };
    const expectations: [string, Record<string, string>][] = [
      [client.admin, { ...common, reporter: 'source', connection_security_policy: 'unknown' }],
      [server.admin, { ...common, reporter: 'destination', connection_security_policy: 'mutual_tls' }],
    ];
    for (const [admin, labels] of expectations) {
      let text = '';
      await eventually(`${labels.reporter}: two connections closed`, async () => {
        text = (await get(admin, '/stats/prometheus')).body;
        return series(text, 'istio_tcp_connections_closed_total').some((s) => s.value === 2);
      });
      const one = (family: string): number => {
        const found = series(text, family);
        assert.equal(found.length, 1, `${labels.reporter}: one ${family} series, got ${JSON.stringify(found)}`);
        for (const [k, v] of Object.entries(labels)) assert.equal(found[0]!.labels[k], v, `${labels.reporter}: ${family} ${k}`);
        return found[0]!.value;
      };
      assert.equal(one('istio_tcp_connections_opened_total'), 2, `${labels.reporter}: opened`);
      assert.equal(one('istio_tcp_connections_closed_total'), 2, `${labels.reporter}: closed`);
      // Bytes of the apps' conversation only: received from the downstream (the client's PINGs), sent to it (GREETING + PONG).
      assert.equal(one('istio_tcp_received_bytes_total'), 2 * PING.length, `${labels.reporter}: received bytes`);
      assert.equal(one('istio_tcp_sent_bytes_total'), 2 * (GREETING.length + PONG.length), `${labels.reporter}: sent bytes`);
    }
    const mxStats = (await get(server.admin, '/stats')).body;
    assert.match(mxStats, /metadata_exchange\.alpn_protocol_found: 2/);
  });

  test('a plaintext client on the server side: no exchange, the source is unknown, connection_security_policy none', async () => {
    // A chain without TLS in front of the same filters: ALPN is not istio-peer-exchange, so there is no exchange.
    const plain = await proxyFrom({
      node: { id: 'sidecar~127.0.0.1~mongodb-v2.default~default.svc.cluster.local', cluster: 'mongodb.default', metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'mongodb-v2', LABELS: { app: 'mongodb', version: 'v2' } } },
      static_resources: {
        listeners: [{ name: 'inbound_plain', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [mx, stats('INBOUND'), tcpProxy('inbound|27017||')] }] }],
        clusters: [staticCluster('inbound|27017||', (app.address() as AddressInfo).port)],
      },
    });
    try {
      assert.equal(await session(plain.port), GREETING + PONG);
      let text = '';
      await eventually('closed counted', async () => {
        text = (await get(plain.admin, '/stats/prometheus')).body;
        return series(text, 'istio_tcp_connections_closed_total').length === 1;
      });
      const [s] = series(text, 'istio_tcp_received_bytes_total');
      assert.equal(s!.value, PING.length);
      assert.equal(s!.labels.source_workload, 'unknown');
      assert.equal(s!.labels.destination_workload, 'mongodb-v2');
      assert.equal(s!.labels.connection_security_policy, 'none');
      assert.match((await get(plain.admin, '/stats')).body, /metadata_exchange\.alpn_protocol_not_found: 1/);
    } finally {
      await plain.proxy.stop();
    }
  });
});
