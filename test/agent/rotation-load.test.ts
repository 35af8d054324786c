// Rotation under steady load: the agent rotates a 2 s certificate every second, the proxy's mTLS listener takes each one over SDS, and no request fails.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { agentSdsConfig, SDS_CLUSTER } from '../../src/agent/bootstrap.js';
import { readIssuedChain } from '../../src/agent/certificate-chain.js';
import { SdsServer } from '../../src/agent/sds-server.js';
import { WorkloadCertificates } from '../../src/agent/workload-certificates.js';
import { createWorkloadCsr } from '../../src/agent/workload-csr.js';
import { ProxyLog } from '../../src/proxy/admin/log-levels.js';
import { startProxy } from '../../src/proxy/main.js';
import { TestCa } from './test-ca.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('steady HTTPS load (new and kept-alive connections, client certificates required) while the certificate rotates every second: zero failed requests', async (t) => {
  const ca = await TestCa.create();
  const certs = new WorkloadCertificates({ identity: { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'reviews' }, ttlSeconds: 4, sign: (csr, ttl) => ca.sign(csr, ttl), log: { info: () => undefined, warn: () => undefined } });
  const sds = new SdsServer({ logger: { warn: () => undefined } });
  certs.on('certificate', (c) => sds.update(c));
  const { port: sdsPort } = await sds.listen('127.0.0.1:0');
  t.after(async () => {
    certs.close();
    await sds.close();
  });
  await certs.start();

  const listenerPort = await freePort();
  const path = join(mkdtempSync(join(tmpdir(), 'trellis-rotation-')), 'bootstrap.yaml');
  writeFileSync(path, stringify({
    node: { id: 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local', cluster: 'reviews.default' },
    static_resources: {
      clusters: [{
        name: SDS_CLUSTER, type: 'STATIC', connect_timeout: '1s',
        typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } },
        load_assignment: { cluster_name: SDS_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: sdsPort } } } }] }] },
      }],
      listeners: [{
        name: 'inbound-mtls',
        address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } },
        filter_chains: [{
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
              require_client_certificate: true,
              common_tls_context: {
                tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: agentSdsConfig() }],
                validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: agentSdsConfig() },
              },
            },
          },
          filters: [{
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'inbound',
              route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }] },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
            },
          }],
        }],
      }],
    },
  }));
  const proxy = await startProxy({ bootstrapPath: path, log: new ProxyLog('off', () => undefined) });
  t.after(() => proxy.stop());

  // The caller: a client certificate from the same CA (another identity), valid for the whole run.
  const { csrPem, privateKeyPem } = await createWorkloadCsr({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'productpage' });
  const client = await readIssuedChain(await ca.sign(csrPem, 600));
  const tls = { ca: ca.rootPem, cert: client.certificateChainPem, key: privateKeyPem, checkServerIdentity: () => undefined };
  const fresh = new Agent({ ...tls, keepAlive: false });
  const kept = new Agent({ ...tls, keepAlive: true, maxSockets: 4 });
  t.after(() => {
    fresh.destroy();
    kept.destroy();
  });

  const serials = new Set<string>();
  const failures: string[] = [];
  let ok = 0;
  const once = (agent: Agent): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: listenerPort, path: '/', agent, servername: 'reviews' }, (res) => {
        const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate?.()?.serialNumber;
        if (serial) serials.add(serial);
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => {
          if (res.statusCode === 200 && body === 'ok') ok += 1;
          else failures.push(`status ${res.statusCode} body ${body}`);
          resolve();
        });
      });
      req.on('error', (err) => {
        failures.push(err.message);
        resolve();
      });
      req.setTimeout(5_000, () => req.destroy(new Error('request timed out')));
      req.end();
    });
  // 4 s certificates renewed at ~2 s: a timer delayed by a loaded machine must still not let one expire in use.
  const until = Date.now() + 9_000;
  const worker = async (agent: Agent): Promise<void> => {
    while (Date.now() < until) await once(agent);
  };
  await Promise.all([worker(fresh), worker(fresh), worker(kept), worker(kept)]);

  t.diagnostic(`${ok} requests, ${failures.length} failed, ${certs.issued} certificates issued, ${serials.size} serials seen`);
  assert.deepEqual(failures, [], `${failures.length} failed of ${failures.length + ok}`);
  assert.ok(ok > 50, `steady load: ${ok} requests`);
  assert.ok(certs.issued >= 4, `rotated every ~2 s: ${certs.issued} certificates issued`);
  assert.ok(serials.size >= 3, `new connections saw the rotated certificates: ${serials.size} serials`);
});

