// Plugging in Istio's cacerts (root + intermediate made with openssl): the chain workloads get, and every way the files can be unusable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { CaError } from '../../src/ca/ca-error.js';
import { loadCacerts } from '../../src/ca/ca-material.js';
import { hasOpenssl, makeCacerts, openssl, opensslVerify, peculiarCsr, tempDir } from './ca-fixtures.js';

const quiet = { info: () => {}, warn: () => {} };
const ID = { namespace: 'bookinfo', serviceAccount: 'reviews' };
const URI = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';
const skip = hasOpenssl() ? false : 'openssl is not installed';

async function materialRejects(dir: string, pattern: RegExp): Promise<void> {
  await assert.rejects(loadCacerts(dir), (err: unknown) => {
    assert.ok(err instanceof CaError);
    assert.equal(err.code, 'TRELLIS_CA_MATERIAL_INVALID');
    assert.match(err.message, pattern);
    return true;
  });
}

test('with cacerts (intermediate signed by a root), workloads get leaf, intermediate, root: openssl verifies against the root alone', { skip }, async () => {
  const tmp = tempDir('cacerts');
  try {
    const { rootCert, caCert } = makeCacerts(tmp.dir);
    const logs: string[] = [];
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', caCertDir: tmp.dir, selfSignedDir: join(tmp.dir, 'unused'), logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) } });
    assert.match(logs.join('\n'), /using plugged-in certificates from .*Intermediate CA/);
    const signed = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.equal(signed.certChain.length, 3);
    const [leafPem, interPem, rootPem] = signed.certChain as [string, string, string];
    assert.equal(new X509Certificate(interPem).fingerprint256, new X509Certificate(caCert).fingerprint256);
    assert.equal(new X509Certificate(rootPem).fingerprint256, new X509Certificate(rootCert).fingerprint256);
    const leaf = new X509Certificate(leafPem);
    assert.equal(leaf.subjectAltName, `URI:${URI}`);
    assert.match(leaf.issuer, /Intermediate CA/);
    const [ok, out] = opensslVerify(tmp.dir, leafPem, rootPem, interPem);
    assert.ok(ok, out);
    // Without the intermediate the leaf does not verify: the chain order matters to agents.
    const [alone] = opensslVerify(tmp.dir, leafPem, rootPem);
    assert.equal(alone, false);
    assert.deepEqual(ca.trustBundle().map((p) => new X509Certificate(p).fingerprint256), [new X509Certificate(rootCert).fingerprint256]);
  } finally {
    tmp.remove();
  }
});

test('cacerts with an RSA intermediate key in PKCS#1 ("RSA PRIVATE KEY") and no cert-chain.pem still chains to the root', { skip }, async () => {
  const tmp = tempDir('cacerts-rsa');
  try {
    makeCacerts(tmp.dir, { intermediateKey: ['-newkey', 'rsa:2048'] });
    const pkcs1 = openssl(['rsa', '-in', join(tmp.dir, 'ca-key.pem'), '-traditional']);
    assert.match(pkcs1, /BEGIN RSA PRIVATE KEY/);
    writeFileSync(join(tmp.dir, 'ca-key.pem'), pkcs1);
    rmSync(join(tmp.dir, 'cert-chain.pem'));
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', caCertDir: tmp.dir, logger: quiet });
    const signed = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.equal(signed.certChain.length, 3, 'ca-cert.pem stands in for the chain');
    const [ok, out] = opensslVerify(tmp.dir, signed.certChain[0]!, signed.certChain[2]!, signed.certChain[1]!);
    assert.ok(ok, out);
  } finally {
    tmp.remove();
  }
});

test('a root-cert.pem listing two roots (an operator-managed overlap): both are trusted and follow the signing root in every chain', { skip }, async () => {
  const tmp = tempDir('cacerts-two-roots');
  try {
    const live = join(tmp.dir, 'live');
    const other = join(tmp.dir, 'other');
    mkdirSync(live);
    mkdirSync(other);
    const { rootCert } = makeCacerts(live);
    const { rootCert: otherRoot } = makeCacerts(other, { name: 'Other' });
    writeFileSync(join(live, 'root-cert.pem'), otherRoot + rootCert);
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', caCertDir: live, logger: quiet });
    const fp = (pem: string): string => new X509Certificate(pem).fingerprint256;
    assert.deepEqual(ca.trustBundle().map(fp).sort(), [fp(rootCert), fp(otherRoot)].sort());
    const signed = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.deepEqual(signed.certChain.slice(2).map(fp), [fp(rootCert), fp(otherRoot)], 'the root that signed first, then the other');
  } finally {
    tmp.remove();
  }
});

test('unusable cacerts are refused naming the file: wrong key, not a CA, chain to another root, missing files', { skip }, async () => {
  const tmp = tempDir('cacerts-bad');
  try {
    const good = join(tmp.dir, 'good');
    const other = join(tmp.dir, 'other');
    mkdirSync(good);
    mkdirSync(other);
    makeCacerts(good);
    makeCacerts(other, { name: 'Other' });
    const variant = (name: string, files: Record<string, string>): string => {
      const dir = join(tmp.dir, name);
      mkdirSync(dir);
      for (const f of ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem']) copyFileSync(join(good, f), join(dir, f));
      for (const [f, from] of Object.entries(files)) writeFileSync(join(dir, f), readFileSync(from));
      return dir;
    };
    await materialRejects(variant('wrong-key', { 'ca-key.pem': join(other, 'ca-key.pem') }), /ca-key\.pem: is not the key of .*ca-cert\.pem/);
    await materialRejects(variant('other-root', { 'root-cert.pem': join(other, 'root-cert.pem'), 'cert-chain.pem': join(good, 'ca-cert.pem') }), /root-cert\.pem: no root in it issued .*Trellis test Intermediate CA.*does not verify/);
    // A leaf-like certificate (CA:FALSE) with its own key as ca-cert.pem.
    const leafDir = join(tmp.dir, 'not-ca');
    mkdirSync(leafDir);
    openssl(['req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '1', '-subj', '/CN=not a ca', '-addext', 'basicConstraints=critical,CA:FALSE'], { cwd: leafDir });
    await materialRejects(leafDir, /ca-cert\.pem: is not a CA certificate/);
    const missing = variant('missing-key', {});
    rmSync(join(missing, 'ca-key.pem'));
    await materialRejects(missing, /ca-key\.pem: cannot read/);
    await materialRejects(variant('garbage', { 'ca-cert.pem': join(good, 'ca.csr') }), /ca-cert\.pem: no PEM CERTIFICATE block/);
    const noRoot = variant('no-root', {});
    rmSync(join(noRoot, 'root-cert.pem'));
    await materialRejects(noRoot, /root-cert\.pem: missing, and ca-cert\.pem is not self-signed/);
  } finally {
    tmp.remove();
  }
});

test('an expired plugged-in intermediate is refused at start', { skip }, async () => {
  const tmp = tempDir('cacerts-expired');
  try {
    makeCacerts(tmp.dir);
    // Loaded as if thirty days from now: the intermediate (20 days) has expired by then.
    await assert.rejects(loadCacerts(tmp.dir, 'cacerts', new Date(Date.now() + 25 * 24 * 3600_000)), /expired at/);
  } finally {
    tmp.remove();
  }
});
