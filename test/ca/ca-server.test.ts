// The CA over gRPC on the control plane's secure xDS port: TLS with a CA-issued serving certificate, bearer tokens, Istio's status codes, ADS on the same port, metrics, rotation.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createCertificate } from '../../src/ca/ca-client.js';
import { splitPemCertificates } from '../../src/ca/ca-material.js';
import { startControlPlane, type ControlPlane } from '../../src/control/server/main.js';
import { ADS_SERVICE_DEFINITION, type DiscoveryRequest, type DiscoveryResponse } from '../../src/xds/ads-service.js';
import { hasOpenssl, opensslCsr, opensslVerify, peculiarCsr, peculiarCsrWithKey, tempDir } from './ca-fixtures.js';

const TOKEN = 'bookinfo-productpage-token-0123456789';
const URI = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
const skip = hasOpenssl() ? false : 'openssl is not installed';

let tmp: ReturnType<typeof tempDir>;
let plane: ControlPlane;
let address: string;
let rootOut: string;
const logs: string[] = [];

before(async () => {
  tmp = tempDir('server');
  const configDir = join(tmp.dir, 'config');
  mkdirSync(configDir);
  const tokenFile = join(tmp.dir, 'tokens');
  writeFileSync(tokenFile, `${TOKEN} default bookinfo-productpage\n`);
  rootOut = join(tmp.dir, 'trust-bundle.pem');
  plane = await startControlPlane({
    configDir,
    xdsAddress: '127.0.0.1:0',
    monitoringAddress: '127.0.0.1:0',
    secureXds: { address: '127.0.0.1:0', selfSignedDir: join(tmp.dir, 'ca'), tokenFile, rootCertOut: rootOut, maxWorkloadCertTtlMs: 48 * 3600_000, rootRotationOverlapMs: 600_000 },
    logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
  });
  address = `127.0.0.1:${plane.secureXdsPort}`;
});

after(async () => {
  await plane?.close();
  tmp?.remove();
});

function rootPem(): string {
  return readFileSync(rootOut, 'utf8');
}

async function callError(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  assert.fail('the call succeeded');
}

test('a token from the token file gets a chain for its identity over TLS; openssl verifies it against the root the control plane wrote', { skip }, async () => {
  const chain = await createCertificate(address, { csr: await peculiarCsr({ uris: [URI] }), token: TOKEN, rootCertPem: rootPem(), validitySeconds: 3600, metadata: { WorkloadName: 'productpage-v1' } });
  assert.equal(chain.length, 2);
  const leaf = new X509Certificate(chain[0]!);
  assert.equal(leaf.subjectAltName, `URI:${URI}`);
  assert.ok(Math.abs(Date.parse(leaf.validTo) - Date.now() - 3600_000) < 10_000);
  assert.equal(new X509Certificate(chain[1]!).fingerprint256, new X509Certificate(rootPem()).fingerprint256);
  const [ok, out] = opensslVerify(tmp.dir, chain[0]!, rootPem());
  assert.ok(ok, out);
  assert.match(logs.join('\n'), /CA: issued spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage to .*WorkloadName productpage-v1.*valid until/);
});

test('an openssl req CSR with a token issued through plane.tokens (what trellis up uses), reached by the name istiod.istio-system.svc', { skip }, async () => {
  const token = plane.tokens!.issue('default', 'details');
  const uri = 'spiffe://cluster.local/ns/default/sa/details';
  const chain = await createCertificate(address, { csr: opensslCsr(tmp.dir, { uri }), token, rootCertPem: rootPem(), serverName: 'istiod.istio-system.svc' });
  assert.equal(new X509Certificate(chain[0]!).subjectAltName, `URI:${uri}`);
  assert.ok(Math.abs(Date.parse(new X509Certificate(chain[0]!).validTo) - Date.now() - 24 * 3600_000) < 10_000, 'no validity requested: the 24 h default');
});

test('no token, a wrong token, or a non-Bearer header: UNAUTHENTICATED, logged with the reason', async () => {
  const csr = await peculiarCsr({ uris: [URI] });
  const missing = await callError(createCertificate(address, { csr, rootCertPem: rootPem() }));
  assert.equal(missing.code, grpc.status.UNAUTHENTICATED);
  assert.match(missing.details, /no authorization header/);
  const wrong = await callError(createCertificate(address, { csr, token: 'not-a-token-anyone-issued', rootCertPem: rootPem() }));
  assert.equal(wrong.code, grpc.status.UNAUTHENTICATED);
  assert.match(wrong.details, /unknown bearer token/);
  assert.match(logs.join('\n'), /CA: refused CreateCertificate from .*: UNAUTHENTICATED: unknown bearer token/);
});

test('a CSR for another identity than the token\'s: PERMISSION_DENIED, logged with what was asked and who asked', async () => {
  const err = await callError(createCertificate(address, { csr: await peculiarCsr({ uris: ['spiffe://cluster.local/ns/istio-system/sa/istiod'] }), token: TOKEN, rootCertPem: rootPem() }));
  assert.equal(err.code, grpc.status.PERMISSION_DENIED);
  assert.match(err.details, /csr asks for uri:spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istiod; the caller may only have spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage/);
  assert.match(logs.join('\n'), /refused CreateCertificate from .* as default\/bookinfo-productpage: PERMISSION_DENIED: csr asks for uri:spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istiod/);
});

