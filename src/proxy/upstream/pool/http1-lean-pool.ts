// HTTP/1.1 connection pool of one host over raw sockets: pool-owned keep-alive connections, one request at a time each.
//
// Hand-written because node:http's client was the bottleneck of the proxy's request path: under
// `npm run bench -- proxy --profile` its ClientRequest/IncomingMessage/Agent machinery took ~30% of Trellis's CPU at
// 4,000 req/s, plus per-request listener churn (~7%) and a second socket write per request (docs/performance.md). Here a
// request is one socket write (the head serialised straight from HttpHeaders, body appended when it is known to be
// empty), responses are parsed by Node's own llhttp binding (`HTTPParser` from node:_http_common, the parser node:http
// uses; one per connection, reused across requests) and every listener is attached once per connection. Measured with
// /tmp-style quick loops and the full bench: see docs/performance.md, "What we tried".
import { addHeaderLine, invalidHeaderValue, type HttpHeaders } from '../../http/headers.js';
import { HTTPParser, type LlhttpError, type LlhttpParser, type StreamHandle } from '../../http/llhttp.js';
import type { HostImpl } from '../host.js';
import type { UpstreamFailure, UpstreamRequest, UpstreamResponseHandler } from '../types.js';
import { connectUpstream, kConnectFailure, kUpstreamTlsIdentity, type UpstreamSocket } from './connect.js';
import { ConnectionWriter } from '../../http/direct-write.js';
import {
  admitRequest,
  countRequestEnd,
  countRequestStart,
  countStatus,
  enterPending,
  leavePending,
  type ConnectionPool,
  type PoolSettings,
} from './connection-pool.js';

/** Methods that carry no body unless they say so (node:http's useChunkedEncodingByDefault = false). */
const NO_DEFAULT_BODY = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
/** Safe to send again on a fresh connection when a reused one closed before any response byte (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const CRLF = '\r\n';
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

interface HeaderLines {
  readonly text: string;
  readonly hasLength: boolean;
  readonly hasHost: boolean;
}

/**
 * The request's header lines (pseudo-headers, transfer-encoding and connection left out: framing is the pool's), in
 * one pass that also refuses values which would split the head (CR, LF, NUL) — node:http's ERR_INVALID_CHAR.
 */
function headerLines(h: HttpHeaders): HeaderLines {
  let text = '';
  let hasLength = false;
  let hasHost = false;
  for (const name in h) {
    const v = h[name];
    if (v === undefined) continue;
    if (typeof v === 'string') {
      if (invalidHeaderValue(v)) invalidChar(name);
    } else if (v.some((one) => invalidHeaderValue(one))) invalidChar(name);
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (name === 'content-length') hasLength = true;
    else if (name === 'host') hasHost = true;
    else if (name === 'transfer-encoding' || name === 'connection') continue;
    if (typeof v === 'string') text += `${name}: ${v}\r\n`;
    else for (const one of v) text += `${name}: ${one}\r\n`;
  }
  return { text, hasLength, hasHost };
}

function invalidChar(name: string): never {
  throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), { code: 'ERR_INVALID_CHAR' });
}

/**
 * The header names of the last response on a connection, when none repeated (and none is set-cookie, which is a list):
 * an upstream sends the same names in the same order response after response, and for those the lower-case names are
 * known and each value is a plain store. Building the object name by name with a look-up for repeats went through
 * V8's megamorphic keyed load (a miss walks the prototype chain) per header: ~1.5% of the proxy's CPU
 * (docs/performance.md, step 14).
 */
interface HeaderShape {
  readonly raw: readonly string[];
  readonly names: readonly string[];
}

function sameNames(shape: HeaderShape, raw: readonly string[]): boolean {
  const prev = shape.raw;
  if (prev.length !== raw.length) return false;
  for (let i = 0; i < raw.length; i += 2) if (prev[i] !== raw[i]) return false;
  return true;
}

