// The CA's signing material: a self-signed root generated (and kept) in a directory, or Istio's `cacerts` files loaded and checked.
import { X509Certificate as NodeX509 } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from './x509.js';
import { describeError } from '../common/errors.js';
import { CaError } from './ca-error.js';
import { generateKeyPair, importPrivateKeyPem, privateKeyToPem, type KeyType } from './keys.js';
import { randomSerial, type Issuer } from './signer.js';
import { DEFAULT_ROOT_CERT_TTL_MS } from './defaults.js';

/** Istio's cacerts layout (security/pkg/pki/ca: CACertFile, CAPrivateKeyFile, RootCertFile, CertChainFile). */
export const CACERTS_FILES = {
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  rootCert: 'root-cert.pem',
  certChain: 'cert-chain.pem',
} as const;


export interface CaMaterial {
  readonly issuer: Issuer;
  /** PEM of the signing certificate and intermediates up to (not including) the root; empty when the root signs. */
  readonly chainPems: readonly string[];
  /** The root the chain ends at, PEM. */
  readonly rootPem: string;
  /** Any other roots root-cert.pem lists (an operator-managed overlap), PEM. */
  readonly extraRootPems: readonly string[];
  /** Where the files came from, for logs. */
  readonly dir: string | undefined;
  readonly kind: 'self-signed' | 'cacerts';
}

/** True when `dir` holds at least the signing certificate and key of the cacerts layout. */
export function hasCacerts(dir: string): boolean {
  return existsSync(join(dir, CACERTS_FILES.caCert)) && existsSync(join(dir, CACERTS_FILES.caKey));
}

/** Splits a PEM bundle into its CERTIFICATE blocks (normalized, one trailing newline each). */
export function splitPemCertificates(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
}

function fail(file: string, reason: string): never {
  throw new CaError('TRELLIS_CA_MATERIAL_INVALID', `${file}: ${reason}`);
}

function readRequired(dir: string, name: string): string {
  const file = join(dir, name);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return fail(file, `cannot read: ${describeError(err)}`);
  }
}

function parseCertificates(file: string, text: string): NodeX509[] {
  const pems = splitPemCertificates(text);
  if (pems.length === 0) fail(file, 'no PEM CERTIFICATE block');
  return pems.map((pem, i) => {
    try {
      return new NodeX509(pem);
    } catch (err) {
      return fail(file, `certificate ${i + 1} does not parse: ${describeError(err)}`);
    }
  });
}

function isSelfSigned(cert: NodeX509): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

function issuedBy(child: NodeX509, parent: NodeX509): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/**
 * Loads Istio's cacerts files from `dir` and checks what Istio's NewVerifiedKeyCertBundleFromFile checks, and a
 * little more: the key is the certificate's, the certificate is a CA, the chain (cert-chain.pem, optional)
 * verifies up to a root of root-cert.pem, nothing is expired. Throws CaError TRELLIS_CA_MATERIAL_INVALID naming the file.
 */
