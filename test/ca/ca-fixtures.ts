// Helpers for the CA tests: temporary directories, openssl, and CSRs made the two ways agents make them (@peculiar/x509 and `openssl req`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '../../src/ca/x509.js';
import { generateKeyPair, privateKeyToPem, type KeyType } from '../../src/ca/keys.js';

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `trellis-ca-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function hasOpenssl(): boolean {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

/** Runs openssl; throws with its stderr when it fails. */
export function openssl(args: readonly string[], options: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8', cwd: options.cwd, input: options.input });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** `openssl verify` of a leaf against roots (and untrusted intermediates); returns [ok, output]. */
export function opensslVerify(dir: string, leafPem: string, rootsPem: string, intermediatesPem = '', purpose = 'sslclient'): [boolean, string] {
  const leaf = join(dir, 'verify-leaf.pem');
  const roots = join(dir, 'verify-roots.pem');
  writeFileSync(leaf, leafPem);
  writeFileSync(roots, rootsPem);
  const args = ['verify', '-CAfile', roots, '-purpose', purpose];
  if (intermediatesPem) {
    const inter = join(dir, 'verify-intermediates.pem');
    writeFileSync(inter, intermediatesPem);
    args.push('-untrusted', inter);
  }
  args.push(leaf);
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return [r.status === 0, `${r.stdout}${r.stderr}`];
}

/** A CSR made with @peculiar/x509 asking for `uris` (and `dns`) in its SAN extension. */
export async function peculiarCsr(options: { uris?: string[]; dns?: string[]; keyType?: KeyType; subject?: string } = {}): Promise<string> {
  return (await peculiarCsrWithKey(options)).csr;
}

/** peculiarCsr, with the private key (PKCS#8 PEM) for presenting the issued certificate later. */
export async function peculiarCsrWithKey(options: { uris?: string[]; dns?: string[]; keyType?: KeyType; subject?: string } = {}): Promise<{ csr: string; keyPem: string }> {
  const keys = await generateKeyPair(options.keyType ?? 'ecdsa');
  const names: x509.JsonGeneralName[] = [...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })), ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: keys.signingAlgorithm,
    ...(options.subject ? { name: options.subject } : {}),
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return { csr: csr.toString('pem'), keyPem: await privateKeyToPem(keys.privateKey) };
}

/** A CSR made by `openssl req` with a URI SAN; `keyAlg` as openssl's -newkey takes it (`ec` with P-256, or `rsa:2048`). */
export function opensslCsr(dir: string, options: { uri?: string; keyAlg?: 'ec' | 'rsa:2048' | 'rsa:1024'; subject?: string }): string {
  const key = join(dir, `csr-key-${Math.random().toString(36).slice(2)}.pem`);
  const args = ['req', '-new', '-nodes', '-keyout', key, '-subj', options.subject ?? '/O=Trellis test'];
  if ((options.keyAlg ?? 'ec') === 'ec') args.push('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256');
  else args.push('-newkey', options.keyAlg!);
  if (options.uri) args.push('-addext', `subjectAltName=URI:${options.uri}`);
  return openssl(args);
}

/**
 * Istio's cacerts layout made with openssl, as Istio's "Plug in CA certificates" task does: a root, an
 * intermediate it signs (ca-cert.pem, ca-key.pem), root-cert.pem, cert-chain.pem = intermediate + root.
 */
export function makeCacerts(dir: string, options: { rootKey?: string[]; intermediateKey?: string[]; name?: string } = {}): { rootCert: string; caCert: string } {
  const name = options.name ?? 'Trellis test';
  const rootKey = options.rootKey ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const interKey = options.intermediateKey ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  writeFileSync(join(dir, 'root.cnf'), ['[req]', 'distinguished_name=dn', '[dn]', '[ext]', 'basicConstraints=critical,CA:true', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature', 'subjectKeyIdentifier=hash', ''].join('\n'));
  writeFileSync(join(dir, 'inter.cnf'), ['[ext]', 'basicConstraints=critical,CA:true,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid:always', ''].join('\n'));
  openssl(['req', '-x509', '-new', '-nodes', ...rootKey, '-keyout', 'root-key.pem', '-out', 'root-cert.pem', '-days', '30', '-subj', `/O=${name}/CN=${name} Root CA`, '-config', 'root.cnf', '-extensions', 'ext'], { cwd: dir });
  openssl(['req', '-new', '-nodes', ...interKey, '-keyout', 'ca-key.pem', '-out', 'ca.csr', '-subj', `/O=${name}/CN=${name} Intermediate CA`], { cwd: dir });
  openssl(['x509', '-req', '-in', 'ca.csr', '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-CAcreateserial', '-out', 'ca-cert.pem', '-days', '20', '-extfile', 'inter.cnf', '-extensions', 'ext'], { cwd: dir });
  const rootCert = readFileSync(join(dir, 'root-cert.pem'), 'utf8');
  const caCert = readFileSync(join(dir, 'ca-cert.pem'), 'utf8');
  writeFileSync(join(dir, 'cert-chain.pem'), caCert + rootCert);
  return { rootCert, caCert };
}