class LeanStream implements UpstreamRequest {
  done = false;
  pending = false;
  conn: LeanConnection | undefined;
  /** The request head went out (on the first body write or on end). */
  headSent = false;
  ended = false;
  /** The head and every body byte were handed to the socket. */
  requestComplete = false;
  chunked = false;
  bodyBytes = 0;
  responseBytes = false;
  /**
   * Given its connection inside the parse that ended the previous response (a queued request, or one the previous
   * response's handler sent at once): the bytes of that parse are not its response's.
   */
  assignedMidParse = false;
  retried = false;
  head = false;
  readonly method: string;
  private queued: Buffer[] | undefined;
  private trailers: HttpHeaders | undefined;
  drainCallback: (() => void) | undefined;

  constructor(
    readonly pool: Http1LeanPool,
    readonly headers: HttpHeaders,
    readonly handler: UpstreamResponseHandler,
    /** The header lines, serialised (and checked) once when the request was made. */
    private readonly lines: HeaderLines,
  ) {
    this.method = (headers[':method'] as string | undefined) ?? 'GET';
    this.head = this.method === 'HEAD';
  }

  /** The connection is ours: send what the router already gave us. */
  attach(conn: LeanConnection): void {
    this.conn = conn;
    this.headSent = false;
    this.requestComplete = false;
    const queued = this.queued;
    this.queued = undefined;
    if (queued) for (const chunk of queued) this.write(chunk);
    if (this.ended) this.finishRequest();
    if (this.drainCallback && !this.ended) {
      const cb = this.drainCallback;
      this.drainCallback = undefined;
      queueMicrotask(cb);
    }
  }

  /** Serialises the request line and headers; `knownEmpty` when the request ended before any body byte. */
  private serializeHead(knownEmpty: boolean): string {
    const h = this.headers;
    const conn = this.conn!;
    const lines = this.lines;
    let head = `${this.method} ${(h[':path'] as string | undefined) ?? '/'} HTTP/1.1\r\n${lines.text}`;
    if (!lines.hasHost) head += `host: ${(h[':authority'] as string | undefined) ?? ''}\r\n`;
    if (!lines.hasLength) {
      if (!knownEmpty) {
        head += 'transfer-encoding: chunked\r\n';
        this.chunked = true;
      } else if (!NO_DEFAULT_BODY.has(this.method)) {
        head += 'content-length: 0\r\n';
      }
    }
    if (conn.last) head += 'connection: close\r\n';
    return head + CRLF;
  }

  write(chunk: Buffer): boolean {
    if (this.done || chunk.length === 0) return true;
    const conn = this.conn;
    if (!conn) {
      (this.queued ??= []).push(chunk);
      return false;
    }
    this.bodyBytes += chunk.length;
    const socket = conn.socket;
    if (!this.headSent) {
      this.headSent = true;
      // Head and first chunk in one writev.
      socket.cork();
      socket.write(this.serializeHead(false), 'latin1');
      const ok = this.writeBody(chunk);
      socket.uncork();
      return ok;
    }
    return this.writeBody(chunk);
  }

  private writeBody(chunk: Buffer): boolean {
    const socket = this.conn!.socket;
    if (!this.chunked) return this.conn!.send(chunk);
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    return socket.write(CRLF, 'latin1');
  }

  end(trailers?: HttpHeaders): void {
    if (this.done || this.ended) return;
    this.ended = true;
    this.trailers = trailers;
    if (this.conn) this.finishRequest();
  }

  private finishRequest(): void {
    const socket = this.conn!.socket;
    if (!this.headSent) {
      this.headSent = true;
      this.conn!.send(this.serializeHead(true));
    } else if (this.chunked) {
      let tail = '';
      const t = this.trailers;
      if (t) {
        for (const name in t) {
          const v = t[name];
          if (v === undefined || name.charCodeAt(0) === 58) continue;
          for (const one of typeof v === 'string' ? [v] : v) if (!invalidHeaderValue(one)) tail += `${name}: ${one}\r\n`;
        }
      }
      socket.write(tail ? `0\r\n${tail}\r\n` : LAST_CHUNK, 'latin1');
    }
    this.requestComplete = true;
  }

