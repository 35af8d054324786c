// Terminates downstream TLS for one filter chain: handshakes on a node:tls server, follows SDS rotation, verifies the peer (chain, dates, SANs) and counts Envoy's ssl.* stats.
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { CompiledDownstreamTls } from './downstream-tls.js';
import { describeTlsConnection, describeVerifyError, recordTlsConnectionInfo, type TlsConnectionInfo } from './peer-certificate.js';
import { parseSubjectAltName, sansMatch } from './san-matcher.js';
import { MAX_CLIENT_HELLO, parseClientHello, peekSocket } from './tls-inspector.js';

export type TlsLogLevel = 'debug' | 'info' | 'warning';

export interface DownstreamTlsAcceptorOptions {
  /** The listener's counters: Envoy's `ssl.*` names are added to it (`listener.<address>.ssl.handshake`, …). */
  readonly stats: Record<string, number>;
  /** Called with each connection that completed the handshake and passed verification. */
  readonly onSecure: (socket: TLSSocket, info: TlsConnectionInfo) => void;
  /** Where refused connections are reported with their reason; default: stderr in the proxy log's line format. */
  readonly log?: (level: TlsLogLevel, message: string) => void;
  /** For log lines. */
  readonly listenerName?: string;
}

/** Envoy's listener ssl counters (source/common/tls/stats.h), present from the start so /stats lists them. */
export const SSL_STATS = ['ssl.handshake', 'ssl.session_reused', 'ssl.connection_error', 'ssl.fail_verify_error', 'ssl.fail_verify_san', 'ssl.fail_verify_no_cert', 'ssl.no_certificate'] as const;

/** The code in every refused-peer log line (docs/errors.md). */
export const PEER_REJECTED_CODE = 'TRELLIS_TLS_PEER_REJECTED';

/** Without the proxy's logger: info and above to stderr in its line format (debug is the proxy's default-off level). */
function defaultLog(level: TlsLogLevel, message: string): void {
  if (level === 'debug') return;
  process.stderr.write(`[${new Date().toISOString()}][${level}][connection] ${message}\n`);
}

/** How long a client may take to send its ClientHello (Envoy's listener_filters_timeout default). */
const CLIENT_HELLO_TIMEOUT_MS = 15_000;

interface ServerSlot {
  server: TlsServer;
  options: SecureContextOptions;
}

export class DownstreamTlsAcceptor {
  /**
   * Two node:tls servers: one offering alpn_protocols, one offering none. node:tls ends a handshake whose ALPN lists
   * do not overlap with a fatal no_application_protocol alert, where Envoy goes on without ALPN (SSL_TLSEXT_ERR_NOACK);
   * Istio sidecars offer `istio-peer-exchange, istio` to inbound chains offering `h2, http/1.1`, so such clients are
   * handed to the server without ALPN.
   */
  private readonly servers = new Map<'alpn' | 'plain', ServerSlot>();
  private closed = false;
  private readonly log: (level: TlsLogLevel, message: string) => void;

  constructor(private readonly tls: CompiledDownstreamTls, private readonly options: DownstreamTlsAcceptorOptions) {
    this.log = options.log ?? defaultLog;
    for (const name of SSL_STATS) options.stats[name] ??= 0;
  }

  /**
   * Starts the handshake on an accepted socket (bytes a listener filter peeked must be unshifted first). New
   * connections pick up a rotated SDS certificate; established ones keep the context they shook hands with.
   * `clientAlpn`: the ALPN list of the ClientHello when a tls_inspector already parsed it (saves a second peek).
   */
  accept(socket: Socket, clientAlpn?: readonly string[]): void {
    // A reset while the ClientHello is peeked must not become an unhandled 'error'.
    if (socket.listenerCount('error') === 0) socket.on('error', () => socket.destroy());
    if (this.tls.alpnProtocols.length === 0) {
      this.handshake(socket, 'plain');
      return;
    }
    if (clientAlpn) {
      this.handshake(socket, this.serverKind(clientAlpn));
      return;
    }
    void peekSocket(socket, (b) => parseClientHello(b).kind !== 'need_more' || b.length >= MAX_CLIENT_HELLO, CLIENT_HELLO_TIMEOUT_MS).then((peek) => {
      if (peek.closed || peek.timedOut) {
        if (peek.timedOut) this.options.stats['ssl.connection_error']!++;
        socket.destroy();
        return;
      }
      if (peek.bytes.length > 0) socket.unshift(peek.bytes);
      const hello = parseClientHello(peek.bytes);
      this.handshake(socket, this.serverKind(hello.kind === 'tls' ? hello.alpn : []));
    });
  }

