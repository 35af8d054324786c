// Terminates downstream TLS for one filter chain: handshakes on a node:tls server, follows SDS rotation, verifies the peer (chain, dates, SANs) and counts Envoy's ssl.* stats.
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { CompiledDownstreamTls } from './downstream-tls.js';
import { describeTlsConnection, describeVerifyError, recordTlsConnectionInfo, type TlsConnectionInfo } from './peer-certificate.js';
import { parseSubjectAltName, sansMatch } from './san-matcher.js';

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
export const SSL_STATS = ['ssl.handshake', 'ssl.connection_error', 'ssl.fail_verify_error', 'ssl.fail_verify_san', 'ssl.fail_verify_no_cert', 'ssl.no_certificate'] as const;

/** The code in every refused-peer log line (docs/errors.md). */
export const PEER_REJECTED_CODE = 'TRELLIS_TLS_PEER_REJECTED';

function defaultLog(level: TlsLogLevel, message: string): void {
  process.stderr.write(`[${new Date().toISOString()}][${level}][connection] ${message}\n`);
}

export class DownstreamTlsAcceptor {
  private server: TlsServer | undefined;
  private serverOptions: SecureContextOptions | undefined;
  private readonly log: (level: TlsLogLevel, message: string) => void;

  constructor(private readonly tls: CompiledDownstreamTls, private readonly options: DownstreamTlsAcceptorOptions) {
    this.log = options.log ?? defaultLog;
    for (const name of SSL_STATS) options.stats[name] ??= 0;
  }

  /**
   * Starts the handshake on an accepted socket (bytes a listener filter peeked must be unshifted first). New
   * connections pick up a rotated SDS certificate; established ones keep the context they shook hands with.
   */
  accept(socket: Socket): void {
    const contextOptions = this.tls.currentContextOptions((problem) => this.log('warning', `${this.where()}: keeping the previous TLS context: ${problem}`));
    const server = this.server ?? this.createServer(contextOptions);
    if (contextOptions !== this.serverOptions) {
      server.setSecureContext(contextOptions);
      this.serverOptions = contextOptions;
    }
    // The TLSSocket reads the socket's handle itself; resuming the plain socket here would steal the ClientHello.
    server.emit('connection', socket);
  }

  close(): void {
    this.server?.close();
    this.server = undefined;
  }

  private where(): string {
    return this.options.listenerName ? `listener ${this.options.listenerName}` : 'TLS listener';
  }

  private createServer(contextOptions: SecureContextOptions): TlsServer {
    const tls = this.tls;
    const server = createTlsServer({
      ...contextOptions,
      ...(tls.alpnProtocols.length ? { ALPNProtocols: [...tls.alpnProtocols] } : {}),
      // Envoy asks for a client certificate whenever it can verify one; the verdict is ours (below), so that the
      // reason is logged and counted: node:tls itself would only drop the connection.
      requestCert: tls.verifiesPeer,
      rejectUnauthorized: false,
    });
    this.serverOptions = contextOptions;
    server.on('tlsClientError', (err: Error, s: TLSSocket) => {
      this.options.stats['ssl.connection_error']!++;
      this.log('debug', `${this.where()}: TLS handshake with ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'} failed: ${err.message}`);
      s.destroy();
    });
    server.on('secureConnection', (s: TLSSocket) => this.onHandshake(s));
    this.server = server;
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
    const subject = peer.subject.replace(/\n/g, ',');
    if (!s.authorized) return { stat: 'ssl.fail_verify_error', reason: `${describeVerifyError(s.authorizationError)}; subject ${subject}, SANs [${peer.subjectAltName ?? ''}]` };
    const matchers = tls.sanMatchers();
    if (!sansMatch(matchers, parseSubjectAltName(peer.subjectAltName))) {
      return { stat: 'ssl.fail_verify_san', reason: `SANs [${peer.subjectAltName ?? ''}] match none of ${matchers.map((m) => m.text).join(', ')}` };
    }
    return undefined;
  }
}