test('a malformed CSR: INVALID_ARGUMENT with the reason', async () => {
  const err = await callError(createCertificate(address, { csr: '-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n-----END CERTIFICATE REQUEST-----\n', token: TOKEN, rootCertPem: rootPem() }));
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
  assert.match(err.details, /csr does not parse as PKCS#10/);
  const empty = await callError(createCertificate(address, { csr: '', token: TOKEN, rootCertPem: rootPem() }));
  assert.equal(empty.code, grpc.status.INVALID_ARGUMENT);
});

test('request bytes that are not an IstioCertificateRequest: INVALID_ARGUMENT with the decoder\'s reason, not INTERNAL', async () => {
  const { CA_SERVICE_DEFINITION } = await import('../../src/ca/ca-service.js');
  const raw = { CreateCertificate: { ...CA_SERVICE_DEFINITION.CreateCertificate, requestSerialize: (b: Buffer) => b } };
  const Client = grpc.makeGenericClientConstructor(raw, 'IstioCertificateService');
  const client = new Client(address, grpc.credentials.createSsl(Buffer.from(rootPem())));
  try {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    // Field 1 (csr) announced as 255 bytes long, then the message ends.
    const err = await new Promise<grpc.ServiceError>((resolve) => (client as unknown as { CreateCertificate(b: Buffer, m: grpc.Metadata, cb: (e: grpc.ServiceError) => void): void }).CreateCertificate(Buffer.from([0x0a, 0xff, 0x01]), metadata, resolve));
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /request is not an IstioCertificateRequest/);
  } finally {
    client.close();
  }
});

test('a secure xDS address already in use stops the start with the address named', async () => {
  await assert.rejects(
    startControlPlane({ configDir: join(tmp.dir, 'config'), xdsAddress: '127.0.0.1:0', monitoringAddress: '127.0.0.1:0', secureXds: { address }, logger: { info: () => {}, warn: () => {} } }),
    new RegExp(`secure xDS address ${address.replace(/\./g, '\\.')}:`),
  );
});

test('a workload renews with the certificate it holds, no token (Istio\'s client-certificate authentication); only for its own identity', { skip }, async () => {
  const first = await peculiarCsrWithKey({ uris: [URI] });
  const held = await createCertificate(address, { csr: first.csr, token: TOKEN, rootCertPem: rootPem() });
  const renewal = await peculiarCsrWithKey({ uris: [URI] });
  const renewed = await createCertificate(address, { csr: renewal.csr, rootCertPem: rootPem(), clientCertChainPem: held.join(''), clientKeyPem: first.keyPem });
  assert.equal(new X509Certificate(renewed[0]!).subjectAltName, `URI:${URI}`);
  assert.notEqual(new X509Certificate(renewed[0]!).serialNumber, new X509Certificate(held[0]!).serialNumber);
  const other = await callError(createCertificate(address, { csr: await peculiarCsr({ uris: ['spiffe://cluster.local/ns/default/sa/reviews'] }), rootCertPem: rootPem(), clientCertChainPem: held.join(''), clientKeyPem: first.keyPem }));
  assert.equal(other.code, grpc.status.PERMISSION_DENIED);
  assert.match(logs.join('\n'), /refused CreateCertificate from .* as default\/bookinfo-productpage: PERMISSION_DENIED: csr asks for uri:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/);
});

test('a client certificate from another CA authenticates nothing: UNAUTHENTICATED', { skip }, async () => {
  const { CertificateAuthority } = await import('../../src/ca/authority.js');
  const stranger = await CertificateAuthority.create({ trustDomain: 'cluster.local', logger: { info: () => {}, warn: () => {} } });
  const forged = await peculiarCsrWithKey({ uris: [URI] });
  const chain = (await stranger.signWorkload(forged.csr, { namespace: 'default', serviceAccount: 'bookinfo-productpage' })).certChain;
  const err = await callError(createCertificate(address, { csr: (await peculiarCsrWithKey({ uris: [URI] })).csr, rootCertPem: rootPem(), clientCertChainPem: chain.join(''), clientKeyPem: forged.keyPem }));
  assert.equal(err.code, grpc.status.UNAUTHENTICATED);
  assert.match(err.details, /no authorization header \(expected "Bearer <token>"\) and no client certificate of the mesh/);
});

test('a TTL above --max-workload-cert-ttl is clamped to it, and the log says so', async () => {
  const chain = await createCertificate(address, { csr: await peculiarCsr({ uris: [URI] }), token: TOKEN, rootCertPem: rootPem(), validitySeconds: 365 * 24 * 3600 });
  const ttl = Date.parse(new X509Certificate(chain[0]!).validTo) - Date.now();
  assert.ok(Math.abs(ttl - 48 * 3600_000) < 10_000, `ttl ${ttl} ms is the 48 h maximum`);
  assert.match(logs.join('\n'), /requested 31536000 s, clamped to the maximum/);
});

