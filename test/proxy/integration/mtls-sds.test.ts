// mTLS with certificates delivered over xDS (SDS on ADS, Secret resources `default` and `ROOTCA` from a real ADS server):
// the listener warms until its secrets arrive, serves mTLS, and after a rotated `default` new connections get the new
// certificate while a connection opened before keeps working.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { packAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { AdsServer, SnapshotCache, type TypeInput } from '../../../src/xds/server/index.js';
import { CLUSTER, LISTENER, SECRET } from '../../../src/xds/type-urls.js';
import { ProxyLog } from '../../../src/proxy/admin/log-levels.js';
import { startProxy, type RunningProxy } from '../../../src/proxy/main.js';
import { hasOpenssl, spiffe, TestCa, type Pem } from '../transport/pki.js';
import { get, startUpstream, type Upstream } from './support.js';

const TD = 'cluster.local';
const NODE_ID = 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local';
const ADS = { ads: {}, resource_api_version: 'V3' as never };
const skip = hasOpenssl() ? false : 'openssl CLI is missing: cannot make test certificates';

type Secret = envoy.extensions.transport_sockets.tls.v3.Secret;

function certSecret(pem: Pem): Secret {
  return { name: 'default', tls_certificate: { certificate_chain: { inline_string: pem.cert }, private_key: { inline_string: pem.key } } };
}

function inboundListener(): envoy.config.listener.v3.Listener {
  const tls: envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext = {
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ADS }],
      combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: ADS } },
      alpn_protocols: ['h2', 'http/1.1'],
    },
    require_client_certificate: { value: true },
  };
  const hcm: envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager = {
    stat_prefix: 'inbound',
    forward_client_cert_details: 'SANITIZE_SET' as never,
    set_current_client_cert_details: { uri: true },
    route_config: { name: 'inbound', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) }],
  };
  return {
    name: 'inbound',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [{
      transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: packAny('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', tls) },
      filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: packAny('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', hcm) }],
    }],
  };
}

interface Reply {
  readonly status: number;
  readonly body: string;
  /** Serial number of the certificate the proxy presented on this request's connection. */
  readonly serverSerial: string;
  readonly serverSans: string;
  readonly socket: TLSSocket;
}

