// Key pairs for the CA and its workloads: ECDSA P-256 by default, RSA 2048 optional, as WebCrypto keys (what @peculiar/x509 signs with) and PEM.
import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';

export type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import * as x509 from './x509.js';

export type KeyType = 'ecdsa' | 'rsa';

export const KEY_TYPES: readonly KeyType[] = ['ecdsa', 'rsa'];

/** The algorithm a WebCrypto key of this kind signs with, as @peculiar/x509 expects it (key algorithm + hash). */
export type SigningAlgorithm = { readonly name: string; readonly hash: string };

export interface CaKeyPair {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly signingAlgorithm: SigningAlgorithm;
}

const RSA_PARAMS = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;

/** Generates an extractable key pair: ECDSA P-256 (Istio's ECC default curve) or RSA 2048 (Istio's rsaKeySize). */
export async function generateKeyPair(type: KeyType): Promise<CaKeyPair> {
  const subtle = webcrypto.subtle;
  if (type === 'rsa') {
    const pair = (await subtle.generateKey({ ...RSA_PARAMS, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['sign', 'verify'])) as CryptoKeyPair;
    return { privateKey: pair.privateKey, publicKey: pair.publicKey, signingAlgorithm: RSA_PARAMS };
  }
  const pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } };
}

/** PKCS#8 PEM of a private key. */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** What a key file holds, described for messages: `ECDSA P-256`, `RSA 2048`. */
export function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') return `ECDSA ${details.namedCurve ?? '?'}`;
  if (key.asymmetricKeyType === 'rsa') return `RSA ${details.modulusLength ?? '?'}`;
  return String(key.asymmetricKeyType);
}

const EC_CURVES: Readonly<Record<string, { namedCurve: string; hash: string }>> = {
  prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
};

/**
 * Imports a private key in any PEM form openssl writes (PKCS#8, SEC1 `EC PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`)
 * as a WebCrypto signing key with its public half. Throws a plain Error saying what is unsupported.
 */
export async function importPrivateKeyPem(pem: string): Promise<CaKeyPair & { readonly keyObject: KeyObject }> {
  const keyObject = createPrivateKey({ key: pem, format: 'pem' });
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
  const subtle = webcrypto.subtle;
  let algorithm: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  let signingAlgorithm: SigningAlgorithm;
  if (keyObject.asymmetricKeyType === 'rsa') {
    algorithm = RSA_PARAMS;
    signingAlgorithm = RSA_PARAMS;
  } else if (keyObject.asymmetricKeyType === 'ec') {
    const curve = EC_CURVES[keyObject.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) throw new Error(`unsupported key ${describeKey(keyObject)} (expected ECDSA P-256/P-384 or RSA)`);
    algorithm = { name: 'ECDSA', namedCurve: curve.namedCurve };
    signingAlgorithm = { name: 'ECDSA', hash: curve.hash };
  } else {
    throw new Error(`unsupported key type ${describeKey(keyObject)} (expected ECDSA P-256/P-384 or RSA)`);
  }
  const privateKey = await subtle.importKey('pkcs8', der, algorithm, true, ['sign']);
  const publicKey = await subtle.importKey('spki', spki, algorithm, true, ['verify']);
  return { privateKey, publicKey, signingAlgorithm, keyObject };
}
