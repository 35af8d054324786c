// The self-signed root survives restarts; a root rotation keeps the old root trusted for the overlap, signs with the new one, then drops the old.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { splitPemCertificates } from '../../src/ca/ca-material.js';
import { hasOpenssl, makeCacerts, opensslVerify, peculiarCsr, tempDir } from './ca-fixtures.js';

const quiet = { info: () => {}, warn: () => {} };
const ID = { namespace: 'default', serviceAccount: 'ratings' };
const URI = 'spiffe://cluster.local/ns/default/sa/ratings';
const fp = (pem: string): string => new X509Certificate(pem).fingerprint256;

test('the self-signed root is written to its directory (key 0600) and loaded again after a restart', async () => {
  const tmp = tempDir('persist');
  try {
    const dir = join(tmp.dir, 'ca');
    const first = await CertificateAuthority.create({ trustDomain: 'cluster.local', selfSignedDir: dir, logger: quiet });
    const root = first.trustBundle()[0]!;
    assert.equal(fp(readFileSync(join(dir, 'ca-cert.pem'), 'utf8')), fp(root));
    assert.equal(fp(readFileSync(join(dir, 'root-cert.pem'), 'utf8')), fp(root));
    assert.equal(statSync(join(dir, 'ca-key.pem')).mode & 0o777, 0o600);
    first.close();
    const logs: string[] = [];
    const second = await CertificateAuthority.create({ trustDomain: 'cluster.local', selfSignedDir: dir, logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) } });
    assert.equal(fp(second.trustBundle()[0]!), fp(root), 'same root after a restart');
    assert.match(logs.join('\n'), /loaded self-signed root/);
    // And it still signs: a leaf from the restarted CA verifies against the root written the first time.
    const signed = await second.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.ok(new X509Certificate(signed.certChain[0]!).verify(new X509Certificate(root).publicKey));
    second.close();
  } finally {
    tmp.remove();
  }
});

test('root rotation: both roots trusted during the overlap (chain: leaf, new root, old root), old-root leaves still verify, then the old root is dropped', { skip: hasOpenssl() ? false : 'openssl is not installed' }, async () => {
  const tmp = tempDir('rotate');
  let now = Date.now();
  try {
    const dir = join(tmp.dir, 'ca');
    const rootOut = join(tmp.dir, 'trust-bundle.pem');
    const changes: number[] = [];
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', selfSignedDir: dir, rootCertOut: rootOut, rootRotationOverlapMs: 3600_000, logger: quiet, now: () => now });
    ca.onChange(() => changes.push(ca.trustBundle().length));
    const oldRoot = ca.trustBundle()[0]!;
    assert.equal(fp(readFileSync(rootOut, 'utf8')), fp(oldRoot));
    const before = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);

    await ca.rotateRoot();
    const bundle = ca.trustBundle();
    assert.equal(bundle.length, 2);
    const newRoot = bundle[0]!;
    assert.notEqual(fp(newRoot), fp(oldRoot));
    assert.equal(fp(bundle[1]!), fp(oldRoot));
    assert.deepEqual(splitPemCertificates(readFileSync(rootOut, 'utf8')).map(fp), [fp(newRoot), fp(oldRoot)], 'the root file holds both');
    assert.equal(fp(readFileSync(join(dir, 'ca-cert.pem'), 'utf8')), fp(newRoot), 'the new root is kept for restarts');
    assert.deepEqual(changes, [2]);

    const after = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.equal(after.certChain.length, 3);
    assert.equal(fp(after.certChain[1]!), fp(newRoot), 'signed by the new root, which follows the leaf');
    assert.equal(fp(after.certChain[2]!), fp(oldRoot), 'the other trusted root comes last');
    const bundlePem = bundle.join('');
    for (const [name, leaf] of [['new-root leaf', after.certChain[0]!], ['old-root leaf', before.certChain[0]!]] as const) {
      const [ok, out] = opensslVerify(tmp.dir, leaf, bundlePem);
      assert.ok(ok, `${name} verifies against the overlap bundle: ${out}`);
    }

    // A restart during the overlap keeps both roots.
    const restarted = await CertificateAuthority.create({ trustDomain: 'cluster.local', selfSignedDir: dir, logger: quiet, now: () => now });
    assert.deepEqual(restarted.trustBundle().map(fp), [fp(newRoot), fp(oldRoot)]);
    restarted.close();

    // The overlap ends: only the new root is trusted, and old-root leaves no longer verify.
    now += 3600_000 + 1;
    assert.deepEqual(ca.trustBundle().map(fp), [fp(newRoot)]);
    const later = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.equal(later.certChain.length, 2);
    const [oldOk] = opensslVerify(tmp.dir, before.certChain[0]!, ca.rootCertPem());
    assert.equal(oldOk, false, 'an old-root leaf is not trusted after the overlap');
    ca.close();
  } finally {
    tmp.remove();
  }
});

