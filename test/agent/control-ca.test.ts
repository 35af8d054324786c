// The agent against the real CA: `trellis control` signs on its secure port for a bootstrap token, `trellis proxy --ca-address` serves the certificate over SDS and rotates it at half life.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type PeerCertificate } from 'node:tls';
import { stringify } from 'yaml';
import { agentSdsConfig, buildProxyBootstrap, SDS_CLUSTER } from '../../src/agent/bootstrap.js';
import { startProxyProcess } from '../e2e/proxy-support.js';

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function handshake(port: number, rootPem: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: rootPem, servername: 'details', checkServerIdentity: () => undefined }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
  });
}

test('trellis control (self-signed CA, token file) + trellis proxy --ca-address: the workload presents its SPIFFE certificate signed by the control plane root and rotates it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-agent-ca-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'tokens'), 'details-token-0123456789 bookinfo bookinfo-details\n');
  writeFileSync(join(dir, 'token'), 'details-token-0123456789\n');
  const rootOut = join(dir, 'root-cert.pem');
  const control = spawn(process.execPath, [bin, 'control', '--config-dir', join(dir, 'config'), '--xds-address', '127.0.0.1:0', '--monitoring-address', '127.0.0.1:0',
    '--secure-xds-address', '127.0.0.1:0', '--ca-dir', join(dir, 'ca'), '--ca-token-file', join(dir, 'tokens'), '--ca-root-out', rootOut], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  control.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  control.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => control.on('exit', (code) => resolve(code)));
  t.after(async () => {
    if (control.exitCode === null) control.kill('SIGTERM');
    await exited;
  });
  for (let i = 0; i < 800 && !/monitoring port \d+/.test(stdout) && control.exitCode === null; i++) await new Promise((r) => setTimeout(r, 25));
  const securePort = /^secure xds port (\d+)$/m.exec(stdout)?.[1];
  assert.ok(securePort, `no secure xds port announced; stdout:\n${stdout}\nstderr:\n${stderr}`);
  const root = readFileSync(rootOut, 'utf8');

  const [sdsPort, listenerPort] = [await freePort(), await freePort()];
  const b = buildProxyBootstrap({ type: 'sidecar', name: 'details-v1', namespace: 'bookinfo', labels: { app: 'details' }, serviceAccount: 'bookinfo-details', adminPort: 0, xdsPort: 1, sdsPort });
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
              common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: agentSdsConfig() }], validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: agentSdsConfig() } },
            },
          },
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                stat_prefix: 'inbound',
                route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }] },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
              },
            },
          ],
        },
      ],
    },
  ];
  const bootstrap = join(dir, 'bootstrap.yaml');
  writeFileSync(bootstrap, stringify(b));
  const proxy = await startProxyProcess(bootstrap, ['--ca-address', `127.0.0.1:${securePort}`, '--ca-root-cert', rootOut, '--ca-token-file', join(dir, 'token'), '--cert-ttl', '6s']);
  t.after(() => proxy.kill());

  const first = await handshake(listenerPort, root);
  assert.equal(first.subjectaltname, 'URI:spiffe://cluster.local/ns/bookinfo/sa/bookinfo-details');
  const lifetime = Date.parse(first.valid_to) - Date.now();
  assert.ok(lifetime <= 7_000, `--cert-ttl 6s asked of the CA, got valid_to ${first.valid_to}`);
  const deadline = Date.now() + 20_000;
  let next = first;
  while (next.serialNumber === first.serialNumber && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    next = await handshake(listenerPort, root);
  }
  assert.notEqual(next.serialNumber, first.serialNumber, `no rotation; proxy stderr:\n${proxy.stderr()}\ncontrol stderr:\n${stderr}`);
  assert.equal(next.subjectaltname, first.subjectaltname);
});
