// Reads the CA's cert_chain answer: the chain a workload presents (leaf up to its root) and the trust bundle (every self-signed root, all of them during a root rotation overlap).
// @peculiar/x509 resolves its ASN.1 types through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AgentError } from './agent-error.js';

const crypto = webcrypto;

export interface IssuedChain {
  /** Leaf, intermediates and the root that issued them, PEM, in that order. */
  readonly certificateChainPem: string;
  /** The roots to trust: the self-signed certificates of the answer (or its last certificate when it has none). */
  readonly rootCertPem: string;
  readonly leaf: x509.X509Certificate;
  readonly roots: readonly x509.X509Certificate[];
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Splits the CA's answer (one PEM per element in Istio's API; tolerant of several per element) and classifies it. */
export async function readIssuedChain(certChain: readonly string[]): Promise<IssuedChain> {
  const blocks = certChain.flatMap((element) => element.match(PEM_BLOCK) ?? []);
  if (blocks.length === 0) throw new AgentError('TRELLIS_AGENT_CERTIFICATE', 'the CA answered without any PEM certificate in cert_chain');
  let certs: x509.X509Certificate[];
  try {
    certs = blocks.map((pem) => new x509.X509Certificate(pem));
  } catch (err) {
    throw new AgentError('TRELLIS_AGENT_CERTIFICATE', `the CA answered with a certificate that does not parse: ${(err as Error).message}`, { cause: err });
  }
  const selfSigned = await Promise.all(certs.map((c) => c.isSelfSigned(crypto).catch(() => false)));
  // The presented chain ends at the first root; roots after it are the other trusted roots of a rotation overlap.
  const firstRoot = selfSigned.indexOf(true);
  const chain = firstRoot === -1 ? certs : certs.slice(0, firstRoot + 1);
  const roots = certs.filter((_, i) => selfSigned[i]);
  // Istio infers the root from the end of the chain when the CA names none explicitly.
  const trusted = roots.length > 0 ? roots : [certs[certs.length - 1]!];
  return {
    certificateChainPem: chain.map((c) => c.toString('pem')).join('\n') + '\n',
    rootCertPem: trusted.map((c) => c.toString('pem')).join('\n') + '\n',
    leaf: certs[0]!,
    roots: trusted,
  };
}