test('the end of the overlap is acted on by a timer: the root file is rewritten without a signing request', async () => {
  const tmp = tempDir('rotate-timer');
  try {
    const rootOut = join(tmp.dir, 'bundle.pem');
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', rootCertOut: rootOut, logger: quiet });
    await ca.rotateRoot({ overlapMs: 300 });
    assert.equal(splitPemCertificates(readFileSync(rootOut, 'utf8')).length, 2);
    // The CA's timer is unref'd (it must not keep a control plane alive); this one keeps the test's loop running, bounded.
    let guard: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => (guard = setTimeout(() => reject(new Error('the overlap did not end within 5 s')), 5_000)));
    await Promise.race([new Promise<void>((resolve) => ca.onChange(resolve)), timedOut]);
    clearTimeout(guard);
    assert.equal(splitPemCertificates(readFileSync(rootOut, 'utf8')).length, 1);
    ca.close();
  } finally {
    tmp.remove();
  }
});

test('rotating to plugged-in cacerts: the self-signed root stays trusted for the overlap beside the new root', { skip: hasOpenssl() ? false : 'openssl is not installed' }, async () => {
  const tmp = tempDir('rotate-cacerts');
  try {
    const cacerts = join(tmp.dir, 'cacerts');
    (await import('node:fs')).mkdirSync(cacerts);
    const { rootCert } = makeCacerts(cacerts);
    const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', logger: quiet });
    const selfSigned = ca.trustBundle()[0]!;
    await ca.rotateRoot({ caCertDir: cacerts, overlapMs: 60_000 });
    assert.deepEqual(ca.trustBundle().map(fp), [fp(rootCert), fp(selfSigned)]);
    const signed = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.equal(signed.certChain.length, 4, 'leaf, intermediate, new root, old root');
    assert.match(new X509Certificate(signed.certChain[0]!).issuer, /Intermediate CA/);
    assert.ok(!existsSync(join(cacerts, 'retired-roots.json')), 'nothing is written into an operator\'s cacerts directory');
    ca.close();
  } finally {
    tmp.remove();
  }
});

test('a self-signed root with less than 20% of its life left is rotated by the root rotator (Istio\'s SelfSignedCARootCertRotator); plugged-in roots are not', async () => {
  const { startRootRotator } = await import('../../src/ca/root-rotator.js');
  let now = Date.now();
  const logs: string[] = [];
  const logger = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m) };
  // A 100-minute root, back-dated one minute at creation: 20% is 20 minutes.
  const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', rootCertTtlMs: 99 * 60_000, logger, now: () => now });
  const rotator = startRootRotator(ca, { logger, now: () => now, checkIntervalMs: 3600_000 });
  try {
    const first = ca.trustBundle()[0]!;
    now += 70 * 60_000;
    assert.equal(await rotator.check(), false, '29 minutes left of 100: not yet');
    assert.equal(ca.trustBundle().length, 1);
    now += 10 * 60_000;
    assert.equal(await rotator.check(), true, '19 minutes left: rotate');
    assert.deepEqual(ca.trustBundle().map(fp), [fp(ca.signingMaterial().rootPem), fp(first)]);
    assert.notEqual(fp(ca.signingMaterial().rootPem), fp(first));
    assert.match(logs.join('\n'), /less than 20% of its life left\): rotating it/);
    assert.equal(await rotator.check(), false, 'the new root is young');
  } finally {
    rotator.close();
    ca.close();
  }
  if (!hasOpenssl()) return;
  const tmp = tempDir('rotator-cacerts');
  try {
    makeCacerts(tmp.dir);
    let later = Date.now();
    const plugged = await CertificateAuthority.create({ trustDomain: 'cluster.local', caCertDir: tmp.dir, logger, now: () => later });
    const pluggedRotator = startRootRotator(plugged, { logger, now: () => later });
    later += 29 * 24 * 3600_000;
    assert.equal(await pluggedRotator.check(), false, 'a cacerts root one day from expiry is the operator\'s to replace');
    pluggedRotator.close();
    plugged.close();
  } finally {
    tmp.remove();
  }
});
