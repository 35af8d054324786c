// The agent's certificate job: the CSR it sends, the chain it keeps, rotation at half life served over SDS to a real xDS client, and a CA that goes down.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { createCertificate } from '../../src/ca/ca-client.js';
import { readIssuedChain } from '../../src/agent/certificate-chain.js';
import { SdsServer, ROOT_CA_SECRET_NAME, WORKLOAD_SECRET_NAME } from '../../src/agent/sds-server.js';
import { WorkloadCertificates, type WorkloadCertificate } from '../../src/agent/workload-certificates.js';
import { createWorkloadCsr, spiffeId } from '../../src/agent/workload-csr.js';
import { XdsClient, secretResourceType, type Secret } from '../../src/xds/client/index.js';
import { SECRET } from '../../src/xds/type-urls.js';
import { secretDiscoveryChannelOptions } from '../../src/proxy/sds-clients.js';
import { TestCa } from './test-ca.js';

const identity = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'bookinfo-reviews' };
const SPIFFE = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const quiet = { info: () => undefined, warn: () => undefined };

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The subject alternative names of a certificate or CSR, as JSON. */
function sanOf(item: { getExtension(oid: string): x509.Extension | null }): unknown {
  return (item.getExtension('2.5.29.17') as x509.SubjectAlternativeNameExtension | null)?.names.toJSON();
}

function pemOf(source: { inline_bytes?: Uint8Array; inline_string?: string } | undefined): string {
  return source?.inline_bytes ? Buffer.from(source.inline_bytes).toString() : source?.inline_string ?? '';
}

