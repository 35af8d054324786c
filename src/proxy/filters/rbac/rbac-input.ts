// What an RBAC policy is evaluated against (Envoy's connection + headers + stream info), and the peer identity read from a TLS connection.
import { X509Certificate } from 'node:crypto';
import type { HttpHeaders } from '../../http/headers.js';
import type { DownstreamTlsInfo } from '../../http/stream-info.js';
import { rfc2253Subject } from '../../transport/peer-certificate.js';

/** The downstream peer's certificate facts in Envoy's terms (Ssl::ConnectionInfo). */
export interface PeerIdentity {
  /** uriSanPeerCertificate(). */
  readonly uriSans: readonly string[];
  /** dnsSansPeerCertificate(). */
  readonly dnsSans: readonly string[];
  /** subjectPeerCertificate(): RFC 2253, most specific RDN first; '' without a peer certificate. */
  readonly subject: string;
}

/** The connection facts RBAC reads; one object per connection, shared by its requests. */
export interface RbacConnection {
  /** The downstream address (source_ip, direct_remote_ip: Trellis has no PROXY protocol, so both are the socket peer). */
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly localPort: number;
  /** SNI, '' when none (Envoy's requestedServerName()). */
  readonly requestedServerName: string;
  /** Present when the connection is TLS (Envoy's connection.ssl() != nullptr), with or without a client certificate. */
  readonly peer?: PeerIdentity;
}

/** One evaluation: a request (HTTP RBAC) or a connection (network RBAC: no headers). */
export interface RbacInput {
  readonly connection: RbacConnection;
  /** Request headers in HTTP/2 shape (`:path`, `:method`, `:authority`); empty for network RBAC. */
  readonly headers: HttpHeaders;
  /** remote_ip: the client address as the HTTP connection manager determined it (x-forwarded-for when trusted). */
  readonly remoteIp: string;
  /** Dynamic metadata by filter name (the team's convention: plain objects in filterState). */
  readonly filterState: ReadonlyMap<string, unknown>;
  /**
   * `:path` without query and fragment: the first url_path matcher of an evaluation computes it, the others reuse it.
   * The filters create inputs with it set to undefined, so every input has one shape (a property added later slows lookups).
   */
  pathWithoutQuery?: string | undefined;
}

export const NO_HEADERS: HttpHeaders = Object.freeze({}) as HttpHeaders;

const identities = new WeakMap<DownstreamTlsInfo, PeerIdentity>();

/**
 * The peer identity of a TLS connection, computed once per connection. Uses the separate URI/DNS lists and subject
 * when the acceptor provides them; otherwise splits `peerUriSans` (a DNS name never holds ':', a URI always does) and
 * reads the subject from the PEM only if a policy asks for it.
 */
export function peerIdentityOf(tls: DownstreamTlsInfo): PeerIdentity {
  let identity = identities.get(tls);
  if (identity) return identity;
  const uriSans = tls.peerUris ?? tls.peerUriSans.filter((s) => s.includes(':'));
  const dnsSans = tls.peerDnsSans ?? tls.peerUriSans.filter((s) => !s.includes(':'));
  let subject = tls.peerSubject;
  identity = {
    uriSans,
    dnsSans,
    get subject(): string {
      if (subject === undefined) {
        try {
          subject = tls.peerCertificatePem ? rfc2253Subject(new X509Certificate(tls.peerCertificatePem)) : '';
        } catch {
          subject = '';
        }
      }
      return subject;
    },
  };
  identities.set(tls, identity);
  return identity;
}

/**
 * Envoy's downstream remote address for a request: the x-forwarded-for entry `xffNumTrustedHops` from the right of
 * the header as the connection manager left it (with use_remote_address it has already appended the peer, which
 * makes the same index right in both modes), else the connection's peer.
 */
export function remoteIpFromForwardedFor(headers: HttpHeaders, peer: string, xffNumTrustedHops: number): string {
  const xff = headers['x-forwarded-for'];
  if (xff === undefined) return peer;
  const text = typeof xff === 'string' ? xff : xff.join(',');
  const list = text.split(',');
  const i = list.length - 1 - xffNumTrustedHops;
  if (i < 0) return peer;
  const candidate = list[i]!.trim();
  return candidate !== '' && isIpLiteral(candidate) ? candidate : peer;
}

function isIpLiteral(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (/^[0-9a-fA-F:.]+$/.test(s) && s.includes(':'));
}
