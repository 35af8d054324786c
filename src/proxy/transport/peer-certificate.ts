// What a TLS connection knows about its peer and itself (Envoy's Ssl::ConnectionInfo): SANs, subject, serial, digest, PEM; kept per socket for network filters.
import { createHash, type X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { parseSubjectAltName } from './san-matcher.js';

/** The TLS facts of one downstream connection; field names follow Envoy's Ssl::ConnectionInfo where it has them. */
export interface TlsConnectionInfo {
  readonly sni?: string;
  readonly alpn?: string;
  /** URI SANs then DNS SANs of the peer certificate: the first is the principal (Envoy's RBAC principal_name order). */
  readonly peerUriSans: readonly string[];
  readonly peerCertificatePem?: string;
  /** URI SANs of the peer certificate only (Envoy's uriSanPeerCertificate). */
  readonly peerUris: readonly string[];
  readonly peerDnsSans: readonly string[];
  /** RFC 2253 subject, most specific RDN first (`CN=client,O=cluster.local`), as Envoy's subjectPeerCertificate. */
  readonly peerSubject?: string;
  /** Lower-case hex serial number. */
  readonly peerSerial?: string;
  /** Lower-case hex SHA-256 of the peer certificate's DER (Envoy's sha256PeerCertificateDigest, XFCC Hash=). */
  readonly peerCertificateSha256?: string;
  /** The peer's certificate chain as PEM, leaf first. */
  readonly peerCertificateChainPem?: string;
  /** The peer presented a certificate that chained to the trusted CA and passed SAN matching. */
  readonly peerCertificateValidated: boolean;
  /** URI SANs of the certificate this side presented (XFCC By=). */
  readonly localUriSans: readonly string[];
  readonly tlsVersion?: string;
  readonly cipher?: string;
}

const byConnection = new WeakMap<Duplex, TlsConnectionInfo>();

/**
 * The TLS facts of a downstream connection handed to a network filter (tcp_proxy, a network RBAC filter): undefined
 * for plaintext. The acceptor records them before the filter sees the socket.
 */
export function tlsConnectionInfo(socket: Duplex): TlsConnectionInfo | undefined {
  return byConnection.get(socket);
}

export function recordTlsConnectionInfo(socket: Duplex, info: TlsConnectionInfo): void {
  byConnection.set(socket, info);
}

function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** Node prints subjects one RDN per line in certificate order (already RFC 2253-escaped); RFC 2253 reverses them. */
export function rfc2253Subject(cert: X509Certificate): string {
  return (cert.subject ?? '').split('\n').filter(Boolean).reverse().map((rdn) => rdn.replace(/ \+ /g, '+')).join(',');
}

function serialHex(cert: X509Certificate): string {
  const s = cert.serialNumber.toLowerCase();
  return s.length % 2 === 1 ? `0${s}` : s;
}

function chainPem(socket: TLSSocket): string | undefined {
  const leaf = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  if (!leaf || !leaf.raw) return undefined;
  const out: string[] = [];
  const seen = new Set<string>();
  let c: DetailedPeerCertificate | undefined = leaf;
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(toPem(c.raw));
    c = c.issuerCertificate;
  }
  return out.join('');
}

/** Reads the identity facts of an established TLS socket; `validated` is the acceptor's verdict. */
export function describeTlsConnection(socket: TLSSocket, validated: boolean): TlsConnectionInfo {
  const peer = socket.getPeerX509Certificate();
  const local = socket.getX509Certificate();
  const peerSans = parseSubjectAltName(peer?.subjectAltName);
  const peerUris = peerSans.filter((s) => s.type === 'URI').map((s) => s.value);
  const peerDnsSans = peerSans.filter((s) => s.type === 'DNS').map((s) => s.value);
  const cipher = socket.getCipher();
  const version = socket.getProtocol();
  const info: TlsConnectionInfo = {
    ...(typeof socket.servername === 'string' && socket.servername ? { sni: socket.servername } : {}),
    ...(typeof socket.alpnProtocol === 'string' && socket.alpnProtocol ? { alpn: socket.alpnProtocol } : {}),
    peerUriSans: [...peerUris, ...peerDnsSans],
    peerUris,
    peerDnsSans,
    peerCertificateValidated: validated && peer !== undefined,
    localUriSans: parseSubjectAltName(local?.subjectAltName).filter((s) => s.type === 'URI').map((s) => s.value),
    ...(version ? { tlsVersion: version } : {}),
    ...(cipher?.name ? { cipher: cipher.name } : {}),
  };
  if (!peer) return info;
  const chain = chainPem(socket);
  return {
    ...info,
    peerCertificatePem: peer.toString(),
    peerSubject: rfc2253Subject(peer),
    peerSerial: serialHex(peer),
    peerCertificateSha256: createHash('sha256').update(peer.raw).digest('hex'),
    ...(chain ? { peerCertificateChainPem: chain } : {}),
  };
}

/** Why a peer certificate fails against `ca` and the clock, in OpenSSL's words; for logs of refused connections. */
export function describeVerifyError(code: string | Error | null | undefined): string {
  const c = code instanceof Error ? ((code as NodeJS.ErrnoException).code ?? code.message) : (code ?? '');
  const known: Record<string, string> = {
    CERT_HAS_EXPIRED: 'certificate has expired',
    CERT_NOT_YET_VALID: 'certificate is not yet valid',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
    SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in the chain',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate is not signed by a trusted CA',
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate is not signed by a trusted CA',
    UNABLE_TO_GET_ISSUER_CERT: 'certificate is not signed by a trusted CA',
    CERT_SIGNATURE_FAILURE: 'certificate signature does not verify',
  };
  return known[c] ? `${known[c]} (${c})` : c || 'unknown verification error';
}