test('a client that does not trust the mesh root cannot even reach the CA (TLS)', async () => {
  const other = tempDir('other-root');
  try {
    const { CertificateAuthority } = await import('../../src/ca/authority.js');
    const stranger = await CertificateAuthority.create({ trustDomain: 'cluster.local', logger: { info: () => {}, warn: () => {} } });
    const err = await callError(createCertificate(address, { csr: await peculiarCsr({ uris: [URI] }), token: TOKEN, rootCertPem: stranger.rootCertPem(), timeoutMs: 5_000 }));
    assert.equal(err.code, grpc.status.UNAVAILABLE);
  } finally {
    other.remove();
  }
});

test('ADS is served on the same TLS port', async () => {
  const Client = grpc.makeGenericClientConstructor(ADS_SERVICE_DEFINITION, 'AggregatedDiscoveryService');
  const client = new Client(address, grpc.credentials.createSsl(Buffer.from(rootPem())));
  try {
    const call = (client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> }).StreamAggregatedResources();
    const first = new Promise<DiscoveryResponse>((resolve, reject) => {
      call.on('data', resolve);
      call.on('error', reject);
    });
    call.write({ node: { id: 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local', cluster: 'productpage.default' }, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names: [] } as DiscoveryRequest);
    const response = await Promise.race([first, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no CDS response within 10 s')), 10_000))]);
    assert.equal(response.type_url, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
    assert.ok((response.resources ?? []).length > 0, 'clusters (BlackHole, Passthrough, …) came back');
    call.cancel();
  } finally {
    client.close();
  }
});

test('Istio\'s citadel_server_* metrics count requests, issuances and refusals', async () => {
  const text = await (await fetch(`http://127.0.0.1:${plane.monitoringPort}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  assert.ok(value('citadel_server_csr_count') >= 6, text);
  assert.ok(value('citadel_server_success_cert_issuance_count') >= 2);
  assert.ok(value('citadel_server_authentication_failure_count') >= 2);
  assert.ok(value('citadel_server_csr_parsing_err_count') >= 2);
  assert.ok(value('citadel_server_csr_sign_err_count{error_type="identity"}') >= 1);
  assert.ok(value('citadel_server_root_cert_expiry_timestamp') > Date.now() / 1000 + 3000 * 24 * 3600);
});

test('after a root rotation the port serves a certificate of the new root, and issued chains carry both roots during the overlap', { skip }, async () => {
  const oldRoot = splitPemCertificates(rootPem())[0]!;
  const heldKey = await peculiarCsrWithKey({ uris: [URI] });
  const held = await createCertificate(address, { csr: heldKey.csr, token: TOKEN, rootCertPem: rootPem() });
  await plane.ca!.rotateRoot();
  const roots = splitPemCertificates(rootPem());
  assert.equal(roots.length, 2, 'the root file holds the new and the old root');
  const newRoot = roots[0]!;
  // Trusting only the new root is enough to reach the CA: the serving certificate was re-issued.
  let chain: string[] | undefined;
  for (let i = 0; i < 50 && !chain; i++) {
    chain = await createCertificate(address, { csr: await peculiarCsr({ uris: [URI] }), token: TOKEN, rootCertPem: newRoot }).catch(() => undefined);
    if (!chain) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(chain, 'a client trusting only the new root connects');
  // A client that read the old root once at start cannot reach the port any more: it must re-read the root file.
  const stale = await callError(createCertificate(address, { csr: await peculiarCsr({ uris: [URI] }), token: TOKEN, rootCertPem: oldRoot, timeoutMs: 5_000 }));
  assert.equal(stale.code, grpc.status.UNAVAILABLE);
  assert.equal(chain.length, 3);
  assert.equal(new X509Certificate(chain[1]!).fingerprint256, new X509Certificate(newRoot).fingerprint256);
  assert.equal(new X509Certificate(chain[2]!).fingerprint256, new X509Certificate(oldRoot).fingerprint256);
  const [ok, out] = opensslVerify(tmp.dir, chain[0]!, newRoot);
  assert.ok(ok, out);
  // During the overlap a certificate of the old root still authenticates a renewal; the roots are read from --ca-root-out at the call.
  const renewed = await createCertificate(address, { csr: (await peculiarCsrWithKey({ uris: [URI] })).csr, rootCertFile: rootOut, clientCertChainPem: held.join(''), clientKeyPem: heldKey.keyPem });
  assert.equal(new X509Certificate(renewed[1]!).fingerprint256, new X509Certificate(newRoot).fingerprint256, 'renewed under the new root');
});

test('createCertificate without a usable root rejects before calling: a missing root file, no root at all', async () => {
  await assert.rejects(createCertificate(address, { csr: 'x', token: TOKEN, rootCertFile: join(tmp.dir, 'no-such-root.pem') }), /createCertificate: cannot read .*no-such-root\.pem/);
  await assert.rejects(createCertificate(address, { csr: 'x', token: TOKEN }), /no root certificate to trust the CA with/);
});
