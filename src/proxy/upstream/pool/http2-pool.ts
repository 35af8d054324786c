// HTTP/2 connection pool of one host: ClientHttp2Sessions multiplexing up to max_concurrent_streams each, trailers for gRPC.
import { connect as h2connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { HttpHeaders } from '../../http/headers.js';
import { PendingBody } from './pending-request.js';
import type { HostImpl } from '../host.js';
import type { UpstreamFailure, UpstreamRequest, UpstreamResponseHandler } from '../types.js';
import { connectUpstream, kConnectFailure, kUpstreamTlsIdentity, type UpstreamSocket } from './connect.js';
import { admitRequest, countRequestEnd, countRequestStart, countStatus, enterPending, leavePending, type ConnectionPool, type PoolSettings } from './connection-pool.js';

/** Connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2); `te` is allowed only as "trailers". */
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

interface H2Connection {
  readonly session: ClientHttp2Session;
  readonly socket: UpstreamSocket;
  connected: boolean;
  active: number;
  total: number;
  /** No new streams (GOAWAY, max_requests_per_connection, pool draining). */
  draining: boolean;
  /** Streams waiting for the session to connect. */
  waiting: Http2Stream[];
  idleTimer: NodeJS.Timeout | undefined;
}

class Http2Stream implements UpstreamRequest {
  stream: ClientHttp2Stream | undefined;
  conn: H2Connection | undefined;
  done = false;
  /** Set by enterPending when the pool counts it as waiting for a connection. */
  pending = false;
  private readonly pendingBody = new PendingBody();
  private drainCallback: (() => void) | undefined;
  private gotEnd = false;

  constructor(
    private readonly pool: Http2Pool,
    readonly headers: HttpHeaders,
    readonly handler: UpstreamResponseHandler,
  ) {}

  start(conn: H2Connection): void {
    const h = this.headers;
    const out: OutgoingHttpHeaders = {};
    for (const name in h) {
      const v = h[name];
      if (v === undefined || H2_FORBIDDEN.has(name)) continue;
      if (name === 'te' && v !== 'trailers') continue;
      out[name] = v;
    }
    out[':scheme'] ??= this.pool.settings.tls ? 'https' : 'http';
    if (out[':authority'] === undefined && h.host !== undefined) out[':authority'] = h.host;
    let stream: ClientHttp2Stream;
    try {
      stream = conn.session.request(out, { endStream: false, waitForTrailers: true });
    } catch (err) {
      this.fail('remote_reset', (err as Error).message);
      return;
    }
    this.stream = stream;
    stream.on('response', (headers: IncomingHttpHeaders, flags: number) => {
      if (this.done) return;
      const status = Number(headers[':status']);
      countStatus(this.pool.settings.stats, status);
      (headers as Record<string, unknown>)[':status'] = String(status);
      const identity = conn.socket[kUpstreamTlsIdentity];
      if (identity) this.handler.onUpstreamTls?.(identity);
      // END_STREAM on the HEADERS frame (gRPC trailers-only): the router keeps the reply headers-only.
      this.handler.onHeaders(status, headers as HttpHeaders, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
    });
    stream.on('data', (chunk: Buffer) => {
      if (!this.done) this.handler.onData(chunk);
    });
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      if (!this.done) this.handler.onTrailers?.(trailers as HttpHeaders);
    });
    stream.on('end', () => {
      this.gotEnd = true;
    });
    stream.on('wantTrailers', () => {
      const t = this.trailersToSend;
      const out: OutgoingHttpHeaders = {};
      if (t) for (const k in t) if (t[k] !== undefined && k.charCodeAt(0) !== 58) out[k] = t[k];
      stream.sendTrailers(out);
    });
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (this.done) return;
      if (this.gotEnd && stream.rstCode === constants.NGHTTP2_NO_ERROR) {
        this.pool.finish(this, true);
        this.handler.onEnd();
        return;
      }
      const code = stream.rstCode;
      if (code === constants.NGHTTP2_PROTOCOL_ERROR) this.fail('protocol_error', 'upstream HTTP/2 protocol error');
      else if (code === constants.NGHTTP2_REFUSED_STREAM) this.fail('refused_stream', 'upstream refused the stream');
      else if (!conn.connected) this.fail(conn.socket[kConnectFailure] ?? 'connect_failure', `connection to ${this.pool.host.addressText} failed`);
      else this.fail('remote_reset', `upstream reset the stream (code ${code ?? 'none'})`);
    });
    if (this.drainCallback) stream.on('drain', this.drainCallback);
    this.pendingBody.flush((chunk) => stream.write(chunk), (trailers) => this.endStream(trailers));
  }

  private trailersToSend: HttpHeaders | undefined;

  fail(failure: UpstreamFailure, detail: string): void {
    if (this.done) return;
    this.pool.finish(this, false, failure);
    this.handler.onFailure(failure, detail);
  }

  write(chunk: Buffer): boolean {
    if (this.done) return true;
    if (this.stream) return this.stream.write(chunk);
    this.pendingBody.write(chunk);
    return false;
  }

  end(trailers?: HttpHeaders): void {
    if (this.done) return;
    if (this.stream) this.endStream(trailers);
    else this.pendingBody.end(trailers);
  }

  private endStream(trailers: HttpHeaders | undefined): void {
    this.trailersToSend = trailers;
    this.stream!.end();
  }

  abort(): void {
    if (this.done) return;
    this.pool.finish(this, false, 'local_reset');
    if (this.stream && !this.stream.destroyed) this.stream.close(constants.NGHTTP2_CANCEL);
  }

  onDrain(callback: () => void): void {
    this.drainCallback = callback;
    if (this.stream) this.stream.once('drain', callback);
    else queueMicrotask(callback);
  }

  // Pausing the stream stops consuming its DATA: HTTP/2 flow control then holds the upstream at its window.
  pauseResponse(): void {
    if (!this.done && this.stream && !this.stream.destroyed) this.stream.pause();
  }

  resumeResponse(): void {
    if (!this.done && this.stream && !this.stream.destroyed) this.stream.resume();
  }
}

