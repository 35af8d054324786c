// The proxy's SDS subscriptions: secrets from an SDS server behind a static cluster (Istio's sds-grpc) or over ADS, listeners warming until their secrets arrive, rotation reaching new connections, bad config sources refused.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { stringify } from 'yaml';
import { agentSdsConfig, SDS_CLUSTER } from '../../src/agent/bootstrap.js';
import { readIssuedChain } from '../../src/agent/certificate-chain.js';
import { SdsServer, workloadSecrets } from '../../src/agent/sds-server.js';
import { createWorkloadCsr } from '../../src/agent/workload-csr.js';
import { ProxyLog } from '../../src/proxy/admin/log-levels.js';
import { ProxyStartupError, startProxy } from '../../src/proxy/main.js';
import type { envoy } from '../../src/xds/generated/types.js';
import { fromProtoJson } from '../../src/xds/proto-json.js';
import { AdsServer, SnapshotCache } from '../../src/xds/server/index.js';
import { LISTENER, SECRET } from '../../src/xds/type-urls.js';
import { TestCa } from '../agent/test-ca.js';

const SPIFFE = 'spiffe://cluster.local/ns/default/sa/reviews';
const NODE_ID = 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local';
const quiet = (): ProxyLog => new ProxyLog('off', () => undefined);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function writeBootstrap(value: object): string {
  const path = join(mkdtempSync(join(tmpdir(), 'trellis-sds-')), 'bootstrap.yaml');
  writeFileSync(path, stringify(value));
  return path;
}

async function issue(ca: TestCa, ttlSeconds = 3600): Promise<{ certificateChainPem: string; privateKeyPem: string; rootCertPem: string }> {
  const { csrPem, privateKeyPem } = await createWorkloadCsr({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'reviews' });
  const chain = await readIssuedChain(await ca.sign(csrPem, ttlSeconds));
  return { certificateChainPem: chain.certificateChainPem, privateKeyPem, rootCertPem: chain.rootCertPem };
}

function handshake(port: number, rootPem: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: rootPem, servername: 'reviews', checkServerIdentity: () => undefined }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
  });
}

async function eventually<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A listener (proto3 JSON) whose DownstreamTlsContext takes its certificate (`default`) and `ROOTCA` from `sdsConfig`, answering 200 `ok`. */
function tlsListenerJson(name: string, port: number, sdsConfig: object | undefined, certificateSecret = 'default'): Record<string, unknown> {
  const ref = (secret: string): object => ({ name: secret, ...(sdsConfig ? { sds_config: sdsConfig } : {}) });
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
            common_tls_context: { tls_certificate_sds_secret_configs: [ref(certificateSecret)], validation_context_sds_secret_config: ref('ROOTCA') },
          },
        },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: name,
              route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }] },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
            },
          },
        ],
      },
    ],
  };
}

function grpcCluster(name: string, port: number): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
  };
}

test('a static TLS listener waits (INITIALIZING, past the initial fetch timeout with initial_fetch_timeout 0s as Istio writes it) until sds-grpc delivers its secrets, then serves them; a rotation reaches new connections', async (t) => {
  const ca = await TestCa.create();
  const sds = new SdsServer({ logger: { warn: () => undefined } });
  const { port: sdsPort } = await sds.listen('127.0.0.1:0');
  t.after(() => sds.close());
  const [adminPort, listenerPort] = [await freePort(), await freePort()];
  const bootstrap = writeBootstrap({
    node: { id: NODE_ID, cluster: 'reviews.default' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: { clusters: [grpcCluster(SDS_CLUSTER, sdsPort)], listeners: [tlsListenerJson('inbound-tls', listenerPort, { ...agentSdsConfig(), initial_fetch_timeout: '0s' })] },
  });
  const starting = startProxy({ bootstrapPath: bootstrap, log: quiet(), initialFetchTimeoutMs: 300 });
  t.after(async () => (await starting.catch(() => undefined))?.stop());

  // No certificate yet: the proxy is not ready and the listener is not bound.
  const ready = await eventually('the admin listener', () => fetch(`http://127.0.0.1:${adminPort}/ready`).then((r) => r, () => undefined));
  assert.equal(ready.status, 503);
  assert.match(await ready.text(), /INITIALIZING/);
  await assert.rejects(handshake(listenerPort, ca.rootPem), /ECONNREFUSED/);
  // Well past the proxy's 300 ms initial fetch timeout: 0s in the sds_config means wait without limit.
  await new Promise((r) => setTimeout(r, 1_000));
  assert.match(await (await fetch(`http://127.0.0.1:${adminPort}/ready`)).text(), /INITIALIZING/);

  const first = await issue(ca);
  sds.update(first);
  const proxy = await starting;
  assert.equal(proxy.state(), 'LIVE');
  const cert = await handshake(listenerPort, ca.rootPem);
  assert.equal(cert.subjectaltname, `URI:${SPIFFE}`);

  // A rotation: the SDS push changes what new connections see, the proxy is the same.
  sds.update(await issue(ca));
  const rotated = await eventually('the rotated certificate on a new connection', async () => {
    const c = await handshake(listenerPort, ca.rootPem);
    return c.serialNumber !== cert.serialNumber ? c : undefined;
  });
  assert.equal(rotated.subjectaltname, `URI:${SPIFFE}`);
  const stats = await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).text();
  assert.match(stats, /^sds\.update_success: [2-9]/m);
});

