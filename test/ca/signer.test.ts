// Workload certificates from the CA: real CSRs (@peculiar/x509 and openssl req), checked with openssl verify and Node's X509Certificate; CSRs that must be refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { CaError } from '../../src/ca/ca-error.js';
import { hasOpenssl, opensslCsr, opensslVerify, peculiarCsr, tempDir } from './ca-fixtures.js';

const quiet = { info: () => {}, warn: () => {} };
const ID = { namespace: 'default', serviceAccount: 'bookinfo-productpage' };
const URI = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
const skipOpenssl = hasOpenssl() ? false : 'openssl is not installed';

async function rejects(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CaError, `expected a CaError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

test('a CSR from @peculiar/x509 gets a leaf with the SPIFFE URI SAN, Istio key usages, back-dated notBefore and a 128-bit serial; openssl verifies it', { skip: skipOpenssl }, async () => {
  const tmp = tempDir('signer');
  try {
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', logger: quiet });
    const before = Date.now();
    const signed = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID, 0);
    assert.equal(signed.certChain.length, 2, 'leaf and root');
    const [leafPem, rootPem] = signed.certChain as [string, string];
    const leaf = new X509Certificate(leafPem);
    const root = new X509Certificate(rootPem);
    assert.equal(leaf.subjectAltName, `URI:${URI}`);
    assert.ok(!leaf.subject, `Istio workload certificates have an empty subject, got ${leaf.subject}`);
    assert.equal(leaf.ca, false);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'extKeyUsage serverAuth, clientAuth');
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey));
    assert.equal(leaf.publicKey.asymmetricKeyType, 'ec');
    // Default TTL 24 h, notBefore one minute back.
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    assert.ok(from <= before - 55_000 && from >= before - 70_000, `notBefore ${leaf.validFrom} is back-dated about a minute`);
    assert.ok(Math.abs(to - before - 24 * 3600_000) < 10_000, `notAfter ${leaf.validTo} is 24 h away`);
    assert.equal(signed.ttlMs, 24 * 3600_000);
    assert.equal(leaf.serialNumber.length, 32, '128-bit serial');
    assert.equal(root.ca, true);
    assert.match(root.subject, /O=cluster\.local/);

    const [ok, out] = opensslVerify(tmp.dir, leafPem, rootPem, '', 'sslclient');
    assert.ok(ok, out);
    const [okServer, outServer] = opensslVerify(tmp.dir, leafPem, rootPem, '', 'sslserver');
    assert.ok(okServer, outServer);
    const text = (await import('./ca-fixtures.js')).openssl(['x509', '-noout', '-text'], { input: leafPem });
    assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(text, /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage/);
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
  } finally {
    tmp.remove();
  }
});

test('a CSR from openssl req (EC P-256 and RSA 2048) is signed: real interop', { skip: skipOpenssl }, async () => {
  const tmp = tempDir('signer-openssl');
  try {
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', logger: quiet });
    for (const keyAlg of ['ec', 'rsa:2048'] as const) {
      const signed = await ca.signWorkload(opensslCsr(tmp.dir, { uri: URI, keyAlg }), ID, 3600);
      const leaf = new X509Certificate(signed.certChain[0]!);
      assert.equal(leaf.subjectAltName, `URI:${URI}`);
      assert.equal(leaf.publicKey.asymmetricKeyType, keyAlg === 'ec' ? 'ec' : 'rsa');
      assert.ok(Math.abs(Date.parse(leaf.validTo) - Date.now() - 3600_000) < 10_000, 'the requested hour');
      const [ok, out] = opensslVerify(tmp.dir, signed.certChain[0]!, signed.certChain[1]!);
      assert.ok(ok, out);
    }
    // A CSR without any SAN is fine too: the CA writes the caller's identity (Istio ignores the CSR's names).
    const bare = await ca.signWorkload(opensslCsr(tmp.dir, {}), ID, 60);
    assert.equal(new X509Certificate(bare.certChain[0]!).subjectAltName, `URI:${URI}`);
  } finally {
    tmp.remove();
  }
});

test('an RSA CA (--ca-key-type rsa) signs with sha256WithRSAEncryption', { skip: skipOpenssl }, async () => {
  const tmp = tempDir('signer-rsa');
  try {
    const ca = await CertificateAuthority.create({ trustDomain: 'example.org', keyType: 'rsa', logger: quiet });
    const signed = await ca.signWorkload(await peculiarCsr({ uris: ['spiffe://example.org/ns/default/sa/bookinfo-productpage'] }), ID);
    const root = new X509Certificate(signed.certChain[1]!);
    assert.equal(root.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(new X509Certificate(signed.certChain[0]!).subjectAltName, 'URI:spiffe://example.org/ns/default/sa/bookinfo-productpage');
    const [ok, out] = opensslVerify(tmp.dir, signed.certChain[0]!, signed.certChain[1]!);
    assert.ok(ok, out);
    assert.match((await import('./ca-fixtures.js')).openssl(['x509', '-noout', '-text'], { input: signed.certChain[0]! }), /Signature Algorithm: sha256WithRSAEncryption/);
  } finally {
    tmp.remove();
  }
});

test('a requested TTL above the maximum is clamped to it; 0 gets the default; nothing outlives the root', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', workloadCertTtlMs: 3600_000, maxWorkloadCertTtlMs: 2 * 3600_000, logger: quiet });
  const csr = await peculiarCsr({ uris: [URI] });
  const clamped = await ca.signWorkload(csr, ID, 365 * 24 * 3600);
  assert.equal(clamped.clamped, true);
  assert.equal(clamped.ttlMs, 2 * 3600_000);
  assert.ok(Math.abs(clamped.leaf.notAfter.getTime() - Date.now() - 2 * 3600_000) < 10_000);
  const byDefault = await ca.signWorkload(csr, ID, 0);
  assert.equal(byDefault.clamped, false);
  assert.equal(byDefault.ttlMs, 3600_000);
  const negative = await ca.signWorkload(csr, ID, -5);
  assert.equal(negative.ttlMs, 3600_000);

  const shortRoot = await CertificateAuthority.create({ trustDomain: 'cluster.local', rootCertTtlMs: 120_000, logger: quiet });
  const capped = await shortRoot.signWorkload(csr, ID, 3600);
  const rootNotAfter = new X509Certificate(capped.certChain[1]!).validTo;
  assert.ok(capped.leaf.notAfter.getTime() <= Date.parse(rootNotAfter), 'the leaf ends no later than its root');
});

test('a CSR for another identity is refused with TRELLIS_CA_IDENTITY_MISMATCH naming what it asked for', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', logger: quiet });
  await rejects(ca.signWorkload(await peculiarCsr({ uris: ['spiffe://cluster.local/ns/default/sa/reviews'] }), ID), 'TRELLIS_CA_IDENTITY_MISMATCH', /asks for uri:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews; the caller may only have spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage/);
  await rejects(ca.signWorkload(await peculiarCsr({ uris: ['spiffe://evil.example/ns/default/sa/bookinfo-productpage'] }), ID), 'TRELLIS_CA_IDENTITY_MISMATCH', /evil\.example/);
  await rejects(ca.signWorkload(await peculiarCsr({ uris: [URI], dns: ['productpage.default.svc'] }), ID), 'TRELLIS_CA_IDENTITY_MISMATCH', /dns:productpage\.default\.svc/);
  await rejects(ca.signWorkload(await peculiarCsr({ uris: [URI, 'spiffe://cluster.local/ns/istio-system/sa/istiod'] }), ID), 'TRELLIS_CA_IDENTITY_MISMATCH', /istiod/);
});

test('malformed CSRs are refused with TRELLIS_CA_CSR_INVALID and the reason', { skip: skipOpenssl }, async () => {
  const tmp = tempDir('signer-bad');
  try {
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', logger: quiet });
    await rejects(ca.signWorkload('', ID), 'TRELLIS_CA_CSR_INVALID', /empty/);
    await rejects(ca.signWorkload('hello', ID), 'TRELLIS_CA_CSR_INVALID', /not a PEM "CERTIFICATE REQUEST"/);
    await rejects(ca.signWorkload('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', ID), 'TRELLIS_CA_CSR_INVALID', /does not parse as PKCS#10/);
    // A signature byte flipped: the CSR parses, its proof of possession does not hold.
    const good = await peculiarCsr({ uris: [URI] });
    const der = Buffer.from(good.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    der[der.length - 3] ^= 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    await rejects(ca.signWorkload(tampered, ID), 'TRELLIS_CA_CSR_INVALID', /signature/);
    // Keys too weak for the mesh.
    await rejects(ca.signWorkload(opensslCsr(tmp.dir, { uri: URI, keyAlg: 'rsa:1024' }), ID), 'TRELLIS_CA_CSR_INVALID', /RSA 1024 is not supported/);
    await rejects(ca.signWorkload('x'.repeat(70_000), ID), 'TRELLIS_CA_CSR_INVALID', /more than 65536/);
  } finally {
    tmp.remove();
  }
});
