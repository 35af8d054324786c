// Plugged-in cacerts replaced on disk while the CA runs: taken up without a restart (the old root kept for the overlap); broken files are logged and ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { watchCacerts } from '../../src/ca/cacerts-watcher.js';
import { hasOpenssl, makeCacerts, peculiarCsr, tempDir } from './ca-fixtures.js';

const URI = 'spiffe://cluster.local/ns/default/sa/ratings';
const ID = { namespace: 'default', serviceAccount: 'ratings' };
const fp = (pem: string): string => new X509Certificate(pem).fingerprint256;

/** Resolves when `check` holds, polling; the ref'd timer keeps the test alive while the CA's own timers are unref'd. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('new cacerts files are loaded after they settle; broken ones are refused with a warning and the current ones keep signing', { skip: hasOpenssl() ? false : 'openssl is not installed' }, async () => {
  const tmp = tempDir('watch');
  const logs: string[] = [];
  const logger = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m) };
  const live = join(tmp.dir, 'cacerts');
  const staged = join(tmp.dir, 'next');
  mkdirSync(live);
  mkdirSync(staged);
  const first = makeCacerts(live, { name: 'First' });
  const second = makeCacerts(staged, { name: 'Second' });
  const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local', caCertDir: live, rootRotationOverlapMs: 60_000, logger });
  const watcher = watchCacerts(ca, live, logger, 200);
  try {
    for (const f of ['ca-key.pem', 'ca-cert.pem', 'cert-chain.pem', 'root-cert.pem']) copyFileSync(join(staged, f), join(live, f));
    await until(() => fp(ca.signingMaterial().rootPem) === fp(second.rootCert), 'the new cacerts');
    assert.deepEqual(ca.trustBundle().map(fp), [fp(second.rootCert), fp(first.rootCert)], 'the first root stays trusted for the overlap');
    const signed = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.match(new X509Certificate(signed.certChain[0]!).issuer, /Second Intermediate CA/);
    assert.match(logs.join('\n'), /root rotated from .*First Root CA.* to .*Second Root CA/);

    // A key that is not the certificate's: refused, logged, the Second intermediate keeps signing.
    const seen = logs.length;
    writeFileSync(join(live, 'ca-key.pem'), '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n');
    await until(() => /changed but cannot be used/.test(logs.slice(seen).join('\n')), 'the warning');
    assert.match(logs.slice(seen).join('\n'), /cacerts changed but cannot be used, the current certificates keep signing: .*ca-key\.pem: not a usable private key/);
    const still = await ca.signWorkload(await peculiarCsr({ uris: [URI] }), ID);
    assert.match(new X509Certificate(still.certChain[0]!).issuer, /Second Intermediate CA/);
  } finally {
    watcher.close();
    ca.close();
    tmp.remove();
  }
});