function mtlsGet(port: number, client: Pem, ca: string, path: string, agent: Agent | false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options: RequestOptions = { host: '127.0.0.1', port, path, agent, cert: client.cert, key: client.key, ca, checkServerIdentity: () => undefined };
    const req = httpsRequest(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      const socket = res.socket as TLSSocket;
      const peer = socket.getPeerX509Certificate();
      const serverSerial = peer?.serialNumber ?? '';
      const serverSans = peer?.subjectAltName ?? '';
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serverSerial, serverSans, socket }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

function hasCurl(): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** curl, asynchronously (the proxy runs in this process), bounded by 10 s. */
function curl(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['--max-time', '10', ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('mTLS with SDS secrets over ADS', { skip }, () => {
  let ca: TestCa;
  let first: Pem & { serial: string };
  let client: Pem;
  let app: Upstream;
  let cache: SnapshotCache;
  let ads: AdsServer;
  let proxy: RunningProxy;
  let port: number;
  const snapshot = (def: Secret): Record<string, TypeInput> => ({
    [CLUSTER]: [{ name: 'app', resource: { name: 'app', type: 'STATIC', connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: app.port } } } }] }] } } }],
    [LISTENER]: [{ name: 'inbound', resource: inboundListener() }],
    [SECRET]: [{ name: 'default', resource: def }, { name: 'ROOTCA', resource: { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca.root.cert } } } }],
  });

  before(async () => {
    ca = new TestCa(TD);
    first = ca.issue('reviews-1', { uris: [spiffe(TD, 'default', 'reviews')] });
    client = ca.issue('productpage', { uris: [spiffe(TD, 'default', 'productpage')] });
    app = await startUpstream('app', (req, res) => res.end(String(req.headers['x-forwarded-client-cert'] ?? '')));
    cache = new SnapshotCache();
    cache.setSnapshot(NODE_ID, snapshot(certSecret(first)));
    ads = new AdsServer({ source: cache, logger: { warn: () => undefined } });
    const xds = await ads.listen('127.0.0.1:0');
    const dir = mkdtempSync(join(tmpdir(), 'trellis-mtls-sds-'));
    const bootstrap = {
      node: { id: NODE_ID, cluster: 'reviews.default' },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      dynamic_resources: {
        ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
        cds_config: { ads: {} },
        lds_config: { ads: {} },
      },
      static_resources: {
        clusters: [{ name: 'xds-grpc', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: xds.port } } } }] }] } }],
      },
    };
    const path = join(dir, 'bootstrap.json');
    writeFileSync(path, JSON.stringify(bootstrap));
    proxy = await startProxy({ bootstrapPath: path, drainTimeMs: 200, log: new ProxyLog('error'), initialFetchTimeoutMs: 5000 });
    const admin = proxy.admin!.address;
    for (let i = 0; i < 200 && !port; i++) {
      const statuses = (JSON.parse((await get(admin, '/listeners?format=json')).body) as { listener_statuses?: { name: string; local_address: { socket_address: { port_value: number } } }[] }).listener_statuses ?? [];
      port = statuses.find((l) => l.name === 'inbound')?.local_address.socket_address.port_value ?? 0;
      if (!port) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(port, 'the inbound listener was applied once its secrets arrived');
  });

  after(async () => {
    await proxy?.stop();
    await ads?.close();
    await app?.close();
  });

  test('the secrets delivered over ADS serve mTLS: the proxy presents `default`, verifies the client against `ROOTCA`', async () => {
    const r = await mtlsGet(port, client, ca.root.cert, '/', false);
    assert.equal(r.status, 200);
    assert.equal(r.serverSerial, first.serial);
    assert.equal(r.serverSans, `URI:${spiffe(TD, 'default', 'reviews')}`);
    const other = new TestCa('other.domain').issue('stranger', { uris: [spiffe('other.domain', 'default', 'x')] });
    await assert.rejects(mtlsGet(port, other, ca.root.cert, '/', false), /socket hang up|ECONNRESET/);
  });

  test('curl with the client certificate gets through (HTTP/2 by ALPN); without one it is refused', { skip: hasCurl() ? false : 'curl is missing' }, async () => {
    const ok = await curl(['-sS', '-k', '--http2', '--cert', client.certPath, '--key', client.keyPath, '-w', ' %{http_version}', `https://127.0.0.1:${port}/curl`]);
    assert.equal(ok.code, 0, ok.stderr);
    const hash = createHash('sha256').update(new X509Certificate(client.cert).raw).digest('hex');
    assert.match(ok.stdout, new RegExp(`;Hash=${hash};URI=spiffe://cluster\\.local/ns/default/sa/productpage 2$`));
    const refused = await curl(['-sS', '-k', `https://127.0.0.1:${port}/curl`]);
    assert.notEqual(refused.code, 0, 'no client certificate: the connection is refused');
  });

  test('rotation over SDS: new connections get the new certificate; a keep-alive connection opened before keeps working', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await mtlsGet(port, client, ca.root.cert, '/before', agent);
      assert.equal(before.serverSerial, first.serial);
      const rotated = ca.issue('reviews-2', { uris: [spiffe(TD, 'default', 'reviews')] });
      cache.setSnapshot(NODE_ID, snapshot(certSecret(rotated)));
      let fresh = '';
      for (let i = 0; i < 200 && fresh !== rotated.serial; i++) {
        fresh = (await mtlsGet(port, client, ca.root.cert, '/new', false)).serverSerial;
        if (fresh !== rotated.serial) await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(fresh, rotated.serial, 'a new connection sees the rotated certificate');
      const again = await mtlsGet(port, client, ca.root.cert, '/again', agent);
      assert.equal(again.status, 200);
      // The same TLS connection, shaken hands with the first certificate (node:tls clients stop exposing the peer
      // certificate of a reused connection after the TLS 1.3 session tickets, so the serial was read on `before`).
      assert.equal(again.socket, before.socket, 'the same keep-alive connection');
      const hash = createHash('sha256').update(new X509Certificate(client.cert).raw).digest('hex');
      assert.equal(again.body, `By=${spiffe(TD, 'default', 'reviews')};Hash=${hash};URI=${spiffe(TD, 'default', 'productpage')}`, 'XFCC (SANITIZE_SET) from the connection');
    } finally {
      agent.destroy();
    }
  });
});
