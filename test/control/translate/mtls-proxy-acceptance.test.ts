// Generated inbound listeners through Trellis's own proxy: compiled (not NACKed) in every mTLS mode, then served — a STRICT port
// refuses plaintext and peers of another trust domain and answers mesh mTLS, a PERMISSIVE port answers both. Certificates
// from openssl (skipped without it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MemoryConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../src/control/registry/index.js';
import { buildPushContext } from '../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import { buildLocalInboundListeners } from '../../../src/control/translate/listener/index.js';
import { TrellisListenerManager } from '../../../src/proxy/listeners/listener-manager.js';
import { createHttpFilterRegistry } from '../../../src/proxy/filters/registry.js';
import { compileRouteConfiguration } from '../../../src/proxy/router/compile-route-table.js';
import { staticSecrets } from '../../../src/proxy/transport/secret-provider.js';
import { FakeCluster, FakeClusterManager, fakeHost } from '../../proxy/http/fakes.js';
import { startUpstream, type Upstream } from '../../proxy/http/harness.js';
import { doc, resources } from '../support.js';
import { assertListenerOnTheWire, proxy as fixtureProxy } from './bookinfo-translate-fixture.js';

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = hasOpenssl ? false : 'openssl is not installed';

let dir: string;
let upstream: Upstream;
const pem = (name: string) => readFileSync(join(dir, name), 'utf8');

/** A P-256 leaf signed by the test root, with a SPIFFE URI SAN. */
function leaf(name: string, spiffe: string): void {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/O=trellis']);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=URI:${spiffe}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`]);
}

before(() => {
  if (!hasOpenssl) return;
  dir = mkdtempSync(join(tmpdir(), 'trellis-mtls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '2', '-subj', '/O=cluster.local'], { cwd: dir, stdio: 'ignore' });
  leaf('web', 'spiffe://cluster.local/ns/default/sa/web');
  leaf('sleep', 'spiffe://cluster.local/ns/default/sa/sleep');
  leaf('other', 'spiffe://other.example/ns/default/sa/sleep');
});
before(async () => {
  upstream = await startUpstream((_req, res) => res.end('from the app'));
});
after(async () => {
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** The local inbound listener the control plane generates for `web` on `port` under a namespace-wide `mode`. */
function generated(port: number, mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE') {
  const store = new MemoryConfigStore();
  store.set(...resources(
    doc('ServiceEntry', 'web', `hosts: [web.default.svc.cluster.local]\nlocation: MESH_INTERNAL\nresolution: STATIC\nports: [{number: 80, name: http, protocol: HTTP}]\nworkloadSelector: {labels: {app: web}}`)
    + doc('WorkloadEntry', 'web-v1', `address: 127.0.0.1\nports: {http: ${port}}\nlabels: {app: web}\nserviceAccount: web`)
    + doc('PeerAuthentication', 'default', `mtls: {mode: ${mode}}`).replace('networking.istio.io/v1', 'security.istio.io/v1'),
  ));
  const push = buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: DEFAULT_MESH_CONFIG });
  const web = fixtureProxy({ id: 'sidecar~127.0.0.1~web-v1-1.default~default.svc.cluster.local', ipAddresses: ['127.0.0.1'], labels: { app: 'web' }, workloadName: 'web-v1' });
  const listeners = buildLocalInboundListeners(push.instancesForProxy(web), new Map([[port, upstream.port]]), { mesh: DEFAULT_MESH_CONFIG, proxy: web, push });
  assert.equal(listeners.length, 1);
  // Over the wire and through the xDS client's LDS validation, as the proxy receives it.
  return assertListenerOnTheWire(listeners[0]!);
}

function manager(port: number): TrellisListenerManager {
  const clusters = new FakeClusterManager().add(new FakeCluster(`inbound|${port}||`, [fakeHost(upstream.port)]));
  return new TrellisListenerManager({
    clusters,
    routes: { get: () => undefined },
    httpFilters: createHttpFilterRegistry({ clusters }),
    nodeId: 'sidecar~127.0.0.1~web-v1-1.default~default.svc.cluster.local',
    compileRouteConfiguration: (config) => compileRouteConfiguration(config),
    secrets: staticSecrets([
      { name: 'default', tls_certificate: { certificate_chain: { inline_string: pem('web.pem') }, private_key: { inline_string: pem('web.key') } } },
      { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: pem('root.pem') } } },
    ]),
  }, { drainGraceMs: 100 });
}