  abort(): void {
    if (this.done) return;
    this.pool.finish(this, false, 'local_reset');
  }

  onDrain(callback: () => void): void {
    // Called by the connection's 'drain' listener, or when a queued request gets its connection.
    this.drainCallback = callback;
  }

  pauseResponse(): void {
    if (!this.done) this.conn?.pauseReads();
  }

  resumeResponse(): void {
    if (!this.done) this.conn?.resumeReads();
  }
}

/** One upstream connection: its socket, its parser, and the stream it serves now (if any). */
class LeanConnection {
  readonly parser: LlhttpParser;
  stream: LeanStream | undefined;
  uses = 0;
  /** This request is the connection's last (max_requests_per_connection): sent with `connection: close`. */
  last = false;
  keepAlive = true;
  /** The current response is 1xx (informational): its message end is not the response's end. */
  informational = false;
  closed = false;
  private partialHeaders: string[] = [];
  private status = 0;
  /** The header names of the last response, for the next one (see responseHeaders). */
  private headerShape: HeaderShape | undefined;
  /** A response ended inside the parse under way: a stream assigned now is assigned mid-parse (see afterExecute). */
  completedInParse = false;
  /** Body bytes still to come of a Content-Length response that ends at its last byte (see onHeadersComplete). */
  private bodyLeft = 0;
  /** llhttp's message-complete callback; unset on the parser for a response whose end onBody or the head tells. */
  private readonly messageComplete = (): void => this.onMessageComplete();
  /** The socket's handle when llhttp consumes it directly (plain TCP). */
  private handle: StreamHandle | undefined;
  /** A response began while no request was waiting for one. */
  private unsolicited = false;
  /** Date.now() when the last response ended: direct writes and consumed reads do not refresh the socket's timer. */
  lastUsed = 0;
  /** Flags a response that begins while no request waits for one (set on the parser only while idle, see watchIdle). */
  private readonly onIdleMessageBegin = (): void => {
    this.unsolicited = true;
  };
  /** Writes on the consumed handle past the Writable layer when nothing is queued (direct-write.ts). */
  private readonly writer: ConnectionWriter;