  /** The server offering ALPN only to clients whose list overlaps ours (see `servers`). */
  private serverKind(offered: readonly string[]): 'alpn' | 'plain' {
    return offered.some((p) => this.tls.alpnProtocols.includes(p)) ? 'alpn' : 'plain';
  }

  private handshake(socket: Socket, kind: 'alpn' | 'plain'): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const contextOptions = this.tls.currentContextOptions((problem) => this.log('warning', `${this.where()}: keeping the previous TLS context: ${problem}`));
    let slot = this.servers.get(kind);
    if (!slot) {
      slot = { server: this.createServer(contextOptions, kind === 'alpn'), options: contextOptions };
      this.servers.set(kind, slot);
    } else if (slot.options !== contextOptions) {
      slot.server.setSecureContext(contextOptions);
      slot.options = contextOptions;
    }
    // The TLSSocket reads the socket's handle itself; resuming the plain socket here would steal the ClientHello.
    slot.server.emit('connection', socket);
  }

  close(): void {
    this.closed = true;
    for (const slot of this.servers.values()) slot.server.close();
    this.servers.clear();
  }

  private where(): string {
    return this.options.listenerName ? `listener ${this.options.listenerName}` : 'TLS listener';
  }

  private createServer(contextOptions: SecureContextOptions, withAlpn: boolean): TlsServer {
    const tls = this.tls;
    const server = createTlsServer({
      ...contextOptions,
      ...(withAlpn ? { ALPNProtocols: [...tls.alpnProtocols] } : {}),
      // Envoy asks for a client certificate whenever it can verify one; the verdict is ours (below), so that the
      // reason is logged and counted: node:tls itself would only drop the connection.
      requestCert: tls.verifiesPeer,
      rejectUnauthorized: false,
    });
    server.on('tlsClientError', (err: Error, s: TLSSocket) => {
      this.options.stats['ssl.connection_error']!++;
      this.log('debug', `${this.where()}: TLS handshake with ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'} failed: ${err.message}`);
      s.destroy();
    });
    server.on('secureConnection', (s: TLSSocket) => this.onHandshake(s));
    return server;
  }

  private onHandshake(s: TLSSocket): void {
    const stats = this.options.stats;
    s.on('error', () => s.destroy());
    const refusal = this.verify(s);
    if (refusal) {
      stats[refusal.stat]!++;
      this.log('info', `${PEER_REJECTED_CODE}: ${this.where()}: peer ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'} refused (${refusal.stat}): ${refusal.reason}`);
      s.destroy();
      return;
    }
    stats['ssl.handshake']!++;
    if (s.isSessionReused()) stats['ssl.session_reused']!++;
    const version = s.getProtocol();
    if (version) stats[`ssl.versions.${version}`] = (stats[`ssl.versions.${version}`] ?? 0) + 1;
    const cipher = s.getCipher()?.name;
    if (cipher) stats[`ssl.ciphers.${cipher}`] = (stats[`ssl.ciphers.${cipher}`] ?? 0) + 1;
    const info = describeTlsConnection(s, this.tls.verifiesPeer);
    recordTlsConnectionInfo(s, info);
    this.options.onSecure(s, info);
  }

  /** Envoy's order: SNI requirement, certificate presence, chain and dates, then SAN matchers (any one passing). */
  private verify(s: TLSSocket): { stat: string; reason: string } | undefined {
    const tls = this.tls;
    if (tls.requireSni && !s.servername) return { stat: 'ssl.connection_error', reason: 'no SNI in the ClientHello (require_sni)' };
    if (!tls.verifiesPeer) return undefined;
    const peer = s.getPeerX509Certificate();
    if (!peer) {
      if (tls.requireClientCertificate) return { stat: 'ssl.fail_verify_no_cert', reason: 'no client certificate (require_client_certificate)' };
      this.options.stats['ssl.no_certificate']!++;
      return undefined;
    }
    const subject = (peer.subject ?? '').replace(/\n/g, ',');
    if (!s.authorized) return { stat: 'ssl.fail_verify_error', reason: `${describeVerifyError(s.authorizationError)}; subject ${subject}, SANs [${peer.subjectAltName ?? ''}]` };
    const matchers = tls.sanMatchers();
    if (!sansMatch(matchers, parseSubjectAltName(peer.subjectAltName))) {
      return { stat: 'ssl.fail_verify_san', reason: `SANs [${peer.subjectAltName ?? ''}] match none of ${matchers.map((m) => m.text).join(', ')}` };
    }
    return undefined;
  }
}
