// `trellis control` with the CA flags as a process: the secure port announced, the root written out, tokens from a file, cacerts plugged in, bad flags and bad cacerts refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCertificate } from '../../src/ca/ca-client.js';
import { hasOpenssl, makeCacerts, opensslVerify, peculiarCsr, tempDir } from './ca-fixtures.js';

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'reviews-token-0123456789abcdef';
const skip = hasOpenssl() ? false : 'openssl is not installed';

test('trellis control --secure-xds-address --ca-cert-dir --ca-token-file --trust-domain: signs with the plugged-in intermediate for the token\'s identity', { skip }, async (t) => {
  const tmp = tempDir('cli');
  const configDir = join(tmp.dir, 'config');
  const cacerts = join(tmp.dir, 'cacerts');
  mkdirSync(configDir);
  mkdirSync(cacerts);
  const { rootCert } = makeCacerts(cacerts);
  writeFileSync(join(tmp.dir, 'tokens'), `${TOKEN} bookinfo reviews\n`);
  const rootOut = join(tmp.dir, 'root.pem');
  const child = spawn(process.execPath, [bin, 'control', '--config-dir', configDir, '--xds-address', '127.0.0.1:0', '--monitoring-address', '127.0.0.1:0',
    '--secure-xds-address', '127.0.0.1:0', '--ca-cert-dir', cacerts, '--ca-dir', join(tmp.dir, 'ca'), '--ca-token-file', join(tmp.dir, 'tokens'),
    '--trust-domain', 'example.org', '--workload-cert-ttl', '2h', '--max-workload-cert-ttl', '1d', '--ca-root-out', rootOut], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    tmp.remove();
  });
  for (let i = 0; i < 400 && !/monitoring port \d+/.test(stdout) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 25));
  const port = /^secure xds port (\d+)$/m.exec(stdout)?.[1];
  assert.ok(port, `no secure xds port announced; stdout:\n${stdout}\nstderr:\n${stderr}`);
  assert.match(stderr, /CA: using plugged-in certificates from/);
  assert.equal(new X509Certificate(readFileSync(rootOut, 'utf8')).fingerprint256, new X509Certificate(rootCert).fingerprint256, '--ca-root-out holds the plugged-in root');

  const chain = await createCertificate(`127.0.0.1:${port}`, { csr: await peculiarCsr({ uris: ['spiffe://example.org/ns/bookinfo/sa/reviews'] }), token: TOKEN, rootCertPem: readFileSync(rootOut, 'utf8') });
  assert.equal(chain.length, 3, 'leaf, intermediate, root');
  const leaf = new X509Certificate(chain[0]!);
  assert.equal(leaf.subjectAltName, 'URI:spiffe://example.org/ns/bookinfo/sa/reviews');
  assert.ok(Math.abs(Date.parse(leaf.validTo) - Date.now() - 2 * 3600_000) < 10_000, '--workload-cert-ttl 2h');
  const [ok, out] = opensslVerify(tmp.dir, chain[0]!, chain[2]!, chain[1]!);
  assert.ok(ok, out);
  const clamped = await createCertificate(`127.0.0.1:${port}`, { csr: await peculiarCsr(), token: TOKEN, rootCertPem: readFileSync(rootOut, 'utf8'), validitySeconds: 7 * 24 * 3600 });
  assert.ok(Math.abs(Date.parse(new X509Certificate(clamped[0]!).validTo) - Date.now() - 24 * 3600_000) < 10_000, '--max-workload-cert-ttl 1d');

  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
  assert.equal(code, 0, `exit code after SIGTERM; stderr:\n${stderr}`);
});

test('trellis control refuses a bad --ca-key-type, a bad TTL, and cacerts whose key is not the certificate\'s (exit 1, the file named)', { skip }, () => {
  const tmp = tempDir('cli-bad');
  try {
    const keyType = spawnSync(process.execPath, [bin, 'control', '--config-dir', tmp.dir, '--ca-key-type', 'dsa'], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(keyType.status, 0);
    assert.match(keyType.stderr, /--ca-key-type <type>' argument 'dsa' is invalid\. Allowed choices are ecdsa, rsa/);
    const ttl = spawnSync(process.execPath, [bin, 'control', '--config-dir', tmp.dir, '--max-workload-cert-ttl', 'forever'], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(ttl.status, 0);
    assert.match(ttl.stderr, /expected a duration like 100ms or 10s, got "forever"/);

    const good = join(tmp.dir, 'good');
    const other = join(tmp.dir, 'other');
    mkdirSync(good);
    mkdirSync(other);
    makeCacerts(good);
    makeCacerts(other, { name: 'Other' });
    copyFileSync(join(other, 'ca-key.pem'), join(good, 'ca-key.pem'));
    const config = join(tmp.dir, 'config');
    mkdirSync(config);
    const bad = spawnSync(process.execPath, [bin, 'control', '--config-dir', config, '--xds-address', '127.0.0.1:0', '--monitoring-address', '127.0.0.1:0', '--secure-xds-address', '127.0.0.1:0', '--ca-cert-dir', good, '--ca-dir', join(tmp.dir, 'ca')], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /control plane failed to start: .*ca-key\.pem: is not the key of .*ca-cert\.pem/);
  } finally {
    tmp.remove();
  }
});