  constructor(
    readonly pool: Http1LeanPool,
    readonly socket: UpstreamSocket,
  ) {
    this.writer = new ConnectionWriter(socket, () => this.onDrain());
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone);
    parser[HTTPParser.kOnHeaders] = (headers: string[]) => {
      for (let i = 0; i < headers.length; i++) this.partialHeaders.push(headers[i]!);
    };
    parser[HTTPParser.kOnHeadersComplete] = (
      _major: number, _minor: number, headers: string[] | undefined, _method: unknown, _url: unknown,
      status: number, _message: string, upgrade: boolean, shouldKeepAlive: boolean,
    ): number => this.onHeadersComplete(headers, status, upgrade, shouldKeepAlive);
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
      const s = this.stream;
      if (!s || s.done) return;
      s.handler.onData(chunk);
      // The last byte of a Content-Length body ends the response here (llhttp's own message-complete call is unset).
      if (this.bodyLeft > 0 && (this.bodyLeft -= chunk.length) <= 0 && this.stream === s) this.onMessageComplete();
    };
    parser[HTTPParser.kOnMessageComplete] = this.messageComplete;
    this.parser = parser;
    const handle = (socket as UpstreamSocket & { _handle?: StreamHandle | null })._handle;
    if (handle?.isStreamBase && !handle._consumed && !('encrypted' in socket && socket.encrypted)) {
      // Plain TCP: llhttp reads the handle itself, as node:http's server does downstream (no Buffer, Readable and
      // 'data' event per read); each parse is reported through kOnExecute, EOF still reaches the socket.
      handle._consumed = true;
      this.handle = handle;
      parser[HTTPParser.kOnExecute] = (ret: number | LlhttpError) => this.afterExecute(ret);
      parser.consume(handle);
    } else {
      socket.on('data', (data: Buffer) => this.onData(data));
    }
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.onDrain());
    socket.on('timeout', () => {
      // Inactivity on an idle connection: common_http_protocol_options.idle_timeout. Consumed reads and direct writes
      // do not refresh the socket's timer, so a busy connection, or one used since, re-arms it for what is left.
      const left = pool.settings.idleTimeoutMs - (Date.now() - this.lastUsed);
      if (!this.stream && left < 1) socket.destroy();
      else socket.setTimeout(this.stream ? pool.settings.idleTimeoutMs : left);
    });
    if (pool.settings.idleTimeoutMs > 0) socket.setTimeout(pool.settings.idleTimeoutMs);
  }

  private onDrain(): void {
    const cb = this.stream?.drainCallback;
    if (cb) {
      this.stream!.drainCallback = undefined;
      cb();
    }
  }

  /**
   * Writes request bytes (a string as latin1): straight to the consumed handle when nothing is queued in front
   * (direct-write.ts), else through the socket. False when the caller should wait for its drain callback.
   */
  send(data: Buffer | string): boolean {
    return this.writer.send(this.handle, data);
  }

  pauseReads(): void {
    const handle = this.handle;
    if (!handle) this.socket.pause();
    else if (handle.reading && !this.closed) {
      // A consumed handle ignores the stream's pause(): stop its reads directly.
      handle.reading = false;
      handle.readStop();
    }
  }

  resumeReads(): void {
    const handle = this.handle;
    if (!handle) {
      if (this.socket.isPaused()) this.socket.resume();
    } else if (!handle.reading && !this.closed) {
      handle.reading = true;
      handle.readStart();
    }
  }

  /**
   * While idle, a message begin means an unsolicited response. The callback is on the parser only then: node calls a
   * parser callback only when it is set, and each call from C++ into JavaScript is a fixed cost per request otherwise.
   */
  watchIdle(idle: boolean): void {
    if (this.handle) this.parser[HTTPParser.kOnMessageBegin] = idle ? this.onIdleMessageBegin : undefined;
  }

  private afterExecute(ret: number | LlhttpError): void {
    if (this.closed) return;
    const s = this.stream;
    if (s) {
      // Bytes were parsed for the current request (its response began), unless it got the connection inside this
      // parse, after the response before it ended: then the bytes were that response's.
      if (s.assignedMidParse) s.assignedMidParse = false;
      else if (typeof ret === 'number' && ret > 0) s.responseBytes = true;
    }
    this.completedInParse = false;
    if (this.unsolicited) {
      // A response nobody asked for: the connection cannot be trusted with a next request.
      this.socket.destroy();
      return;
    }
    this.parsed(ret);
  }

  private onData(data: Buffer): void {
    const stream = this.stream;
    if (!stream) {
      // Bytes nobody asked for: the connection cannot be trusted with a next request.
      this.socket.destroy();
      return;
    }
    stream.responseBytes = true;
    const ret = this.parser.execute(data);
    this.completedInParse = false;
    this.parsed(ret);
  }

  private parsed(ret: number | LlhttpError): void {
    if (typeof ret !== 'number') {
      this.keepAlive = false;
      const s = this.stream;
      if (s && !s.done) this.pool.fail(s, 'protocol_error', `malformed upstream response: ${ret.code ?? ret.message}`);
      this.socket.destroy();
    }
  }

  private onHeadersComplete(headers: string[] | undefined, status: number, upgrade: boolean, shouldKeepAlive: boolean): number {
    let raw = headers;
    if (raw === undefined) {
      raw = this.partialHeaders;
      this.partialHeaders = [];
    } else if (this.partialHeaders.length > 0) {
      raw = this.partialHeaders.concat(raw);
      this.partialHeaders = [];
    }
    // Until this head says otherwise, llhttp reports the message's end (1xx, unsolicited, upgrade, no length).
    this.parser[HTTPParser.kOnMessageComplete] = this.messageComplete;
    this.bodyLeft = 0;
    const stream = this.stream;
    if (!stream || stream.done) return 1;
    if (status < 200 && status !== 101) {
      // 100-continue and other informational responses: swallowed, as by node:http and Envoy.
      this.informational = true;
      return 0;
    }
    if (upgrade) {
      // The pool does not tunnel (WebSocket goes through the router's own tunnel): the connection is unusable.
      this.keepAlive = false;
      this.pool.fail(stream, 'protocol_error', `unexpected upgrade response ${status}`);
      this.socket.destroy();
      return 2;
    }
    this.informational = false;
    this.status = status;
    stream.responseBytes = true;
    if (!shouldKeepAlive) this.keepAlive = false;
    const out = this.responseHeaders(raw);
    out[':status'] = String(status);
    countStatus(this.pool.settings.stats, status);
    // A Content-Length response (not to HEAD, not 204/304, which have no body whatever they say) ends at its last body
    // byte: onBody or, for length 0, this callback ends it, and llhttp's message-complete callback stays unset for it,
    // since node calls a parser callback only when one is set and each call from C++ into JavaScript is a fixed cost
    // per request. Chunked and close-delimited bodies keep the callback (their end, their trailers).
    // llhttp has already refused a Content-Length that is not one decimal number (kLenientNone).
    const length = out['content-length'];
    let endsAt = -1;
    if (!stream.head && status !== 204 && status !== 304 && out['transfer-encoding'] === undefined && typeof length === 'string') {
      const n = Number(length);
      if (Number.isSafeInteger(n) && n >= 0) endsAt = n;
    }
    if (endsAt >= 0) {
      this.bodyLeft = endsAt;
      this.parser[HTTPParser.kOnMessageComplete] = undefined;
    }
    const identity = this.socket[kUpstreamTlsIdentity];
    if (identity) stream.handler.onUpstreamTls?.(identity);
    stream.handler.onHeaders(status, out);
    if (endsAt === 0 && this.stream === stream) this.onMessageComplete();
    // A response to HEAD has no body whatever its headers say.
    return stream.head ? 1 : 0;
  }

  /** Response headers from llhttp's flat [name, value, …] list, with node:http's folding of repeats (see HeaderShape). */
  private responseHeaders(raw: readonly string[]): HttpHeaders {
    const out: HttpHeaders = {};
    const shape = this.headerShape;
    if (shape && sameNames(shape, raw)) {
      const names = shape.names;
      for (let i = 0, j = 0; i < raw.length; i += 2, j++) out[names[j]!] = raw[i + 1]!;
      return out;
    }
    const names: string[] = [];
    let repeats = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      names.push(name);
      if (addHeaderLine(out, name, raw[i + 1]!)) repeats = true;
    }
    this.headerShape = repeats || out['set-cookie'] !== undefined ? undefined : { raw, names };
    return out;
  }

  private onMessageComplete(): void {
    const trailerFields = this.partialHeaders;
    this.partialHeaders = [];
    if (this.informational) {
      this.informational = false;
      return;
    }
    const stream = this.stream;
    if (!stream || stream.done || this.status === 0) return;
    this.status = 0;
    const handler = stream.handler;
    if (trailerFields.length > 0 && handler.onTrailers) {
      const trailers: HttpHeaders = {};
      for (let i = 0; i < trailerFields.length; i += 2) addHeaderLine(trailers, trailerFields[i]!.toLowerCase(), trailerFields[i + 1]!);
      handler.onTrailers(trailers);
    }
    this.completedInParse = true;
    // Reusable only if the request went out whole and neither side asked to close.
    const reusable = this.keepAlive && !this.last && stream.requestComplete && stream.ended;
    this.pool.complete(stream, this, reusable);
    handler.onEnd();
  }

  private onEnd(): void {
    // EOF: ends a response delimited by the connection's close, or interrupts one.
    if (this.stream && !this.stream.done) {
      const err = this.parser.finish();
      if (err && this.stream && !this.stream.done) this.lost();
    }
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.stream && !this.stream.done) {
      if (this.pool.isDestroyed) this.pool.fail(this.stream, 'local_reset', 'connection pool destroyed');
      else this.lost();
    }
    this.stream = undefined;
    try {
      if (this.handle) {
        this.handle = undefined;
        this.parser.unconsume();
      }
      this.parser.close();
    } catch {
      // already freed
    }
    this.pool.onConnectionClosed(this);
  }

  /** The connection went away under a request. */
  private lost(): void {
    const stream = this.stream!;
    this.stream = undefined;
    const socket = this.socket;
    if (!socket.connected) {
      this.pool.fail(stream, socket[kConnectFailure] ?? 'connect_failure', `connection to ${this.pool.host.addressText} failed`);
      return;
    }
    // A kept-alive connection the upstream closed as we reused it: nothing of the response arrived, so an
    // idempotent request without a body can go once more on a fresh connection (node:http reports ECONNRESET here).
    if (this.uses > 1 && !stream.responseBytes && !stream.retried && stream.bodyBytes === 0 && IDEMPOTENT.has(stream.method)) {
      stream.retried = true;
      stream.conn = undefined;
      stream.headSent = false;
      this.pool.redispatch(stream);
      return;
    }
    this.pool.fail(stream, 'remote_reset', 'upstream connection closed before the response ended');
  }
}

