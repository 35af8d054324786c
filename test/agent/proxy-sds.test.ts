// `trellis proxy` with the security agent: the first certificate from a CA over TLS before the proxy starts, served over SDS (sds-grpc) to a static TLS listener; new connections see each rotated certificate without a restart.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type PeerCertificate } from 'node:tls';
import { stringify } from 'yaml';
import { agentSdsConfig, buildProxyBootstrap, SDS_CLUSTER } from '../../src/agent/bootstrap.js';
import { startProxyProcess, writeTemp } from '../e2e/proxy-support.js';
import { TestCa } from './test-ca.js';

const SPIFFE = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One TLS handshake to the proxy's listener; the certificate it presents, checked against the CA root. */
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

/** A sidecar bootstrap (src/agent/bootstrap.ts, with sds-grpc) plus a static TLS listener whose certificate and CA come over SDS, as Istio generates them. */
function bootstrapYaml(sdsPort: number, listenerPort: number): string {
  const b = buildProxyBootstrap({ type: 'sidecar', name: 'reviews-v1', namespace: 'default', labels: { app: 'reviews' }, serviceAccount: 'bookinfo-reviews', adminPort: 0, xdsPort: 1, sdsPort });
  // No control plane in this test: only the static parts.
  delete b['dynamic_resources'];
  const statics = b['static_resources'] as { clusters: { name: string }[]; listeners?: unknown[] };
  statics.clusters = statics.clusters.filter((c) => c.name === SDS_CLUSTER);
  statics.listeners = [
    {
      name: 'inbound-tls',
      address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } },
      filter_chains: [
        {
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
              common_tls_context: {
                tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: agentSdsConfig() }],
                combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: agentSdsConfig() } },
              },
            },
          },
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                stat_prefix: 'inbound',
                route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }] },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
              },
            },
          ],
        },
      ],
    },
  ];
  return stringify(b);
}

test('trellis proxy --ca-address: the listener presents the SPIFFE certificate from SDS and new connections get each rotated one without a restart', async (t) => {
  const ca = await TestCa.create();
  const server = await ca.serve('local-token');
  t.after(() => server.close());
  const [sdsPort, listenerPort] = [await freePort(), await freePort()];
  const bootstrap = writeTemp('bootstrap.yaml', bootstrapYaml(sdsPort, listenerPort));
  const root = writeTemp('root-cert.pem', ca.rootPem);
  const token = writeTemp('token', 'local-token\n');
  const proxy = await startProxyProcess(bootstrap, ['--ca-address', server.address, '--ca-root-cert', root, '--ca-token-file', token, '--cert-ttl', '6s']);
  t.after(() => proxy.kill());

  const first = await handshake(listenerPort, ca.rootPem).catch((e: Error) => assert.fail(`${e.message}; stderr:\n${proxy.stderr()}`));
  assert.equal(first.subjectaltname, `URI:${SPIFFE}`);
  assert.match(proxy.stderr(), /SDS on 127\.0\.0\.1:\d+/);

  // The certificate rotates at ~3 s: a later connection sees a new serial, the process is the same.
  const deadline = Date.now() + 15_000;
  let next = first;
  while (next.serialNumber === first.serialNumber && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    next = await handshake(listenerPort, ca.rootPem);
  }
  assert.notEqual(next.serialNumber, first.serialNumber, `no rotation seen; stderr:\n${proxy.stderr()}`);
  assert.equal(next.subjectaltname, `URI:${SPIFFE}`);
  assert.equal(proxy.child.exitCode, null);

  // The proxy holds both secrets as delivered by SDS (private key redacted in the dump).
  const dump = (await (await fetch(`http://${proxy.admin}/config_dump`)).json()) as { configs: { '@type': string; dynamic_active_secrets?: { name: string }[] }[] };
  const secrets = dump.configs.find((c) => c['@type'].endsWith('SecretsConfigDump'));
  assert.deepEqual(secrets?.dynamic_active_secrets?.map((s) => s.name).sort(), ['ROOTCA', 'default']);
});

test('trellis proxy --ca-address with a wrong token keeps retrying the CA and never starts the proxy; a bootstrap without sds-grpc is refused', async (t) => {
  const ca = await TestCa.create();
  const server = await ca.serve('right');
  t.after(() => server.close());
  const bootstrap = writeTemp('bootstrap.yaml', bootstrapYaml(await freePort(), await freePort()));
  const root = writeTemp('root-cert.pem', ca.rootPem);
  const token = writeTemp('token', 'wrong');
  const child = spawn(process.execPath, [CLI, 'proxy', '-c', bootstrap, '--ca-address', server.address, '--ca-root-cert', root, '--ca-token-file', token], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const deadline = Date.now() + 20_000;
  while ((err.match(/TRELLIS_AGENT_CERTIFICATE/g) ?? []).length < 2 && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  assert.equal(child.exitCode, null, `the agent keeps retrying; stderr:\n${err}`);
  assert.match(err, /TRELLIS_AGENT_CERTIFICATE: CA request for spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-reviews failed: .*(bad token|UNAUTHENTICATED).*retrying in \d+ ms/);
  assert.doesNotMatch(out, /admin address/, 'the proxy must not start without a certificate');
  // SIGTERM while waiting for the first certificate stops the agent.
  child.kill('SIGTERM');
  assert.equal(await exited, 1);

  const noSds = buildProxyBootstrap({ type: 'sidecar', name: 'a', namespace: 'default', labels: {}, serviceAccount: 'a', adminPort: 0, xdsPort: 1 });
  delete noSds['dynamic_resources'];
  const bare = writeTemp('bootstrap.yaml', stringify(noSds));
  const refused = startProxyProcess(bare, ['--ca-address', server.address, '--ca-root-cert', root]);
  await assert.rejects(refused, /exited with 1[\s\S]*static cluster sds-grpc/);
});
