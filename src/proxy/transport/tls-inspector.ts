// TLS inspector: parses a peeked ClientHello for SNI and ALPN (Envoy's envoy.filters.listener.tls_inspector) without consuming bytes.
import type { Socket } from 'node:net';

export type ClientHelloResult =
  | { readonly kind: 'need_more' }
  | { readonly kind: 'not_tls' }
  | { readonly kind: 'tls'; readonly serverName?: string; readonly alpn: readonly string[] };

const NEED_MORE: ClientHelloResult = { kind: 'need_more' };
const NOT_TLS: ClientHelloResult = { kind: 'not_tls' };
/** Envoy's tls_inspector reads at most 64 KiB of ClientHello. */
export const MAX_CLIENT_HELLO = 64 * 1024;

/**
 * Parses the first bytes of a connection. Only the first TLS record is read (a ClientHello split across records
 * is reported as TLS without SNI/ALPN, like a hello we cannot fully see).
 */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  if (buf.length < 1) return NEED_MORE;
  if (buf[0] !== 0x16) return NOT_TLS; // handshake record
  if (buf.length < 5) return buf.length >= 2 && buf[1] !== 0x03 ? NOT_TLS : NEED_MORE;
  if (buf[1] !== 0x03) return NOT_TLS;
  const recordLen = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLen) return buf.length >= MAX_CLIENT_HELLO ? { kind: 'tls', alpn: [] } : NEED_MORE;
  const hs = buf.subarray(5, 5 + recordLen);
  if (hs.length < 4 || hs[0] !== 0x01) return NOT_TLS; // ClientHello
  const helloLen = hs.readUIntBE(1, 3);
  const body = hs.subarray(4, 4 + helloLen);
  try {
    let p = 2 + 32; // client_version, random
    p += 1 + body[p]!; // session id
    p += 2 + body.readUInt16BE(p); // cipher suites
    p += 1 + body[p]!; // compression methods
    if (p + 2 > body.length) return { kind: 'tls', alpn: [] };
    const extEnd = Math.min(body.length, p + 2 + body.readUInt16BE(p));
    p += 2;
    let serverName: string | undefined;
    const alpn: string[] = [];
    while (p + 4 <= extEnd) {
      const type = body.readUInt16BE(p);
      const len = body.readUInt16BE(p + 2);
      const ext = body.subarray(p + 4, p + 4 + len);
      p += 4 + len;
      if (type === 0x0000 && ext.length >= 5) {
        // server_name list: u16 list length, then (u8 type, u16 len, name)
        let q = 2;
        while (q + 3 <= ext.length) {
          const nameType = ext[q]!;
          const nameLen = ext.readUInt16BE(q + 1);
          if (nameType === 0) serverName = ext.subarray(q + 3, q + 3 + nameLen).toString('latin1').toLowerCase();
          q += 3 + nameLen;
        }
      } else if (type === 0x0010 && ext.length >= 2) {
        let q = 2;
        while (q < ext.length) {
          const l = ext[q]!;
          alpn.push(ext.subarray(q + 1, q + 1 + l).toString('latin1'));
          q += 1 + l;
        }
      }
    }
    return serverName === undefined ? { kind: 'tls', alpn } : { kind: 'tls', serverName, alpn };
  } catch {
    return { kind: 'tls', alpn: [] };
  }
}

/** The first bytes of a connection; the caller hands them on (unshift for TLS, `initialBytes` for HTTP, upstream write for TCP). */
export interface PeekResult {
  readonly bytes: Buffer;
  readonly timedOut: boolean;
  /** The peer closed (or errored) before sending enough. */
  readonly closed: boolean;
}

/**
 * Reads from `socket` until `enough(bytes)` says so (or timeout/close). Nothing is lost: the bytes are returned and
 * the socket is left paused for the next reader. `timeoutMs` 0 waits without a limit.
 */
export function peekSocket(socket: Socket, enough: (bytes: Buffer) => boolean, timeoutMs: number): Promise<PeekResult> {
  return new Promise((resolve) => {
    let bytes: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (timedOut: boolean, closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onClose);
      socket.off('close', onClose);
      socket.off('error', onClose);
      socket.pause();
      resolve({ bytes, timedOut, closed });
    };
    const onData = (chunk: Buffer): void => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      if (enough(bytes)) finish(false, false);
    };
    const onClose = (): void => finish(false, true);
    // Envoy's listener_filters_timeout of 0 disables the timeout (Istio's protocolDetectionTimeout 0s): wait for bytes.
    const timer = timeoutMs > 0 ? setTimeout(() => finish(true, false), timeoutMs) : undefined;
    socket.on('data', onData);
    socket.once('end', onClose);
    socket.once('close', onClose);
    socket.once('error', onClose);
    // Accepted sockets start paused (pauseOnConnect); a 'data' listener alone does not start an explicitly paused stream.
    socket.resume();
  });
}

/** The HTTP/2 connection preface (RFC 9113 §3.4), for h2c prior-knowledge detection. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** 'h2' when `bytes` starts with the HTTP/2 preface, 'http1' when they cannot, 'need_more' when too short to tell. */
export function detectHttp2Preface(bytes: Buffer): 'h2' | 'http1' | 'need_more' {
  const n = Math.min(bytes.length, H2_PREFACE.length);
  if (bytes.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return n === H2_PREFACE.length ? 'h2' : 'need_more';
  return 'http1';
}
