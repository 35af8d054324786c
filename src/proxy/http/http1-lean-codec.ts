// HTTP/1.1 downstream codec on raw sockets with Node's llhttp binding: keep-alive, pipelining, chunked, 100-continue,
// Upgrade, header limits, smuggling refusals, request_headers_timeout and idle_timeout, one socket write per response.
//
// Hand-written because node:http's server was measured as a large share of the proxy's request path (docs/performance.md:
// IncomingMessage/ServerResponse and their streams, listeners per request, the head and the body as two writes). Here
// the parser is the same llhttp node:http uses (strict mode, so the same smuggling and limit errors), one per
// connection and reused; listeners are attached once per connection; a response head waits for the first body chunk
// so both leave in one write. TRELLIS_DOWNSTREAM_HTTP1_CODEC=node selects the node:http codec (http1-codec.ts).
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HOP_BY_HOP_HEADERS, addHeaderLine, invalidHeaderValue, type HttpHeaders } from './headers.js';
import type { DownstreamCodec, DownstreamConnectionInfo, RequestBodySink, ServerStream } from './server-stream.js';
import type { DownstreamCodecOptions, DownstreamProtocolError } from './codec-options.js';
import type { HttpProtocol } from './stream-info.js';
import { HTTPParser, LLHTTP_METHODS, type LlhttpError, type LlhttpParser, type StreamHandle } from './llhttp.js';
import { UpgradeStream, classifyParseError, httpDate, LOCAL_ERROR_STATUS, protocolErrorResponse } from './http1-common.js';
import { ConnectionWriter } from './direct-write.js';


/** Above this a body chunk goes in its own (corked) write instead of being copied behind the head. */
const COPY_LIMIT = 16 * 1024;
/** Body bytes held for a stream whose sink is not set yet (a filter paused, or a pipelined request) before reads stop. */
const QUEUE_LIMIT = 64 * 1024;
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const LAST_CHUNK = '0\r\n\r\n';


class LeanServerStream implements ServerStream {
  readonly protocol: HttpProtocol;
  readonly headers: HttpHeaders;
  readonly headerCount: number;
  readonly headerBytes = 0;
  connectionHeader: string | undefined;
  headersSent = false;
  /** The request's message ended (llhttp's message complete). */
  requestComplete = false;
  dispatched = false;
  expectContinue = false;
  /** The response ended or the stream was reset: later calls do nothing. */
  finished = false;
  /** The connection closes after this response (connection: close, HTTP/1.0, drain, or a close-delimited body). */
  closeAfter = false;
  drainCallback: (() => void) | undefined;
  private sink: RequestBodySink | undefined;
  private queued: Buffer[] | undefined;
  private queuedBytes = 0;
  private trailers: HttpHeaders | undefined;
  private resetCallback: (() => void) | undefined;
  private resetFired = false;
  /** The response head, kept until the first body chunk (or the end) so both go in one write. */
  private pendingHead: string | undefined;
  private chunked = false;
  /** HEAD, 1xx, 204, 304: no body bytes whatever the router writes. */
  private noBody = false;

  constructor(
    private readonly conn: LeanServerConnection,
    headers: HttpHeaders,
    headerCount: number,
    http10: boolean,
    readonly keepAlive: boolean,
  ) {
    this.headers = headers;
    this.headerCount = headerCount;
    this.protocol = http10 ? 'HTTP/1.0' : 'HTTP/1.1';
  }

  // --- request side (called by the connection as llhttp parses) ---