export async function loadCacerts(dir: string, kind: CaMaterial['kind'] = 'cacerts', now: Date = new Date()): Promise<CaMaterial> {
  const caCertFile = join(dir, CACERTS_FILES.caCert);
  const caKeyFile = join(dir, CACERTS_FILES.caKey);
  const rootFile = join(dir, CACERTS_FILES.rootCert);
  const chainFile = join(dir, CACERTS_FILES.certChain);
  const caCertText = readRequired(dir, CACERTS_FILES.caCert);
  const [signing] = parseCertificates(caCertFile, caCertText) as [NodeX509];
  const keyPem = readRequired(dir, CACERTS_FILES.caKey);
  let key: Awaited<ReturnType<typeof importPrivateKeyPem>>;
  try {
    key = await importPrivateKeyPem(keyPem);
  } catch (err) {
    return fail(caKeyFile, `not a usable private key: ${describeError(err)}`);
  }
  if (!signing.checkPrivateKey(key.keyObject)) fail(caKeyFile, `is not the key of ${caCertFile} (${signing.subject.replace(/\n/g, ', ')})`);
  if (!signing.ca) fail(caCertFile, 'is not a CA certificate (basicConstraints CA:TRUE missing): it may not sign other certificates');

  const roots = existsSync(rootFile) ? parseCertificates(rootFile, readFileSync(rootFile, 'utf8')) : isSelfSigned(signing) ? [signing] : fail(rootFile, 'missing, and ca-cert.pem is not self-signed');
  for (const root of roots) if (!isSelfSigned(root)) fail(rootFile, `${root.subject.replace(/\n/g, ', ')} is not a self-signed root`);

  // The chain as sent to workloads: the signing certificate, then intermediates, without any root.
  const chain: NodeX509[] = [signing];
  if (existsSync(chainFile)) {
    const listed = parseCertificates(chainFile, readFileSync(chainFile, 'utf8'));
    for (const cert of listed) {
      if (cert.fingerprint256 === signing.fingerprint256 || isSelfSigned(cert)) continue;
      chain.push(cert);
    }
  }
  if (isSelfSigned(signing)) chain.length = 0;
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!issuedBy(chain[i]!, chain[i + 1]!)) fail(chainFile, `${chain[i]!.subject.replace(/\n/g, ', ')} is not issued by the next certificate, ${chain[i + 1]!.subject.replace(/\n/g, ', ')}`);
  }
  const top = chain.length > 0 ? chain[chain.length - 1]! : signing;
  const root = roots.find((r) => (chain.length === 0 ? r.fingerprint256 === signing.fingerprint256 : issuedBy(top, r)));
  if (!root) fail(rootFile, `no root in it issued ${top.subject.replace(/\n/g, ', ')}: the chain does not verify to root-cert.pem`);
  for (const cert of [...chain, root, signing]) {
    if (new Date(cert.validTo).getTime() <= now.getTime()) fail(cert === root ? rootFile : caCertFile, `${cert.subject.replace(/\n/g, ', ')} expired at ${cert.validTo}`);
  }

  return {
    issuer: { cert: new x509.X509Certificate(signing.raw), key: key.privateKey, signingAlgorithm: key.signingAlgorithm },
    chainPems: chain.map((c) => c.toString()),
    rootPem: root.toString(),
    extraRootPems: roots.filter((r) => r !== root).map((r) => r.toString()),
    dir,
    kind,
  };
}

export interface SelfSignedRootOptions {
  readonly trustDomain: string;
  readonly keyType: KeyType;
  readonly ttlMs?: number;
  readonly now?: Date;
}

/** A new self-signed root: O=<trust domain> as Istio's, a CN naming when it was made (rotated roots stay tellable apart). */
export async function createSelfSignedRoot(options: SelfSignedRootOptions): Promise<{ certPem: string; keyPem: string }> {
  const now = options.now ?? new Date();
  const keys = await generateKeyPair(options.keyType);
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [`Trellis root CA ${stamp}`] }, { O: [options.trustDomain] }],
    // A little back-dated, like workload certificates, for peers whose clock is behind.
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (options.ttlMs ?? DEFAULT_ROOT_CERT_TTL_MS)),
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: keys.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: `${await privateKeyToPem(keys.privateKey)}\n` };
}

/** Writes a file atomically (temporary file, then rename), with `mode`. */
export function writeFileAtomic(file: string, content: string, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

/** Writes a self-signed root into `dir` in the cacerts layout (ca-cert.pem = root-cert.pem, ca-key.pem 0600). */
export function writeSelfSignedRoot(dir: string, root: { certPem: string; keyPem: string }): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(dir, CACERTS_FILES.caKey), root.keyPem, 0o600);
  writeFileAtomic(join(dir, CACERTS_FILES.caCert), root.certPem);
  writeFileAtomic(join(dir, CACERTS_FILES.rootCert), root.certPem);
}

/**
 * The self-signed CA of `dir`: loaded when the directory already holds one (so a restart keeps the root),
 * otherwise generated and written there. Without a directory the root lives in memory only.
 */
export async function loadOrCreateSelfSigned(dir: string | undefined, options: SelfSignedRootOptions): Promise<{ material: CaMaterial; created: boolean }> {
  if (dir && hasCacerts(dir)) return { material: await loadCacerts(dir, 'self-signed', options.now), created: false };
  const root = await createSelfSignedRoot(options);
  if (dir) {
    writeSelfSignedRoot(dir, root);
    return { material: await loadCacerts(dir, 'self-signed', options.now), created: true };
  }
  return { material: await materialFromSelfSignedPem(root), created: true };
}

/** Signing material held in memory only, from a root made by createSelfSignedRoot. */
export async function materialFromSelfSignedPem(root: { certPem: string; keyPem: string }): Promise<CaMaterial> {
  const key = await importPrivateKeyPem(root.keyPem);
  return {
    issuer: { cert: new x509.X509Certificate(root.certPem), key: key.privateKey, signingAlgorithm: key.signingAlgorithm },
    chainPems: [],
    rootPem: root.certPem,
    extraRootPems: [],
    dir: undefined,
    kind: 'self-signed',
  };
}