export class Http2Pool implements ConnectionPool {
  activeRequests = 0;
  private readonly connections: H2Connection[] = [];
  private readonly queue: Http2Stream[] = [];
  private drainWaiters: (() => void)[] | undefined;

  constructor(
    readonly host: HostImpl,
    readonly settings: PoolSettings,
    /** A TLS socket already negotiated to h2 by ALPN (auto_config), adopted as the first connection. */
    private adopt?: UpstreamSocket,
  ) {}

  get connectionCount(): number {
    return this.connections.length;
  }

  private capacity(c: H2Connection): number {
    const remote = c.connected ? (c.session.remoteSettings.maxConcurrentStreams ?? Infinity) : Infinity;
    return Math.min(this.settings.maxConcurrentStreams, remote);
  }

  private usable(): H2Connection | undefined {
    for (const c of this.connections) if (!c.draining && c.active < this.capacity(c)) return c;
    return undefined;
  }

  newStream(headers: HttpHeaders, handler: UpstreamResponseHandler): UpstreamRequest {
    const s = this.settings;
    let conn = this.usable();
    const refused = admitRequest(s, handler, !conn || !conn.connected);
    if (refused) return refused;
    const stream = new Http2Stream(this, headers, handler);
    this.activeRequests++;
    countRequestStart(s, this.host.stats);
    enterPending(s, stream);
    if (!conn) {
      if (s.resources.connections < s.limits.maxConnections || this.connections.length === 0) conn = this.newConnection();
      else s.stats.upstream_cx_overflow++;
    }
    if (conn) this.attach(conn, stream);
    else this.queue.push(stream);
    return stream;
  }