export class Http1LeanPool implements ConnectionPool {
  activeRequests = 0;
  connectionCount = 0;
  /** Idle keep-alive connections, most recently used last (LIFO: warm connections stay warm). */
  private readonly idle: LeanConnection[] = [];
  /** Every open connection (connecting, busy or idle). */
  private readonly connections = new Set<LeanConnection>();
  /** Requests waiting for a connection under max_connections. */
  private readonly queue: LeanStream[] = [];
  private drainWaiters: (() => void)[] | undefined;
  private destroyed = false;

  constructor(
    readonly host: HostImpl,
    readonly settings: PoolSettings,
    /** A TLS socket already negotiated to HTTP/1.1 by ALPN (auto_config), used as the first connection. */
    private adopt?: UpstreamSocket,
  ) {}

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  newStream(headers: HttpHeaders, handler: UpstreamResponseHandler): UpstreamRequest {
    const s = this.settings;
    const needsConnection = this.idle.length === 0;
    const refused = admitRequest(s, handler, needsConnection);
    if (refused) return refused;
    // Throws (ERR_INVALID_CHAR) before anything is counted, as node:http's request does.
    const lines = headerLines(headers);
    const stream = new LeanStream(this, headers, handler, lines);
    this.activeRequests++;
    countRequestStart(s, this.host.stats);
    this.dispatch(stream);
    return stream;
  }

