// What is known about one HTTP request as it crosses the proxy: for filters, stats, access logs and tracing.
import type { HttpHeaders } from './headers.js';
import type { ResponseFlag } from './response-flags.js';

export type HttpProtocol = 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';

/** The downstream TLS session, when the connection was TLS. */
export interface DownstreamTlsInfo {
  readonly sni?: string;
  readonly alpn?: string;
  /** SPIFFE URI SANs and DNS SANs of the peer certificate (mTLS), first is the principal. */
  readonly peerUriSans: readonly string[];
  readonly peerCertificatePem?: string;
  /** The rest is filled by transport/downstream-tls-acceptor.ts (transport/peer-certificate.ts's TlsConnectionInfo). */
  /** URI SANs of the peer certificate only. */
  readonly peerUris?: readonly string[];
  readonly peerDnsSans?: readonly string[];
  /** RFC 2253 subject (`CN=client,O=cluster.local`). */
  readonly peerSubject?: string;
  /** Lower-case hex serial number. */
  readonly peerSerial?: string;
  /** Lower-case hex SHA-256 of the peer certificate's DER (XFCC Hash=). */
  readonly peerCertificateSha256?: string;
  readonly peerCertificateChainPem?: string;
  /** The peer certificate chained to the trusted CA and passed SAN matching. */
  readonly peerCertificateValidated?: boolean;
  /** URI SANs of this side's certificate (XFCC By=). */
  readonly localUriSans?: readonly string[];
  readonly tlsVersion?: string;
  readonly cipher?: string;
}

export interface StreamInfo {
  /** performance.now() when the request headers were complete. */
  readonly startTime: number;
  readonly protocol: HttpProtocol;
  readonly downstreamRemoteAddress: string;
  readonly downstreamRemotePort: number;
  readonly downstreamLocalAddress: string;
  readonly downstreamLocalPort: number;
  readonly downstreamTls?: DownstreamTlsInfo;
  readonly listenerName: string;
  /** HttpConnectionManager stat_prefix. */
  readonly statPrefix: string;
  requestId: string;
  routeName?: string;
  upstreamCluster?: string;
  /** `ip:port` of the host of the last attempt. */
  upstreamHost?: string;
  /** The URI SANs of the upstream TLS session that answered (the server's and this proxy's), when it was TLS. */
  upstreamTls?: { readonly peerUriSans: readonly string[]; readonly localUriSans: readonly string[] };
  /** Set when the response headers are sent (by the upstream or a local reply). */
  responseCode?: number;
  /** Why a local reply or reset happened (Envoy's %RESPONSE_CODE_DETAILS%, e.g. `route_not_found`). */
  responseCodeDetails?: string;
  readonly responseFlags: Set<ResponseFlag>;
  bytesReceived: number;
  bytesSent: number;
  /** Attempts made upstream (x-envoy-attempt-count). */
  attemptCount: number;
  /** performance.now() of the first upstream response byte, and of the end of the response. */
  upstreamResponseStart?: number;
  endTime?: number;
  /** Values filters share with later filters and with logs (peer metadata, JWT payloads, …), by Envoy-like key. */
  readonly filterState: Map<string, unknown>;
  /** The request headers as received (after HCM's own edits like x-request-id), for logs. */
  readonly requestHeaders: HttpHeaders;
  responseHeaders?: HttpHeaders;
}