test('the CSR carries the SPIFFE id as a URI SAN and an ECDSA P-256 key by default, RSA 2048 on request', async () => {
  assert.equal(spiffeId(identity), SPIFFE);
  const ec = await createWorkloadCsr(identity);
  const csr = new x509.Pkcs10CertificateRequest(ec.csrPem);
  assert.equal(await csr.verify(webcrypto), true);
  const san = sanOf(csr);
  assert.deepEqual(san, [{ type: 'url', value: SPIFFE }]);
  const ecKey = createPrivateKey(ec.privateKeyPem);
  assert.equal(ecKey.asymmetricKeyType, 'ec');
  assert.equal(ecKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal((csr.publicKey.algorithm as { namedCurve?: string }).namedCurve, 'P-256');

  const rsa = await createWorkloadCsr(identity, 'RSA');
  const rsaKey = createPrivateKey(rsa.privateKeyPem);
  assert.equal(rsaKey.asymmetricKeyType, 'rsa');
  assert.equal(rsaKey.asymmetricKeyDetails?.modulusLength, 2048);
  assert.deepEqual(sanOf(new x509.Pkcs10CertificateRequest(rsa.csrPem)), [{ type: 'url', value: SPIFFE }]);
});

test('the chain presented stops at the first root; every root of a rotation overlap is trusted', async () => {
  const ca = await TestCa.create();
  const next = await TestCa.otherRoot();
  ca.extraRoots = [next];
  const { csrPem } = await createWorkloadCsr(identity);
  const chain = await readIssuedChain(await ca.sign(csrPem, 60));
  assert.equal(chain.certificateChainPem.match(/BEGIN CERTIFICATE/g)?.length, 2);
  assert.equal(chain.rootCertPem.match(/BEGIN CERTIFICATE/g)?.length, 2);
  assert.ok(chain.rootCertPem.includes(next.toString('base64').slice(0, 40)) || chain.rootCertPem.includes(next.toString('pem').split('\n')[1]!));
  assert.deepEqual(chain.roots.map((r) => r.subject), [ca.root.cert.subject, next.subject]);
  await assert.rejects(readIssuedChain(['not a certificate']), { code: 'TRELLIS_AGENT_CERTIFICATE' });
});

test("rotation is scheduled at half the lifetime, moved by at most the jitter ratio", () => {
  const createdAt = new Date(Date.now());
  const notAfter = new Date(createdAt.getTime() + 100_000);
  const at = (random: number): number => new WorkloadCertificates({ identity, sign: async () => [], random: () => random, log: quiet }).rotateDelay({ createdAt, notAfter });
  const mid = at(0.5);
  assert.ok(Math.abs(mid - 50_000) < 200, `half life: ${mid}`);
  // random 0 → ratio 0.49: later; random → 1 → ratio 0.51: earlier; never more than 1 % of the lifetime either way.
  assert.ok(at(0) > mid && at(0) - mid <= 1_000 + 200, `${at(0)}`);
  assert.ok(at(0.999) < mid && mid - at(0.999) <= 1_000 + 200, `${at(0.999)}`);
});

test('with a 2 s TTL the agent rotates at half life and a real xDS client on StreamSecrets receives each new certificate', async (t) => {
  const ca = await TestCa.create();
  const certs = new WorkloadCertificates({ identity, ttlSeconds: 2, sign: (csr, ttl) => ca.sign(csr, ttl), log: quiet });
  const sds = new SdsServer({ logger: { warn: () => undefined } });
  certs.on('certificate', (c) => sds.update(c));
  const { port } = await sds.listen('127.0.0.1:0');
  const client = new XdsClient({ server: `127.0.0.1:${port}`, node: { id: 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local' }, resourceTypes: [secretResourceType], channelOptions: secretDiscoveryChannelOptions() });
  t.after(async () => {
    client.close();
    certs.close();
    await sds.close();
  });
  const serials: string[] = [];
  let root = '';
  client.onApply(secretResourceType, ({ changed }) => {
    const d = changed.get(WORKLOAD_SECRET_NAME);
    if (d) serials.push(new x509.X509Certificate(pemOf(d.tls_certificate?.certificate_chain)).serialNumber);
    const r = changed.get(ROOT_CA_SECRET_NAME);
    if (r) root = pemOf(r.validation_context?.trusted_ca);
  });
  client.subscribe(SECRET, [WORKLOAD_SECRET_NAME, ROOT_CA_SECRET_NAME]);

  const first = await certs.start();
  await until('the first certificate over SDS', () => serials.length >= 1);
  assert.equal(serials[0], first.serialNumber);
  assert.equal(new x509.X509Certificate(root).subject, ca.root.cert.subject);
  const held = client.resources<Secret>(secretResourceType).get(WORKLOAD_SECRET_NAME)!;
  const leaf = new x509.X509Certificate(pemOf(held.tls_certificate?.certificate_chain));
  assert.deepEqual(sanOf(leaf), [{ type: 'url', value: SPIFFE }]);
  // The key served is the one the certificate certifies.
  const served = createPrivateKey(pemOf(held.tls_certificate?.private_key));
  assert.ok(Buffer.from(leaf.publicKey.rawData).equals(createPublicKey(served).export({ type: 'spki', format: 'der' })));

  // Two rotations at ~1 s each: new serials reach the client without it asking again.
  await until('two rotations over SDS', () => new Set(serials).size >= 3, 8_000);
  assert.ok(ca.issued >= 3);
  assert.notEqual(serials[1], serials[0]);
  assert.equal(certs.current()!.serialNumber, serials[serials.length - 1]);
});

test('a CA that goes down is retried with backoff while the old certificate stays current and served; it recovers when the CA returns', async (t) => {
  const ca = await TestCa.create();
  const certs = new WorkloadCertificates({ identity, ttlSeconds: 2, sign: (csr, ttl) => ca.sign(csr, ttl), backoff: { baseMs: 50, maxMs: 400 }, log: quiet });
  const sds = new SdsServer({ logger: { warn: () => undefined } });
  certs.on('certificate', (c) => sds.update(c));
  const { port } = await sds.listen('127.0.0.1:0');
  const client = new XdsClient({ server: `127.0.0.1:${port}`, node: { id: 'n' }, resourceTypes: [secretResourceType], channelOptions: secretDiscoveryChannelOptions() });
  t.after(async () => {
    client.close();
    certs.close();
    await sds.close();
  });
  const errors: { retryInMs: number; code: string }[] = [];
  certs.on('error', ({ error, retryInMs }) => errors.push({ retryInMs, code: (error as { code?: string }).code ?? '' }));
  const first = await certs.start();
  ca.failWith = new Error('connect ECONNREFUSED 127.0.0.1:15012');
  client.subscribe(SECRET, [WORKLOAD_SECRET_NAME]);
  await until('several failed rotations', () => errors.length >= 4, 8_000);
  assert.ok(errors.every((e) => e.code === 'TRELLIS_AGENT_CERTIFICATE'));
  assert.ok(errors.every((e) => e.retryInMs < 400), 'retries stay under the backoff max');
  assert.equal(certs.current()!.serialNumber, first.serialNumber, 'the old certificate is kept');
  const served = client.resources<Secret>(secretResourceType).get(WORKLOAD_SECRET_NAME);
  assert.equal(new x509.X509Certificate(pemOf(served?.tls_certificate?.certificate_chain)).serialNumber, first.serialNumber);

  ca.failWith = undefined;
  const next = await until<WorkloadCertificate>('a certificate after the CA is back', () => (certs.current()!.serialNumber !== first.serialNumber ? certs.current() : undefined), 5_000);
  await until('the new certificate over SDS', () => {
    const s = client.resources<Secret>(secretResourceType).get(WORKLOAD_SECRET_NAME);
    return s && new x509.X509Certificate(pemOf(s.tls_certificate?.certificate_chain)).serialNumber === next.serialNumber;
  });
});

test('over IstioCertificateService with TLS and a bearer token (src/ca/ca-client.ts); a wrong token is an error event, never a certificate', async (t) => {
  const ca = await TestCa.create();
  const server = await ca.serve('s3cret');
  t.after(() => server.close());
  const good = new WorkloadCertificates({ identity, ttlSeconds: 60, log: quiet, sign: (csr, validitySeconds) => createCertificate(server.address, { csr, validitySeconds, token: 's3cret', rootCertPem: ca.rootPem }) });
  t.after(() => good.close());
  const cert = await good.start();
  assert.deepEqual(sanOf(new x509.X509Certificate(cert.certificateChainPem)), [{ type: 'url', value: SPIFFE }]);
  const lifetime = cert.notAfter.getTime() - Date.now();
  assert.ok(lifetime > 50_000 && lifetime <= 61_000, `validity requested: ${lifetime}`);

  const bad = new WorkloadCertificates({ identity, log: quiet, backoff: { baseMs: 50, maxMs: 100 }, sign: (csr, validitySeconds) => createCertificate(server.address, { csr, validitySeconds, token: 'wrong', rootCertPem: ca.rootPem }) });
  t.after(() => bad.close());
  const failure = new Promise<Error>((resolve) => bad.once('error', ({ error }) => resolve(error)));
  void bad.start().catch(() => undefined);
  assert.match((await failure).message, /bad token|UNAUTHENTICATED/);
  assert.equal(bad.current(), undefined);
});

test("SDS travels on Envoy's SecretDiscoveryService: the agent answers StreamSecrets, the proxy's SDS client calls it", async (t) => {
  const { ADS_SERVICE_DEFINITION } = await import('../../src/xds/ads-service.js');
  const ca = await TestCa.create();
  const sds = new SdsServer({ logger: { warn: () => undefined } });
  const { csrPem, privateKeyPem } = await createWorkloadCsr(identity);
  const chain = await readIssuedChain(await ca.sign(csrPem, 60));
  sds.update({ certificateChainPem: chain.certificateChainPem, privateKeyPem, rootCertPem: chain.rootCertPem });
  const { port } = await sds.listen('127.0.0.1:0');
  t.after(() => sds.close());

  // Server side: a bare gRPC call on the SDS method path gets the Secret.
  const sotw = ADS_SERVICE_DEFINITION.StreamAggregatedResources;
  const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => raw.close());
  const call = raw.makeBidiStreamRequest('/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets', sotw.requestSerialize, sotw.responseDeserialize);
  const response = new Promise<{ type_url?: string; resources?: { type_url?: string }[] }>((resolve, reject) => {
    call.once('data', resolve);
    call.once('error', reject);
  });
  call.write({ node: { id: 'raw' }, type_url: SECRET, resource_names: [WORKLOAD_SECRET_NAME] });
  const answer = await response;
  call.cancel();
  call.on('error', () => undefined);
  assert.equal(answer.type_url, SECRET);
  assert.equal(answer.resources?.length, 1);

  // Client side: a server that only has StreamSecrets sees the proxy's SDS client arrive there.
  const only = new grpc.Server();
  const paths: string[] = [];
  only.addService({ StreamSecrets: { ...ADS_SERVICE_DEFINITION.StreamAggregatedResources, path: '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets', originalName: undefined } } as grpc.ServiceDefinition, {
    StreamSecrets: (stream: grpc.ServerDuplexStream<unknown, unknown>) => {
      paths.push(stream.getPath());
      stream.end();
    },
  });
  const onlyPort = await new Promise<number>((resolve, reject) => only.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  t.after(() => only.forceShutdown());
  const client = new XdsClient({ server: `127.0.0.1:${onlyPort}`, node: { id: 'n' }, resourceTypes: [secretResourceType], channelOptions: secretDiscoveryChannelOptions() });
  t.after(() => client.close());
  client.subscribe(SECRET, [WORKLOAD_SECRET_NAME]);
  await until('the SDS call', () => paths.length > 0);
  assert.equal(paths[0], '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets');
});
