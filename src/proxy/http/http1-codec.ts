// HTTP/1.1 downstream codec over node:http's server (llhttp, strict mode), kept for comparison with the lean codec
// (TRELLIS_DOWNSTREAM_HTTP1_CODEC=node): keep-alive, pipelining, chunked, 100-continue, Upgrade.
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HOP_BY_HOP_HEADERS, type HttpHeaders } from './headers.js';
import type { DownstreamCodec, DownstreamConnectionInfo, RequestBodySink, ServerStream } from './server-stream.js';
import type { DownstreamCodecOptions } from './codec-options.js';
import type { HttpProtocol } from './stream-info.js';
import { UpgradeStream, classifyParseError, LOCAL_ERROR_STATUS, protocolErrorResponse } from './http1-common.js';

interface ConnState {
  readonly info: DownstreamConnectionInfo;
  active: number;
  closeAfterResponse: boolean;
}

const connStates = new WeakMap<Duplex, ConnState>();

/** Node joins repeated headers (", " or "; " for cookie); set-cookie stays an array. */
function toHttpHeaders(req: IncomingMessage, scheme: string): HttpHeaders {
  const headers: HttpHeaders = {
    ':method': req.method ?? 'GET',
    ':path': req.url ?? '/',
    ':scheme': scheme,
  };
  const src = req.headers;
  for (const name in src) {
    if (name === 'host') headers[':authority'] = src[name];
    else headers[name] = src[name];
  }
  if (headers[':authority'] === undefined) headers[':authority'] = '';
  return headers;
}

/** Response headers as node:http's flat [name, value, …] list: no intermediate object for writeHead to walk again. */
function toFlatHeaders(headers: HttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || name.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP_HEADERS.has(name)) continue;
    if (typeof v === 'string') out.push(name, v);
    else for (const one of v) out.push(name, one);
  }
  return out;
}

function toNodeHeaders(headers: HttpHeaders, out: Record<string, string | string[]>): void {
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || name.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP_HEADERS.has(name)) continue;
    out[name] = v;
  }
}

class Http1Stream implements ServerStream {
  readonly protocol: HttpProtocol;
  readonly headers: HttpHeaders;
  readonly headerCount: number;
  readonly headerBytes = 0;
  headersSent = false;
  private resetCallback: (() => void) | undefined;
  private finished = false;
  private resetFired = false;
  private readonly hasBody: boolean;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly conn: ConnState,
  ) {
    this.protocol = req.httpVersionMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1';
    this.headers = toHttpHeaders(req, conn.info.tls ? 'https' : 'http');
    this.headerCount = req.rawHeaders.length >> 1;
    // Read before the connection manager strips transfer-encoding (hop-by-hop) from the headers.
    this.hasBody = this.headers['content-length'] !== undefined || this.headers['transfer-encoding'] !== undefined;
    // The response's 'close' (one listener, added by the codec for the connection's count too) before 'finish'
    // means the client went away (or we reset).
    req.once('error', () => this.onGone());
  }

  /** The response closed (or the request errored): a reset unless the response had ended. */
  onGone(): void {
    if (!this.finished) this.fireReset();
  }

  private fireReset(): void {
    if (this.resetFired) return;
    this.resetFired = true;
    this.finished = true;
    this.resetCallback?.();
  }

  setBodySink(sink: RequestBodySink): void {
    if (!this.hasBody) {
      // HTTP/1.1 request without a body (RFC 9112 §6.3): ends now, so the router sends the upstream request in this
      // tick as one write instead of waiting for the IncomingMessage's 'end' (and no per-request body listeners).
      sink.onEnd();
      return;
    }
    this.req.on('data', (chunk: Buffer) => sink.onData(chunk));
    this.req.once('end', () => sink.onEnd());
    if (this.req.readableEnded) sink.onEnd();
  }
  pauseBody(): void {
    this.req.pause();
  }
  resumeBody(): void {
    this.req.resume();
  }
  onReset(callback: () => void): void {
    this.resetCallback = callback;
  }
  respond(status: number, headers: HttpHeaders, endStream: boolean): void {
    if (this.headersSent || this.res.destroyed) return;
    this.headersSent = true;
    if (this.conn.closeAfterResponse) this.res.shouldKeepAlive = false;
    const res = this.res;
    try {
      res.writeHead(status, STATUS_CODES[status] ?? 'Unknown', toFlatHeaders(headers));
    } catch {
      res.destroy();
      return;
    }
    if (endStream) this.end();
  }
  write(chunk: Buffer): boolean {
    if (this.res.destroyed) return true;
    return this.res.write(chunk);
  }
  onDrain(callback: () => void): void {
    this.res.once('drain', callback);
  }
  end(trailers?: HttpHeaders): void {
    if (this.finished) return;
    this.finished = true;
    if (trailers && this.res.chunkedEncoding) {
      const out: Record<string, string | string[]> = {};
      toNodeHeaders(trailers, out);
      this.res.addTrailers(out as Record<string, string>);
    }
    this.res.end();
  }
  reset(): void {
    this.finished = true;
    this.res.destroy();
    this.req.socket.destroy();
  }
  closeConnectionAfterResponse(): void {
    this.conn.closeAfterResponse = true;
  }
}