/** One HTTP/1.1 GET over `socket`; resolves with the raw response, or '' when the proxy closes without answering. */
function exchange(socket: NodeJS.ReadWriteStream & { destroy(): void }, port: number): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const timer = setTimeout(() => (socket.destroy(), resolve(data)), 5000);
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    socket.on('close', () => (clearTimeout(timer), resolve(data)));
    socket.on('error', () => {});
    socket.write(`GET / HTTP/1.1\r\nhost: web:${port}\r\nconnection: close\r\n\r\n`);
  });
}

function plaintext(port: number): Promise<string> {
  return exchange(netConnect(port, '127.0.0.1'), port);
}

/**
 * A mesh client: mTLS with its SPIFFE certificate, offering Istio's in-mesh ALPN. An Istio sidecar offers only those
 * (`istioOnly`); with `http/1.1` added the server can also agree on an application protocol.
 */
function meshMtls(port: number, istioOnly = false, identity = 'sleep'): Promise<string> {
  const socket = tlsConnect({
    host: '127.0.0.1', port, ca: pem('root.pem'), cert: pem(`${identity}.pem`), key: pem(`${identity}.key`),
    ALPNProtocols: istioOnly ? ['istio-peer-exchange', 'istio-http/1.1', 'istio'] : ['istio-http/1.1', 'istio', 'http/1.1'],
    servername: 'outbound_.80_._.web.default.svc.cluster.local',
    checkServerIdentity: () => undefined,
  });
  return new Promise((resolve) => socket.once('secureConnect', () => resolve(exchange(socket, port))).once('error', () => resolve('')));
}

test('the proxy accepts the generated inbound listener in every mode (no NACK)', { skip }, async () => {
  const port = await freePort();
  for (const mode of ['STRICT', 'PERMISSIVE', 'DISABLE'] as const) {
    const m = manager(port);
    try {
      const compiled = m.compile(generated(port, mode));
      assert.equal(compiled.name, `127.0.0.1_${port}`);
    } finally {
      await m.close();
    }
  }
});

test('STRICT: plaintext gets no answer, mesh mTLS reaches the application', { skip }, async () => {
  const port = await freePort();
  const m = manager(port);
  try {
    await m.apply([m.compile(generated(port, 'STRICT'))]);
    assert.equal(await plaintext(port), '', 'plaintext is refused');
    const response = await meshMtls(port);
    assert.match(response, /^HTTP\/1\.1 200/);
    assert.match(response, /from the app/);
  } finally {
    await m.close();
  }
});

test('PERMISSIVE: both plaintext and mesh mTLS reach the application; DISABLE: plaintext only', { skip }, async () => {
  const port = await freePort();
  const m = manager(port);
  try {
    await m.apply([m.compile(generated(port, 'PERMISSIVE'))]);
    assert.match(await plaintext(port), /^HTTP\/1\.1 200/);
    assert.match(await meshMtls(port), /^HTTP\/1\.1 200/);
    await m.apply([m.compile(generated(port, 'DISABLE'))]);
    assert.match(await plaintext(port), /^HTTP\/1\.1 200/);
    assert.doesNotMatch(await meshMtls(port), /^HTTP\/1\.1 200/, 'no chain terminates mTLS');
  } finally {
    await m.close();
  }
});

test('STRICT: an Istio sidecar client offering only Istio ALPNs reaches the application (the server goes on without ALPN, as Envoy)', { skip }, async () => {
  const port = await freePort();
  const m = manager(port);
  try {
    await m.apply([m.compile(generated(port, 'STRICT'))]);
    assert.match(await meshMtls(port, true), /^HTTP\/1\.1 200/);
  } finally {
    await m.close();
  }
});

test('STRICT: a client certificate from the same root but another trust domain is refused by the SPIFFE SAN prefix', { skip }, async () => {
  const port = await freePort();
  const m = manager(port);
  try {
    await m.apply([m.compile(generated(port, 'STRICT'))]);
    assert.match(await meshMtls(port), /^HTTP\/1\.1 200/);
    assert.equal(await meshMtls(port, false, 'other'), '', 'spiffe://other.example/… is not of cluster.local');
  } finally {
    await m.close();
  }
});