  onBody(chunk: Buffer): void {
    if (this.finished) return; // the response already ended: the rest of the body is read and dropped
    const sink = this.sink;
    if (sink) {
      sink.onData(chunk);
      return;
    }
    (this.queued ??= []).push(chunk);
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > QUEUE_LIMIT) this.conn.pauseRead(1);
  }

  onMessageComplete(trailers: HttpHeaders | undefined): void {
    this.requestComplete = true;
    this.trailers = trailers;
    if (this.sink && !this.finished) this.sink.onEnd(trailers);
  }

  setBodySink(sink: RequestBodySink): void {
    this.sink = sink;
    const queued = this.queued;
    if (queued) {
      this.queued = undefined;
      this.queuedBytes = 0;
      this.conn.resumeRead(1);
      for (const chunk of queued) {
        if (this.finished) return;
        sink.onData(chunk);
      }
    }
    if (this.requestComplete && !this.finished) sink.onEnd(this.trailers);
  }
  pauseBody(): void {
    if (!this.finished) this.conn.pauseRead(2);
  }
  resumeBody(): void {
    this.conn.resumeRead(2);
  }
  onReset(callback: () => void): void {
    this.resetCallback = callback;
  }

  /** The connection went away (or failed to parse) before this response ended. */
  abandon(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.dispatched && !this.resetFired) {
      this.resetFired = true;
      this.resetCallback?.();
    }
  }

  // --- response side ---

  respond(status: number, headers: HttpHeaders, endStream: boolean): void {
    if (this.headersSent || this.finished) return;
    this.headersSent = true;
    const conn = this.conn;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let hasLength = false;
    let hasDate = false;
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined || name.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP_HEADERS.has(name)) continue;
      if (name === 'content-length') hasLength = true;
      else if (name === 'date') hasDate = true;
      if (typeof v === 'string') {
        if (invalidHeaderValue(v)) return this.invalidHeader();
        head += `${name}: ${v}\r\n`;
      } else {
        for (const one of v) {
          if (invalidHeaderValue(one)) return this.invalidHeader();
          head += `${name}: ${one}\r\n`;
        }
      }
    }
    let close = !this.keepAlive || conn.closeAfterResponse;
    this.noBody = this.headers[':method'] === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (!hasLength && !this.noBody) {
      // Envoy's framing: a headers-only response says content-length: 0; a streamed one is chunked (HTTP/1.1) or,
      // for HTTP/1.0, delimited by the connection's close.
      if (endStream) head += 'content-length: 0\r\n';
      else if (this.protocol === 'HTTP/1.1') {
        head += 'transfer-encoding: chunked\r\n';
        this.chunked = true;
      } else close = true;
    }
    if (!hasDate) head += `date: ${httpDate()}\r\n`;
    if (close) head += 'connection: close\r\n';
    else if (this.protocol === 'HTTP/1.0') head += 'connection: keep-alive\r\n';
    this.closeAfter = close;
    head += '\r\n';
    if (endStream) {
      conn.send(head);
      this.finish();
    } else {
      this.pendingHead = head;
    }
  }

  private invalidHeader(): void {
    // node:http throws ERR_INVALID_CHAR here; a header that would split the response cannot be sent: reset.
    this.reset();
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.noBody || chunk.length === 0) return true;
    const socket = this.conn.socket;
    const n = chunk.length;
    let head = this.pendingHead;
    if (head === undefined) {
      if (!this.chunked) return this.conn.send(chunk);
      socket.cork();
      socket.write(`${n.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      const ok = socket.write('\r\n', 'latin1');
      socket.uncork();
      return ok;
    }
    this.pendingHead = undefined;
    if (this.chunked) head += `${n.toString(16)}\r\n`;
    if (n <= COPY_LIMIT) {
      // Head and body in one buffer: one write, one syscall.
      const hl = head.length;
      const tail = this.chunked ? 2 : 0;
      const buf = Buffer.allocUnsafe(hl + n + tail);
      buf.write(head, 0, 'latin1');
      chunk.copy(buf, hl);
      if (tail) {
        buf[hl + n] = 13;
        buf[hl + n + 1] = 10;
      }
      return this.conn.send(buf);
    }
    socket.cork();
    socket.write(head, 'latin1');
    socket.write(chunk);
    const ok = this.chunked ? socket.write('\r\n', 'latin1') : true;
    socket.uncork();
    return ok && !socket.writableNeedDrain;
  }

  onDrain(callback: () => void): void {
    this.drainCallback = callback;
  }

  end(trailers?: HttpHeaders): void {
    if (this.finished) return;
    let tail: string | undefined;
    if (this.chunked) {
      tail = LAST_CHUNK;
      if (trailers) {
        let fields = '';
        for (const name in trailers) {
          const v = trailers[name];
          if (v === undefined || name.charCodeAt(0) === 58) continue;
          for (const one of typeof v === 'string' ? [v] : v) if (!invalidHeaderValue(one)) fields += `${name}: ${one}\r\n`;
        }
        if (fields) tail = `0\r\n${fields}\r\n`;
      }
    }
    const head = this.pendingHead;
    if (head !== undefined) {
      this.pendingHead = undefined;
      this.conn.send(tail ? head + tail : head);
    } else if (tail) {
      this.conn.send(tail);
    }
    this.finish();
  }

  private finish(): void {
    this.finished = true;
    this.conn.responseDone(this);
  }

  reset(): void {
    if (this.finished) return;
    this.finished = true;
    this.resetFired = true;
    this.conn.socket.destroy();
  }

  closeConnectionAfterResponse(): void {
    this.conn.closeAfterResponse = true;
  }
}

/** One downstream connection: its parser, the requests parsed and not yet answered (in order), its timers. */
class LeanServerConnection {
  readonly parser: LlhttpParser;
  /** Requests in arrival order; the first is the one being answered (responses go out in request order). */
  private readonly streams: LeanServerStream[] = [];
  /** The request whose message is being parsed (headers done, body still arriving). */
  private parsing: LeanServerStream | undefined;
  private partialHeaders: string[] = [];
  private partialUrl = '';
  private executing = false;
  private dispatching = false;
  private closed = false;
  /** After a request without keep-alive, an upgrade or a parse error, bytes are not parsed any more. */
  private stopParsing = false;
  closeAfterResponse: boolean;
  /** Why reads are paused: 1 a stream's queued body, 2 the router's back-pressure (bit flags). */
  private pausedBy = 0;
  private upgradeRequest: { headers: HttpHeaders; count: number; connection: string | undefined } | undefined;
  private headersTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Date.now() when the connection last became idle: the idle timer re-arms itself for what is left (see onIdleTimeout). */
  private idleSince = 0;
  private readonly scheme: string;
  /** The socket's handle when llhttp consumes it directly (plain TCP). */
  private handle: StreamHandle | undefined;
  private parseFailed = false;
  /** Writes on the consumed handle past the Writable layer when nothing is queued (direct-write.ts). */
  private readonly writer: ConnectionWriter;
  /** llhttp's message-complete callback; unset on the parser for a request whose head says it has no body. */
  private readonly messageComplete = (): void => this.onMessageComplete();

  constructor(
    private readonly codec: Http1LeanCodec,
    readonly socket: Duplex,
    readonly info: DownstreamConnectionInfo,
  ) {
    this.writer = new ConnectionWriter(socket, () => this.onDrain());
    const options = codec.options;
    this.scheme = info.tls ? 'https' : 'http';
    this.closeAfterResponse = codec.draining;
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.REQUEST, {}, options.maxRequestHeadersKb * 1024, HTTPParser.kLenientNone);
    parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      for (let i = 0; i < headers.length; i++) this.partialHeaders.push(headers[i]!);
      if (!this.parsing) this.partialUrl += url;
    };
    parser[HTTPParser.kOnHeadersComplete] = (
      _major: number, minor: number, headers: string[] | undefined, method: number, url: string,
      _status: number, _message: string, upgrade: boolean, shouldKeepAlive: boolean,
    ): number => this.onHeadersComplete(minor, headers, method, url, upgrade, shouldKeepAlive);
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => this.parsing?.onBody(chunk);
    parser[HTTPParser.kOnMessageComplete] = this.messageComplete;
    if (options.requestHeadersTimeoutMs > 0) {
      // request_headers_timeout runs from a request's first byte to its last header byte (only when configured).
      parser[HTTPParser.kOnMessageBegin] = () => {
        if (!this.headersTimer) (this.headersTimer = setTimeout(() => this.onHeadersTimeout(), options.requestHeadersTimeoutMs)).unref();
        else this.headersTimer.refresh();
      };
    }
    this.parser = parser;
    socket.on('end', () => this.onEnd());
    socket.on('error', () => {}); // 'close' follows; the streams learn of it there
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.onDrain());
    this.idleSince = Date.now();
    if (options.idleTimeoutMs > 0) this.armIdleTimer(options.idleTimeoutMs);
  }

  private armIdleTimer(ms: number): void {
    (this.idleTimer = setTimeout(() => this.onIdleTimeout(), ms)).unref();
  }

  private onDrain(): void {
    const s = this.streams[0];
    const cb = s?.drainCallback;
    if (cb) {
      s.drainCallback = undefined;
      cb();
    }
  }

  /**
   * Writes response bytes (a string as latin1): straight to the consumed handle when nothing is queued in front
   * (direct-write.ts), else through the socket. False when the caller should wait for its drain callback.
   */
  send(data: Buffer | string): boolean {
    return this.writer.send(this.handle, data);
  }

  /** Parses bytes a listener filter already read, then reads the socket. */
  start(initialBytes: Buffer | undefined): void {
    if (initialBytes && initialBytes.length > 0) this.onData(initialBytes);
    if (this.closed) return;
    const socket = this.socket as Socket & { _handle?: StreamHandle | null; encrypted?: boolean };
    const handle = socket._handle;
    if (handle?.isStreamBase && !handle._consumed && !socket.encrypted && socket.readableLength === 0 && !this.stopParsing) {
      // As node:http's server does for plain TCP: llhttp reads the socket's handle itself (no Buffer, Readable and
      // 'data' event per read); it reports each parse through kOnExecute. EOF still reaches the socket ('end', 'close').
      handle._consumed = true;
      this.handle = handle;
      this.parser[HTTPParser.kOnExecute] = (ret: number | LlhttpError) => this.afterExecute(ret, undefined);
      this.parser.consume(handle);
    } else {
      socket.on('data', (data: Buffer) => this.onData(data));
    }
    if (this.pausedBy === 0) socket.resume();
  }

  onData(data: Buffer): void {
    if (this.stopParsing || this.closed) return;
    this.executing = true;
    const ret = this.parser.execute(data);
    this.executing = false;
    this.afterExecute(ret, data);
  }

  private afterExecute(ret: number | LlhttpError, data: Buffer | undefined): void {
    if (this.closed) {
      if (!this.handle) this.parser.close();
      return;
    }
    if (typeof ret !== 'number') {
      // Bytes after a request that closes the connection are not parsed (llhttp refuses them); one error per connection.
      if (this.parseFailed || ret.code === 'HPE_CLOSED_CONNECTION') return;
      this.parseFailed = true;
      this.onParseError(ret);
      return;
    }
    const upgrade = this.upgradeRequest;
    if (upgrade) {
      this.startUpgrade(upgrade, (data ?? this.parser.getCurrentBuffer()).subarray(ret));
      return;
    }
    this.dispatch();
  }

  private onHeadersComplete(minor: number, raw: string[] | undefined, method: number, url: string, upgrade: boolean, keepAlive: boolean): number {
    if (this.headersTimer) {
      clearTimeout(this.headersTimer);
      this.headersTimer = undefined;
    }
    if (raw === undefined) {
      raw = this.partialHeaders;
      this.partialHeaders = [];
    } else if (this.partialHeaders.length > 0) {
      raw = this.partialHeaders.concat(raw);
      this.partialHeaders = [];
    }
    if (this.partialUrl) {
      url = this.partialUrl + url;
      this.partialUrl = '';
    }
    const methodName = LLHTTP_METHODS[method] ?? 'GET';
    const headers: HttpHeaders = { ':method': methodName, ':path': url, ':scheme': this.scheme };
    let expectContinue = false;
    let connection: string | undefined;
    let chunked = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      if (name === 'host') {
        if (headers[':authority'] === undefined) headers[':authority'] = value;
      } else if (name === 'expect' && minor === 1 && value.toLowerCase() === '100-continue') {
        // The proxy answers 100-continue itself and does not forward the expectation (Envoy without proxy_100_continue).
        expectContinue = true;
      } else if (name === 'connection') {
        // Hop-by-hop: kept aside for the connection manager (ServerStream.connectionHeader), not in the header object.
        connection = connection === undefined ? value : `${connection}, ${value}`;
      } else if (name === 'transfer-encoding') {
        // Framing is llhttp's (which refused anything but a final chunked); never forwarded as it came.
        chunked = true;
      } else if (name !== 'keep-alive' && name !== 'proxy-connection') addHeaderLine(headers, name, value);
    }
    if (headers[':authority'] === undefined) headers[':authority'] = '';
    const count = raw.length >> 1;
    if (upgrade) {
      // WebSocket (and CONNECT): the bytes after this head belong to the tunnel; llhttp stops here (return 2).
      this.upgradeRequest = { headers, count, connection };
      this.stopParsing = true;
      return 2;
    }
    const stream = new LeanServerStream(this, headers, count, minor === 0, keepAlive);
    stream.expectContinue = expectContinue;
    stream.connectionHeader = connection;
    this.parsing = stream;
    this.streams.push(stream);
    // A request has a body only with Transfer-Encoding or a non-zero Content-Length (RFC 9112 §6.3; llhttp checked
    // both). Without one the message is complete with its head: end it here and leave llhttp's message-complete
    // callback unset for it, since node calls a parser callback only when one is set and each call from C++ into
    // JavaScript is a fixed cost per request. A request with a body gets the callback back (its end, its trailers).
    const length = headers['content-length'];
    if (!chunked && (length === undefined || length === '0')) {
      this.parser[HTTPParser.kOnMessageComplete] = undefined;
      this.onMessageComplete();
    } else {
      this.parser[HTTPParser.kOnMessageComplete] = this.messageComplete;
    }
    return 0;
  }

  private onMessageComplete(): void {
    const stream = this.parsing;
    if (!stream) return; // an upgrade's head
    this.parsing = undefined;
    // After a request without keep-alive, further bytes are not requests (llhttp would refuse them anyway).
    if (!stream.keepAlive) this.stopParsing = true;
    let trailers: HttpHeaders | undefined;
    const fields = this.partialHeaders;
    if (fields.length > 0) {
      this.partialHeaders = [];
      trailers = {};
      for (let i = 0; i < fields.length; i += 2) addHeaderLine(trailers, fields[i]!.toLowerCase(), fields[i + 1]!);
    }
    stream.onMessageComplete(trailers);
  }

  /** Hands the first request to the connection manager once the one before it was answered. */
  private dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (!this.closed) {
        const stream = this.streams[0];
        if (!stream || stream.dispatched) return;
        stream.dispatched = true;
        if (stream.expectContinue && !stream.requestComplete) this.socket.write(CONTINUE, 'latin1');
        this.codec.options.onStream(stream, this.info);
        if (this.streams[0] === stream) return; // still being answered
      }
    } finally {
      this.dispatching = false;
    }
  }

  /** The response to `stream` ended: close the connection, or answer the next pipelined request, or go idle. */
  responseDone(stream: LeanServerStream): void {
    if (this.streams[0] === stream) this.streams.shift();
    else {
      const i = this.streams.indexOf(stream);
      if (i >= 0) this.streams.splice(i, 1);
    }
    if (this.closed) return;
    if (stream.closeAfter || this.closeAfterResponse || this.codec.draining) {
      this.close();
      return;
    }
    this.pausedBy &= ~2;
    this.applyPause();
    if (this.streams.length > 0) {
      if (!this.dispatching) queueMicrotask(() => this.dispatch());
    } else if (this.idleTimer) {
      // Only the time: a refresh() per response relinks Node's timer list (and reads libuv's clock through C++).
      this.idleSince = Date.now();
    }
  }

  pauseRead(reason: number): void {
    this.pausedBy |= reason;
    this.applyPause();
  }

  resumeRead(reason: number): void {
    if ((this.pausedBy & reason) === 0) return;
    this.pausedBy &= ~reason;
    this.applyPause();
  }

  private applyPause(): void {
    const handle = this.handle;
    if (handle) {
      // A consumed handle ignores the stream's pause(): start and stop its reads directly (node:http does the same).
      if (this.closed) return;
      if (this.pausedBy !== 0) {
        if (handle.reading) {
          handle.reading = false;
          handle.readStop();
        }
      } else if (!handle.reading) {
        handle.reading = true;
        handle.readStart();
      }
      return;
    }
    const socket = this.socket;
    if (this.pausedBy !== 0) {
      if (!socket.isPaused()) socket.pause();
    } else if (socket.isPaused() && !this.closed) socket.resume();
  }

  private onParseError(err: LlhttpError): void {
    this.stopParsing = true;
    const kind = classifyParseError(err.code);
    this.codec.options.onProtocolError(kind, err.code ?? err.message);
    this.failConnection(kind);
  }

  private onHeadersTimeout(): void {
    this.headersTimer = undefined;
    if (this.closed || this.stopParsing) return;
    this.stopParsing = true;
    this.codec.options.onProtocolError('header_timeout', 'ERR_HTTP_REQUEST_TIMEOUT');
    this.failConnection('header_timeout');
  }

  /** Envoy answers a codec error with a local reply and closes, unless a response already started (then: reset). */
  private failConnection(kind: DownstreamProtocolError): void {
    const current = this.streams[0];
    const canReply = !current || !current.headersSent;
    this.parsing = undefined;
    for (const s of this.streams.splice(0)) s.abandon();
    const socket = this.socket;
    if (canReply && socket.writable) {
      socket.end(protocolErrorResponse(LOCAL_ERROR_STATUS[kind]), 'latin1');
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
  }

  private startUpgrade(request: { headers: HttpHeaders; count: number; connection: string | undefined }, head: Buffer): void {
    this.upgradeRequest = undefined;
    const socket = this.socket;
    if (this.streams.length > 0 || request.headers[':method'] === 'CONNECT') {
      // An upgrade behind unanswered requests cannot be ordered; CONNECT is not supported (node:http destroyed it too).
      socket.destroy();
      return;
    }
    // The socket is the tunnel's now: stop parsing and let whoever pipes it read from here (no flowing until then).
    this.releaseHandle();
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.removeAllListeners('drain');
    (socket as Socket & { readableFlowing: boolean | null }).readableFlowing = null;
    this.clearTimers();
    const stream = new UpgradeStream(request.headers, request.count, socket, head);
    stream.connectionHeader = request.connection;
    this.codec.options.onStream(stream, this.info);
  }

  private onEnd(): void {
    // The client half-closed: like node:http (httpAllowHalfOpen false) and Envoy, requests in flight are reset; a
    // request cut short is a parse error answered with 400.
    if (!this.stopParsing && this.streams.length === 0) {
      const err = this.parser.finish();
      if (err) {
        this.onParseError(err);
        return;
      }
    }
    for (const s of this.streams.splice(0)) s.abandon();
    this.socket.destroy();
  }

  private onIdleTimeout(): void {
    // common_http_protocol_options.idle_timeout: no request in flight for that long, counted from the end of the last
    // response (recorded in idleSince); busy, or idle for less than that, the timer re-arms for the rest.
    this.idleTimer = undefined;
    if (this.closed) return;
    const timeout = this.codec.options.idleTimeoutMs;
    if (this.streams.length > 0 || this.parsing) {
      this.armIdleTimer(timeout);
      return;
    }
    const left = this.idleSince + timeout - Date.now();
    if (left >= 1) {
      this.armIdleTimer(left);
      return;
    }
    this.socket.destroy();
  }

  /** Drain: close now if idle, else after the response in flight. */
  drain(): void {
    this.closeAfterResponse = true;
    if (this.streams.length === 0 && !this.parsing) this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.stopParsing = true;
    const socket = this.socket;
    // node:http's destroySoon: our FIN after the last write, then the socket goes.
    if (socket.writable) {
      socket.end();
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    } else socket.destroy();
  }

  private clearTimers(): void {
    if (this.headersTimer) clearTimeout(this.headersTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.headersTimer = undefined;
    this.idleTimer = undefined;
  }

  private releaseHandle(): void {
    if (!this.handle) return;
    this.handle = undefined;
    this.parser.unconsume();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    this.parsing = undefined;
    for (const s of this.streams.splice(0)) s.abandon();
    this.releaseHandle();
    // Not while llhttp is inside execute (a callback may have destroyed the socket): onData frees it after.
    if (!this.executing) this.parser.close();
    this.codec.onConnectionClosed(this);
  }
}

export class Http1LeanCodec implements DownstreamCodec {
  private readonly connections = new Set<LeanServerConnection>();
  draining = false;

  constructor(readonly options: DownstreamCodecOptions) {}

  get activeConnections(): number {
    return this.connections.size;
  }

  serve(socket: Duplex, info: DownstreamConnectionInfo, initialBytes?: Buffer): void {
    const conn = new LeanServerConnection(this, socket, info);
    this.connections.add(conn);
    this.options.onConnectionOpen?.('http1');
    conn.start(initialBytes);
  }

  onConnectionClosed(conn: LeanServerConnection): void {
    if (this.connections.delete(conn)) this.options.onConnectionClose?.('http1');
  }

  drain(): void {
    this.draining = true;
    for (const conn of this.connections) conn.drain();
  }

  destroy(): void {
    for (const conn of [...this.connections]) conn.socket.destroy();
  }
}