  /** Gives `stream` an idle connection, a new one, or a place in the queue (max_connections). */
  private dispatch(stream: LeanStream): void {
    const idle = this.idle.pop();
    if (idle) {
      this.assign(idle, stream);
      return;
    }
    const s = this.settings;
    enterPending(s, stream);
    if (s.resources.connections < s.limits.maxConnections || this.connectionCount === 0) {
      this.assign(this.connect(), stream);
    } else {
      s.stats.upstream_cx_overflow++;
      this.queue.push(stream);
    }
  }

  redispatch(stream: LeanStream): void {
    if (stream.done) return;
    this.dispatch(stream);
  }

  private connect(): LeanConnection {
    const socket = this.adopt ?? connectUpstream(this.host, this.settings);
    this.adopt = undefined;
    this.connectionCount++;
    const conn = new LeanConnection(this, socket);
    this.connections.add(conn);
    if (!socket.connected) {
      socket.once('encrypted' in socket && socket.encrypted ? 'secureConnect' : 'connect', () => {
        const st = conn.stream;
        if (st) leavePending(this.settings, st);
      });
    }
    return conn;
  }

  private assign(conn: LeanConnection, stream: LeanStream): void {
    conn.stream = stream;
    conn.watchIdle(false);
    stream.assignedMidParse = conn.completedInParse;
    conn.uses++;
    const max = this.settings.maxRequestsPerConnection;
    conn.last = max > 0 && conn.uses >= max;
    if (conn.socket.connected) leavePending(this.settings, stream);
    stream.attach(conn);
  }

