// Opens one upstream connection (TCP, optionally TLS) with Envoy's connect_timeout and connection counters.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { HostImpl } from '../host.js';
import type { PoolSettings } from './connection-pool.js';

export const kConnectFailure = Symbol('trellis.connectFailure');
/** The URI SANs of a TLS connection's two certificates, set once the handshake is done (absent for plaintext). */
export const kUpstreamTlsIdentity = Symbol('trellis.upstreamTlsIdentity');

/** What the source side of a request knows about its upstream TLS session (Istio's source/destination principals). */
export interface UpstreamTlsIdentity {
  readonly peerUriSans: readonly string[];
  readonly localUriSans: readonly string[];
}

function uriSans(cert: { subjectaltname?: string } | null | undefined): string[] {
  return (cert?.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

/** A socket plus why it failed to connect, when it did ('connect_timeout' or 'connect_failure'). */
export type UpstreamSocket = (Socket | TLSSocket) & { [kConnectFailure]?: 'connect_timeout' | 'connect_failure'; connected?: boolean; [kUpstreamTlsIdentity]?: UpstreamTlsIdentity };

/**
 * Starts a connection to `host`. Counts upstream_cx_total/active (cluster and host) now and their release on close,
 * upstream_cx_connect_fail / _connect_timeout on failure. `connected` is set once TCP (and TLS, when configured) is up.
 */
export function connectUpstream(host: HostImpl, settings: PoolSettings, alpn?: readonly string[]): UpstreamSocket {
  const stats = settings.stats;
  stats.upstream_cx_total++;
  stats.upstream_cx_active++;
  settings.resources.connections++;
  host.stats.cxTotal++;
  host.stats.cxActive++;
  const raw = netConnect({ host: host.address, port: host.port, localAddress: settings.sourceAddress, noDelay: true }) as UpstreamSocket;
  let socket: UpstreamSocket = raw;
  if (settings.tls) {
    try {
      const options = settings.tls.connectOptions();
      const alpnProtocols = alpn ? [...alpn] : options.ALPNProtocols;
      socket = tlsConnect({ ...options, ALPNProtocols: alpnProtocols, socket: raw }) as UpstreamSocket;
    } catch (err) {
      // An SDS secret is missing: fail this connection the way a handshake failure would.
      queueMicrotask(() => raw.destroy(err as Error));
      raw[kConnectFailure] = 'connect_failure';
    }
  }
  // Counted when the failure is seen (error, timeout or close before connecting), before the request hears of it.
  let failCounted = false;
  const countConnectFail = (): void => {
    if (failCounted || socket.connected) return;
    failCounted = true;
    stats.upstream_cx_connect_fail++;
    host.stats.cxConnectFail++;
  };
  const timer = setTimeout(() => {
    if (socket.connected) return;
    socket[kConnectFailure] = 'connect_timeout';
    raw[kConnectFailure] = 'connect_timeout';
    stats.upstream_cx_connect_timeout++;
    countConnectFail();
    const err = Object.assign(new Error(`connect timeout after ${settings.connectTimeoutMs} ms to ${host.addressText}`), { code: 'UPSTREAM_CONNECT_TIMEOUT' });
    socket.destroy(err);
    raw.destroy(err);
  }, settings.connectTimeoutMs);
  const onUp = (): void => {
    clearTimeout(timer);
    socket.connected = true;
    if (socket !== raw) {
      const tls = socket as TLSSocket;
      socket[kUpstreamTlsIdentity] = { peerUriSans: uriSans(tls.getPeerCertificate()), localUriSans: uriSans(tls.getCertificate() as { subjectaltname?: string } | null) };
    }
    if (settings.tcpKeepaliveMs !== undefined) raw.setKeepAlive(true, settings.tcpKeepaliveMs);
  };
  if (socket === raw) raw.once('connect', onUp);
  else socket.once('secureConnect', onUp);
  let closed = false;
  const onClose = (): void => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    if (!socket.connected) {
      socket[kConnectFailure] ??= raw[kConnectFailure] ?? 'connect_failure';
      countConnectFail();
    }
    stats.upstream_cx_active--;
    stats.upstream_cx_destroy++;
    settings.resources.connections--;
    host.stats.cxActive--;
  };
  socket.once('close', onClose);
  if (socket !== raw) raw.once('close', () => {
    if (!socket.destroyed) socket.destroy();
  });
  // Errors reach the pool through its own listeners; this one keeps an unobserved error from crashing the process.
  const onError = (): void => {
    if (!socket.connected) {
      socket[kConnectFailure] ??= raw[kConnectFailure] ?? 'connect_failure';
      countConnectFail();
    }
  };
  socket.on('error', onError);
  raw.on('error', onError);
  return socket;
}