test('the proxy as the mTLS client: a cluster whose UpstreamTlsContext takes default/ROOTCA from sds-grpc presents each rotated certificate to the upstream, no request failing', async (t) => {
  const { createServer: createHttpsServer } = await import('node:https');
  const { request: httpRequest } = await import('node:http');
  const ca = await TestCa.create();
  const certs = new WorkloadCertificates({ identity: { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'productpage' }, ttlSeconds: 4, sign: (csr, ttl) => ca.sign(csr, ttl), log: { info: () => undefined, warn: () => undefined } });
  const sds = new SdsServer({ logger: { warn: () => undefined } });
  certs.on('certificate', (c) => sds.update(c));
  const { port: sdsPort } = await sds.listen('127.0.0.1:0');
  t.after(async () => {
    certs.close();
    await sds.close();
  });
  await certs.start();

  // The upstream: requires a client certificate from the mesh CA and records who called.
  const { csrPem, privateKeyPem } = await createWorkloadCsr({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'reviews' });
  const serving = await readIssuedChain(await ca.sign(csrPem, 600));
  const callers = new Map<string, string>();
  const upstream = createHttpsServer({ cert: serving.certificateChainPem, key: privateKeyPem, ca: ca.rootPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
    callers.set(peer.serialNumber, peer.subjectaltname ?? '');
    // A rotated certificate is for new connections (as Envoy): close each one so the proxy keeps opening them.
    res.setHeader('connection', 'close');
    res.end('ok');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
  const upstreamPort = (upstream.address() as AddressInfo).port;

  const listenerPort = await freePort();
  const path = join(mkdtempSync(join(tmpdir(), 'trellis-rotation-')), 'bootstrap.yaml');
  writeFileSync(path, stringify({
    node: { id: 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local', cluster: 'productpage.default' },
    static_resources: {
      clusters: [
        {
          name: SDS_CLUSTER, type: 'STATIC', connect_timeout: '1s',
          typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } },
          load_assignment: { cluster_name: SDS_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: sdsPort } } } }] }] },
        },
        {
          name: 'outbound|9080||reviews', type: 'STATIC', connect_timeout: '1s',
          load_assignment: { cluster_name: 'reviews', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: upstreamPort } } } }] }] },
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
              common_tls_context: {
                tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: agentSdsConfig() }],
                combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: agentSdsConfig() } },
              },
            },
          },
        },
      ],
      listeners: [{
        name: 'outbound',
        address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } },
        filter_chains: [{
          filters: [{
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'outbound',
              route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||reviews' } }] }] },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
            },
          }],
        }],
      }],
    },
  }));
  const proxy = await startProxy({ bootstrapPath: path, log: new ProxyLog('off', () => undefined) });
  t.after(() => proxy.stop());

  const failures: string[] = [];
  let ok = 0;
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: listenerPort, path: '/', headers: { host: 'reviews' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => {
          if (res.statusCode === 200 && body === 'ok') ok += 1;
          else failures.push(`status ${res.statusCode} ${body}`);
          resolve();
        });
      });
      req.on('error', (err) => {
        failures.push(err.message);
        resolve();
      });
      req.end();
    });
  const until = Date.now() + 8_000;
  await Promise.all([0, 1, 2].map(async () => {
    while (Date.now() < until) await once();
  }));
  t.diagnostic(`${ok} requests, ${failures.length} failed, ${certs.issued} certificates issued, upstream saw ${callers.size} client certificates`);
  assert.deepEqual(failures, []);
  assert.ok(ok > 20, `steady load: ${ok}`);
  assert.ok(callers.size >= 3, `the upstream saw rotated client certificates: ${callers.size}`);
  for (const san of callers.values()) assert.equal(san, 'URI:spiffe://cluster.local/ns/default/sa/productpage');
});
