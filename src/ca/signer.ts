// Issues X.509 certificates: workload leaves from a CSR (SPIFFE URI SAN of the authenticated identity, Istio's key usages) and the control plane's serving certificate.
import { createPublicKey, randomBytes } from 'node:crypto';
import * as x509 from './x509.js';
import { describeError } from '../common/errors.js';
import { CaError } from './ca-error.js';
import { describeKey, type CryptoKey, type SigningAlgorithm } from './keys.js';

/** The certificate and key that sign (a self-signed root, or an intermediate from cacerts). */
export interface Issuer {
  readonly cert: x509.X509Certificate;
  readonly key: CryptoKey;
  readonly signingAlgorithm: SigningAlgorithm;
}

export interface LeafSpec {
  readonly publicKey: x509.PublicKey | CryptoKey;
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  readonly ttlMs: number;
  readonly now?: Date;
}

/** Back-dating of notBefore, so a peer whose clock runs a little behind accepts a certificate issued just now. */
export const CLOCK_SKEW_MS = 60_000;

/** A random positive 128-bit serial (RFC 5280 allows up to 20 octets): top bit cleared keeps it positive, the next set keeps it 16 octets long. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/**
 * Signs a leaf for `spec` with `issuer`: empty subject with a critical SAN (RFC 5280 §4.2.1.6, as Istio's
 * workload certificates), keyUsage digitalSignature+keyEncipherment (critical), extKeyUsage serverAuth+clientAuth,
 * CA:false, authority/subject key identifiers. notAfter never passes the issuer's own notAfter (Istio's minTTL).
 */
export async function issueLeaf(issuer: Issuer, spec: LeafSpec): Promise<x509.X509Certificate> {
  const now = spec.now ?? new Date();
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(Math.min(now.getTime() + spec.ttlMs, issuer.cert.notAfter.getTime()));
  const names: x509.JsonGeneralName[] = [
    ...(spec.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(spec.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    issuer: issuer.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: spec.publicKey,
    signingKey: issuer.key,
    signingAlgorithm: issuer.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names, true),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(spec.publicKey),
    ],
  });
}

/** A CSR that parsed and whose signature holds. */
export interface CheckedCsr {
  readonly publicKey: x509.PublicKey;
  /** The SANs the CSR asks for, as `uri:…`, `dns:…`, `ip:…`, `email:…`. */
  readonly requestedSans: readonly string[];
  readonly subject: string;
}

const MAX_CSR_BYTES = 64 * 1024;

/** Parses and checks a PEM CSR; throws CaError TRELLIS_CA_CSR_INVALID with the reason. */
export async function checkCsr(pem: string): Promise<CheckedCsr> {
  if (typeof pem !== 'string' || pem.trim() === '') throw new CaError('TRELLIS_CA_CSR_INVALID', 'csr is empty');
  if (pem.length > MAX_CSR_BYTES) throw new CaError('TRELLIS_CA_CSR_INVALID', `csr is ${pem.length} bytes, more than ${MAX_CSR_BYTES}`);
  if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem)) throw new CaError('TRELLIS_CA_CSR_INVALID', 'csr is not a PEM "CERTIFICATE REQUEST"');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem.replace(/NEW CERTIFICATE REQUEST/g, 'CERTIFICATE REQUEST'));
  } catch (err) {
    throw new CaError('TRELLIS_CA_CSR_INVALID', `csr does not parse as PKCS#10: ${describeError(err)}`);
  }
  let keyDescription: string;
  try {
    const key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
    keyDescription = describeKey(key);
    const details = key.asymmetricKeyDetails ?? {};
    const ok = (key.asymmetricKeyType === 'ec' && (details.namedCurve === 'prime256v1' || details.namedCurve === 'secp384r1')) || (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048);
    if (!ok) throw new CaError('TRELLIS_CA_CSR_INVALID', `csr key ${keyDescription} is not supported (ECDSA P-256/P-384 or RSA of 2048 bits or more)`);
  } catch (err) {
    if (err instanceof CaError) throw err;
    throw new CaError('TRELLIS_CA_CSR_INVALID', `csr public key is unreadable: ${describeError(err)}`);
  }
  let valid: boolean;
  try {
    valid = await csr.verify();
  } catch (err) {
    throw new CaError('TRELLIS_CA_CSR_INVALID', `csr signature cannot be checked: ${describeError(err)}`);
  }
  if (!valid) throw new CaError('TRELLIS_CA_CSR_INVALID', 'csr signature does not match its public key');
  const requestedSans: string[] = [];
  try {
    for (const ext of csr.extensions) {
      if (!(ext instanceof x509.SubjectAlternativeNameExtension)) continue;
      for (const name of ext.names.items) requestedSans.push(`${name.type === 'url' ? 'uri' : name.type}:${name.value}`);
    }
  } catch (err) {
    throw new CaError('TRELLIS_CA_CSR_INVALID', `csr subjectAltName extension does not parse: ${describeError(err)}`);
  }
  return { publicKey: csr.publicKey, requestedSans, subject: csr.subject };
}

/**
 * Why the CSR may not be signed for `allowedUri`, or undefined. Istio signs the caller's identity whatever the
 * CSR says; Trellis refuses a CSR that asks for any other name, so a confused or malicious agent is noticed.
 */
export function csrIdentityProblem(csr: CheckedCsr, allowedUri: string): string | undefined {
  const others = csr.requestedSans.filter((san) => san !== `uri:${allowedUri}`);
  if (others.length === 0) return undefined;
  return `csr asks for ${others.join(', ')}; the caller may only have ${allowedUri}`;
}
