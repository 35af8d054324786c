// Who is asking the CA: a bootstrap token (`authorization: Bearer <token>`, local mode) or the mesh certificate the caller presented (Istio's ClientCertAuthenticator, for renewals).
import type { PeerCertificate } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import type { BootstrapTokens, TokenIdentity } from './bootstrap-tokens.js';
import { CaError } from './ca-error.js';
import { parseSpiffeUri } from './identity.js';

/** What a call carries that can prove who the caller is. */
export interface CallerCredentials {
  readonly metadata: grpc.Metadata;
  /** The client certificate, present only when TLS verified it against the trust bundle (grpc-js's auth context). */
  readonly peerCertificate?: PeerCertificate;
}

/** Decides who is calling: the identity the caller may get a certificate for, or a CaError TRELLIS_CA_UNAUTHENTICATED. */
export interface CallerAuthenticator {
  authenticate(caller: CallerCredentials): TokenIdentity;
  /** Whether this authenticator has something to go on for this call. */
  applies(caller: CallerCredentials): boolean;
}

/** Istio's bearer-token authentication (`authorization: Bearer <token>`), over local mode's bootstrap tokens. */
export function bootstrapTokenAuthenticator(tokens: BootstrapTokens): CallerAuthenticator {
  return {
    applies: (caller) => caller.metadata.get('authorization').length > 0,
    authenticate({ metadata }) {
      const values = metadata.get('authorization');
      if (values.length === 0) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', 'no authorization header (expected "Bearer <token>")');
      const m = /^Bearer\s+(\S+)\s*$/i.exec(String(values[0]));
      if (!m) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', 'authorization header is not "Bearer <token>"');
      const identity = tokens.identityOf(m[1]!);
      if (!identity) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', 'unknown bearer token');
      return identity;
    },
  };
}

/**
 * The identity of a verified client certificate: its one SPIFFE URI SAN, in `trustDomain`. A workload renewing its
 * certificate authenticates with the one it holds, as with Istio's ClientCertAuthenticator.
 */
export function clientCertificateAuthenticator(trustDomain: string): CallerAuthenticator {
  return {
    applies: (caller) => caller.peerCertificate !== undefined,
    authenticate({ peerCertificate }) {
      if (!peerCertificate) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', 'no client certificate');
      if (peerCertificate.ca) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', 'client certificate is a CA certificate');
      const uris = (peerCertificate.subjectaltname ?? '').split(/,\s*/).filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
      const spiffe = uris.filter((u) => u.startsWith('spiffe://'));
      if (spiffe.length !== 1) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', `client certificate has ${spiffe.length} SPIFFE URI SANs; exactly one is required`);
      const id = parseSpiffeUri(spiffe[0]!);
      if (!id) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', `client certificate identity ${spiffe[0]} is not spiffe://<trust-domain>/ns/<ns>/sa/<sa>`);
      if (id.trustDomain !== trustDomain) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', `client certificate identity ${spiffe[0]} is not in trust domain ${trustDomain}`);
      return { namespace: id.namespace, serviceAccount: id.serviceAccount };
    },
  };
}

/** Tries each authenticator that has something to go on, in order; the first that applies decides. */
export function firstApplicable(...authenticators: readonly CallerAuthenticator[]): CallerAuthenticator {
  return {
    applies: (caller) => authenticators.some((a) => a.applies(caller)),
    authenticate(caller) {
      const chosen = authenticators.find((a) => a.applies(caller));
      if (!chosen) throw new CaError('TRELLIS_CA_UNAUTHENTICATED', 'no authorization header (expected "Bearer <token>") and no client certificate of the mesh');
      return chosen.authenticate(caller);
    },
  };
}
