// The workload's key pair and certificate signing request: the SPIFFE identity as a URI SAN, ECDSA P-256 by default (RSA optional), as istio-agent generates them.
// @peculiar/x509 resolves its ASN.1 types through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** `ECDSA` (P-256, Istio's default for new meshes) or `RSA` (2048 bits, Istio's default key size). */
export type WorkloadKeyType = 'ECDSA' | 'RSA';

export interface WorkloadIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface WorkloadKeyAndCsr {
  /** PKCS#8 PEM; what the SDS `default` secret carries as private_key. */
  readonly privateKeyPem: string;
  /** PKCS#10 PEM; what IstioCertificateRequest.csr carries. */
  readonly csrPem: string;
}

const crypto = webcrypto;

/** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`, Istio's workload identity. */
export function spiffeId(identity: WorkloadIdentity): string {
  return `spiffe://${identity.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
}

const ALGORITHMS: Record<WorkloadKeyType, { generate: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams; sign: webcrypto.Algorithm | webcrypto.EcdsaParams }> = {
  ECDSA: { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams },
  RSA: {
    generate: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
  },
};

/** A fresh key pair and a CSR for `identity`; a new key on every rotation, as istio-agent does. */
export async function createWorkloadCsr(identity: WorkloadIdentity, keyType: WorkloadKeyType = 'ECDSA'): Promise<WorkloadKeyAndCsr> {
  const algorithm = ALGORITHMS[keyType];
  const keys = (await crypto.subtle.generateKey(algorithm.generate, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  // The subject stays empty (Istio's default Org is ""), so the SAN carries the identity and is critical (RFC 5280 4.2.1.6).
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      keys,
      signingAlgorithm: algorithm.sign,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId(identity) }], true)],
    },
    crypto,
  );
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), csrPem: csr.toString('pem') };
}