  private attach(conn: H2Connection, stream: Http2Stream): void {
    conn.active++;
    conn.total++;
    stream.conn = conn;
    if (conn.idleTimer) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = undefined;
    }
    const max = this.settings.maxRequestsPerConnection;
    if (max > 0 && conn.total >= max) conn.draining = true;
    if (conn.connected) {
      this.leavePending(stream);
      stream.start(conn);
    } else {
      conn.waiting.push(stream);
    }
  }

  private leavePending(stream: Http2Stream): void {
    leavePending(this.settings, stream);
  }

  private newConnection(): H2Connection {
    const socket = this.adopt ?? connectUpstream(this.host, this.settings, this.settings.tls ? ['h2'] : undefined);
    const adopted = this.adopt !== undefined;
    this.adopt = undefined;
    const authority = `${this.settings.tls ? 'https' : 'http'}://${this.host.addressText}`;
    const session = h2connect(authority, { createConnection: (): Duplex => socket });
    const conn: H2Connection = { session, socket, connected: false, active: 0, total: 0, draining: false, waiting: [], idleTimer: undefined };
    this.connections.push(conn);
    const onConnected = (): void => {
      if (conn.connected) return;
      conn.connected = true;
      const waiting = conn.waiting;
      conn.waiting = [];
      for (const st of waiting) {
        if (st.done) continue;
        this.leavePending(st);
        st.start(conn);
      }
    };
    session.once('connect', onConnected);
    if (adopted) socket.connected = true;
    session.on('error', () => undefined);
    session.on('goaway', () => {
      conn.draining = true;
    });
    let socketClosed = false;
    socket.once('close', () => (socketClosed = true));
    const finalize = (): void => {
      const i = this.connections.indexOf(conn);
      if (i < 0) return;
      this.connections.splice(i, 1);
      if (conn.idleTimer) clearTimeout(conn.idleTimer);
      const failure = conn.connected ? 'remote_reset' : (socket[kConnectFailure] ?? 'connect_failure');
      for (const st of conn.waiting) st.fail(failure, `connection to ${this.host.addressText} failed`);
      conn.waiting = [];
      this.dispatchQueued();
      this.checkDrained();
    };
    // The connection is gone (and its counters released) only once both the session and its socket are closed.
    session.once('close', () => {
      if (socketClosed) return finalize();
      socket.once('close', finalize);
      if (!socket.destroyed) socket.destroy();
    });
    return conn;
  }

  finish(stream: Http2Stream, ok: boolean, failure?: UpstreamFailure): void {
    if (!countRequestEnd(this.settings, this.host.stats, stream, ok, failure)) return;
    this.activeRequests--;
    const q = this.queue.indexOf(stream);
    if (q >= 0) this.queue.splice(q, 1);
    const conn = stream.conn;
    if (conn) {
      const w = conn.waiting.indexOf(stream);
      if (w >= 0) conn.waiting.splice(w, 1);
      conn.active--;
      if (conn.active === 0) this.onIdle(conn);
    }
    if (this.queue.length > 0) process.nextTick(() => this.dispatchQueued());
  }

  private onIdle(conn: H2Connection): void {
    if (conn.draining || this.drainWaiters) {
      conn.session.close();
      return;
    }
    const idle = this.settings.idleTimeoutMs;
    if (idle > 0) {
      conn.idleTimer = setTimeout(() => {
        if (conn.active === 0) conn.session.close();
      }, idle);
      conn.idleTimer.unref();
    }
  }

  private dispatchQueued(): void {
    while (this.queue.length > 0) {
      let conn = this.usable();
      const s = this.settings;
      if (!conn) {
        if (s.resources.connections >= s.limits.maxConnections && this.connections.length > 0) return;
        conn = this.newConnection();
      }
      this.attach(conn, this.queue.shift()!);
    }
  }

  private checkDrained(): void {
    if (this.drainWaiters && this.activeRequests === 0 && this.connections.length === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  drain(): Promise<void> {
    return new Promise((resolve) => {
      (this.drainWaiters ??= []).push(resolve);
      for (const c of this.connections) {
        c.draining = true;
        if (c.active === 0) c.session.close();
      }
      this.checkDrained();
    });
  }

  destroy(): void {
    for (const st of [...this.queue]) st.abort();
    for (const c of [...this.connections]) c.session.destroy();
  }
}