test('an LDS listener warms until its secrets arrive over ADS (sds_config: ads), one with an unusable sds_config is NACKed with the field path, one whose secret never comes is left out after the initial fetch timeout', async (t) => {
  const ca = await TestCa.create();
  const cache = new SnapshotCache();
  const ads = new AdsServer({ source: cache, logger: { warn: () => undefined } });
  const { port: adsPort } = await ads.listen('127.0.0.1:0');
  t.after(() => ads.close());
  const [goodPort, badPort, missingPort] = [await freePort(), await freePort(), await freePort()];
  const listener = (json: Record<string, unknown>): { name: string; resource: envoy.config.listener.v3.Listener } => {
    const converted = fromProtoJson<envoy.config.listener.v3.Listener>('envoy.config.listener.v3.Listener', json);
    assert.deepEqual(converted.problems, []);
    return { name: json['name'] as string, resource: converted.value };
  };
  const adsSource = { ads: {}, resource_api_version: 'V3' };
  const good = listener(tlsListenerJson('good', goodPort, adsSource));
  const bad = listener(tlsListenerJson('bad', badPort, { path: '/etc/certs/default.yaml' }));
  // `waiting` references a certificate the control plane never sends.
  const waiting = listener(tlsListenerJson('waiting', missingPort, adsSource, 'never'));
  cache.setSnapshot(NODE_ID, { [LISTENER]: [good, bad, waiting] });

  const bootstrap = writeBootstrap({
    node: { id: NODE_ID, cluster: 'reviews.default' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    dynamic_resources: { ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] }, lds_config: { ads: {}, resource_api_version: 'V3' } },
    static_resources: { clusters: [grpcCluster('xds-grpc', adsPort)] },
  });
  const starting = startProxy({ bootstrapPath: bootstrap, log: quiet(), initialFetchTimeoutMs: 1_500 });
  t.after(async () => (await starting.catch(() => undefined))?.stop());

  // The bad source is NACKed with its path; the others wait for SDS, which the proxy now subscribes over ADS.
  await eventually('the LDS NACK', () => /bad.*sds_config\.path: not supported/.test(ads.streams()[0]?.types[LISTENER]?.lastNack?.message ?? ''));
  await eventually('SDS subscribed over ADS', () => {
    const names = [...(ads.streams()[0]?.types[SECRET]?.subscribed.names ?? [])].sort().join(',');
    return names === 'ROOTCA,default,never';
  });
  await assert.rejects(handshake(goodPort, ca.rootPem), /ECONNREFUSED/);

  const secrets = workloadSecrets(await issue(ca));
  cache.setSnapshot(NODE_ID, { [LISTENER]: [good, bad, waiting], [SECRET]: secrets.map((s) => ({ name: s.name!, resource: s })) });
  const proxy = await starting;
  // `waiting` timed out without its secret: left out, with the reason in config_dump; `good` serves (at once, or — on a
  // machine slow enough that the secrets came after the 1.5 s initial fetch timeout — as soon as they arrive).
  const served = await eventually('the good listener serving', () => handshake(goodPort, ca.rootPem).catch(() => undefined));
  assert.equal(served.subjectaltname, `URI:${SPIFFE}`);
  await assert.rejects(handshake(missingPort, ca.rootPem), /ECONNREFUSED/);
  const dump = (await (await fetch(`http://${proxy.admin!.address}/config_dump`)).json()) as { configs: Record<string, unknown>[] };
  const text = JSON.stringify(dump);
  assert.match(text, /SDS secrets never not delivered within the initial fetch timeout/);

  // The late secret arrives: the listener kept aside activates without a new LDS push.
  const late = workloadSecrets(await issue(ca)).find((s) => s.name === 'default')!;
  cache.setSnapshot(NODE_ID, { [LISTENER]: [good, bad, waiting], [SECRET]: [...secrets, { ...late, name: 'never' }].map((s) => ({ name: s.name!, resource: s })) });
  const cert = await eventually('the late listener serving', () => handshake(missingPort, ca.rootPem).catch(() => undefined));
  assert.equal(cert.subjectaltname, `URI:${SPIFFE}`);
});