  /** The response ended: count it and keep the connection for the next request, or close it. */
  complete(stream: LeanStream, conn: LeanConnection, reusable: boolean): void {
    conn.stream = undefined;
    conn.lastUsed = Date.now();
    countRequestEnd(this.settings, this.host.stats, stream, true);
    this.activeRequests--;
    if (reusable && !this.destroyed && !this.drainWaiters) this.release(conn);
    else conn.socket.destroy();
    if (this.drainWaiters && this.activeRequests === 0) process.nextTick(() => this.closeIdle());
  }

  private release(conn: LeanConnection): void {
    conn.resumeReads();
    const next = this.queue.shift();
    if (next) {
      this.assign(conn, next);
    } else {
      this.idle.push(conn);
      conn.watchIdle(true);
    }
  }

  /** Ends `stream` with a failure (reported to its handler) and closes its connection. */
  fail(stream: LeanStream, failure: UpstreamFailure, detail: string): void {
    if (!this.end(stream, failure)) return;
    stream.handler.onFailure(failure, detail);
  }

  finish(stream: LeanStream, _ok: false, failure: UpstreamFailure): void {
    this.end(stream, failure);
  }

  private end(stream: LeanStream, failure: UpstreamFailure): boolean {
    if (!countRequestEnd(this.settings, this.host.stats, stream, false, failure)) return false;
    this.activeRequests--;
    const queued = this.queue.indexOf(stream);
    if (queued >= 0) this.queue.splice(queued, 1);
    const conn = stream.conn;
    if (conn && conn.stream === stream) {
      // Mid-request: the connection's state is unknown, it cannot carry another request.
      conn.stream = undefined;
      conn.socket.destroy();
    }
    if (this.drainWaiters && this.activeRequests === 0) process.nextTick(() => this.closeIdle());
    return true;
  }

  onConnectionClosed(conn: LeanConnection): void {
    this.connectionCount--;
    this.connections.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    // A slot under max_connections opened: the first queued request gets a new connection.
    const s = this.settings;
    while (this.queue.length > 0 && !this.destroyed && (s.resources.connections < s.limits.maxConnections || this.connectionCount === 0)) {
      const next = this.queue.shift()!;
      this.assign(this.connect(), next);
    }
    this.checkDrained();
  }

  /** Draining: idle connections close now (Envoy, for a removed host or cluster); busy ones after their response (complete). */
  private closeIdle(): void {
    for (const conn of this.idle.splice(0)) conn.socket.destroy();
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.drainWaiters && this.activeRequests === 0 && this.connectionCount === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  drain(): Promise<void> {
    return new Promise((resolve) => {
      (this.drainWaiters ??= []).push(resolve);
      this.closeIdle();
    });
  }

  destroy(): void {
    this.destroyed = true;
    for (const stream of this.queue.splice(0)) this.fail(stream, 'local_reset', 'connection pool destroyed');
    this.idle.length = 0;
    for (const conn of [...this.connections]) {
      if (conn.stream) this.fail(conn.stream, 'local_reset', 'connection pool destroyed');
      conn.socket.destroy();
    }
    this.adopt?.destroy();
    this.adopt = undefined;
  }
}