export class Http1Codec implements DownstreamCodec {
  private readonly server: Server;
  private readonly sockets = new Set<Duplex>();
  private draining = false;

  constructor(private readonly options: DownstreamCodecOptions) {
    const headersTimeout = options.requestHeadersTimeoutMs;
    this.server = createServer({
      maxHeaderSize: options.maxRequestHeadersKb * 1024,
      requestTimeout: 0,
      headersTimeout: headersTimeout > 0 ? headersTimeout : 0,
      keepAliveTimeout: options.idleTimeoutMs,
      connectionsCheckingInterval: headersTimeout > 0 ? Math.max(50, Math.min(1000, headersTimeout / 4)) : 30_000,
      requireHostHeader: false,
      joinDuplicateHeaders: false,
    });
    this.server.maxHeadersCount = 0;
    this.server.timeout = 0;
    if (headersTimeout > 0) {
      // node:http only checks header timeouts on servers that listened; ours is fed sockets, so start the check.
      this.server.emit('listening');
    }
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const conn = connStates.get(req.socket);
      if (!conn) {
        res.destroy();
        return;
      }
      conn.active++;
      if (this.draining) conn.closeAfterResponse = true;
      const stream = new Http1Stream(req, res, conn);
      res.once('close', () => {
        conn.active--;
        if (conn.active === 0 && (this.draining || conn.closeAfterResponse)) req.socket.end();
        stream.onGone();
      });
      this.options.onStream(stream, conn.info);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const conn = connStates.get(socket);
      if (!conn) {
        socket.destroy();
        return;
      }
      this.options.onStream(new UpgradeStream(toHttpHeaders(req, conn.info.tls ? 'https' : 'http'), req.rawHeaders.length >> 1, socket, head), conn.info);
    });
    this.server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      const kind = classifyParseError(err.code);
      this.options.onProtocolError(kind, err.code ?? err.message);
      const status = LOCAL_ERROR_STATUS[kind];
      // Before the response started (also for body errors such as a bad chunk size) Envoy answers 400 and closes.
      const pending = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (socket.writable && (!pending || !pending.headersSent)) {
        socket.end(protocolErrorResponse(status));
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        socket.destroy();
      }
    });
  }

  get activeConnections(): number {
    return this.sockets.size;
  }

  serve(socket: Duplex, info: DownstreamConnectionInfo, initialBytes?: Buffer): void {
    connStates.set(socket, { info, active: 0, closeAfterResponse: this.draining });
    this.sockets.add(socket);
    this.options.onConnectionOpen?.('http1');
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.options.onConnectionClose?.('http1');
    });
    this.server.emit('connection', socket);
    // node:http reads the socket's handle directly; bytes we already peeked go through its 'data' path.
    if (initialBytes && initialBytes.length > 0) socket.emit('data', initialBytes);
    socket.resume();
  }

  drain(): void {
    this.draining = true;
    for (const socket of this.sockets) {
      const conn = connStates.get(socket);
      if (!conn) continue;
      conn.closeAfterResponse = true;
      if (conn.active === 0) socket.end();
    }
  }

  destroy(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.server.close();
    this.server.closeAllConnections?.();
  }
}