test('a static listener whose sds_config names no static cluster, or ads without ads_config, stops the start-up with the field path', async () => {
  const port = await freePort();
  const bootstrap = writeBootstrap({
    node: { id: NODE_ID, cluster: 'reviews.default' },
    static_resources: {
      listeners: [
        tlsListenerJson('one', port, agentSdsConfig()),
        tlsListenerJson('two', port + 1, { ads: {} }),
        tlsListenerJson('three', port + 2, { api_config_source: { api_type: 'REST', cluster_names: ['x'] } }),
      ],
    },
  });
  await assert.rejects(startProxy({ bootstrapPath: bootstrap, log: quiet(), initialFetchTimeoutMs: 500 }), (err: unknown) => {
    assert.ok(err instanceof ProxyStartupError);
    const text = err.details.join('\n');
    assert.match(text, /static_resources\.listeners\[0\]: SDS secret "default": sds_config\.api_config_source names cluster "sds-grpc", which is not a static cluster/);
    assert.match(text, /static_resources\.listeners\[1\]: SDS secret "default": sds_config\.ads needs dynamic_resources\.ads_config/);
    assert.match(text, /static_resources\.listeners\[2\]: filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context\.tls_certificate_sds_secret_configs\[0\]\.sds_config\.api_config_source\.api_type: expected GRPC or DELTA_GRPC, got REST/);
    return true;
  });
});

test('a new CDS cluster whose SDS secret has not arrived warms (not active, its secret subscribed over ADS) and joins once the secret is delivered', async (t) => {
  const ca = await TestCa.create();
  const cache = new SnapshotCache();
  const ads = new AdsServer({ source: cache, logger: { warn: () => undefined } });
  const { port: adsPort } = await ads.listen('127.0.0.1:0');
  t.after(() => ads.close());
  const cluster = (name: string, secret: string | undefined): { name: string; resource: envoy.config.cluster.v3.Cluster } => {
    const json: Record<string, unknown> = {
      name,
      type: 'STATIC',
      connect_timeout: '1s',
      load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9 } } } }] }] },
      ...(secret
        ? {
            transport_socket: {
              name: 'envoy.transport_sockets.tls',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
                common_tls_context: { tls_certificate_sds_secret_configs: [{ name: secret, sds_config: { ads: {}, resource_api_version: 'V3' } }] },
              },
            },
          }
        : {}),
    };
    const converted = fromProtoJson<envoy.config.cluster.v3.Cluster>('envoy.config.cluster.v3.Cluster', json);
    assert.deepEqual(converted.problems, []);
    return { name, resource: converted.value };
  };
  const { CLUSTER } = await import('../../src/xds/type-urls.js');
  cache.setSnapshot(NODE_ID, { [CLUSTER]: [cluster('plain', undefined)] });
  const bootstrap = writeBootstrap({
    node: { id: NODE_ID, cluster: 'reviews.default' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    dynamic_resources: { ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] }, cds_config: { ads: {}, resource_api_version: 'V3' } },
    static_resources: { clusters: [grpcCluster('xds-grpc', adsPort)] },
  });
  const proxy = await startProxy({ bootstrapPath: bootstrap, log: quiet(), initialFetchTimeoutMs: 20_000 });
  t.after(() => proxy.stop());
  const activeClusters = async (): Promise<string[]> => {
    const body = (await (await fetch(`http://${proxy.admin!.address}/clusters?format=json`)).json()) as { cluster_statuses?: { name: string }[] };
    return (body.cluster_statuses ?? []).map((c) => c.name).sort();
  };
  assert.deepEqual(await activeClusters(), ['plain', 'xds-grpc']);
  // A new cluster needs a secret the control plane has not sent: it warms and its secret is subscribed over ADS.
  cache.setSnapshot(NODE_ID, { [CLUSTER]: [cluster('plain', undefined), cluster('upstream-tls', 'default')] });
  await eventually('SDS default subscribed', () => [...(ads.streams()[0]?.types[SECRET]?.subscribed.names ?? [])].join(',') === 'default');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await activeClusters(), ['plain', 'xds-grpc']);

  const secrets = workloadSecrets(await issue(ca));
  cache.setSnapshot(NODE_ID, { [CLUSTER]: [cluster('plain', undefined), cluster('upstream-tls', 'default')], [SECRET]: secrets.map((s) => ({ name: s.name!, resource: s })) });
  await eventually('the warmed cluster active', async () => (await activeClusters()).includes('upstream-tls'));
});
