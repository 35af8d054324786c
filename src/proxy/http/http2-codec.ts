// HTTP/2 downstream codec over node:http2 (h2c prior knowledge and TLS with ALPN h2): streams, trailers for gRPC, GOAWAY on drain.
import { constants, createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { HOP_BY_HOP_HEADERS, type HttpHeaders } from './headers.js';
import type { DownstreamCodec, DownstreamConnectionInfo, RequestBodySink, ServerStream } from './server-stream.js';
import type { DownstreamCodecOptions } from './codec-options.js';
import type { HttpProtocol } from './stream-info.js';

/** node:http2 hands out a Proxy of the socket, so the connection info rides on the socket itself under a symbol. */
const kInfo = Symbol('trellis.downstreamInfo');
type InfoCarrier = { [kInfo]?: DownstreamConnectionInfo };

function toH2Headers(status: number, headers: HttpHeaders): Record<string, string | string[] | number> {
  const out: Record<string, string | string[] | number> = { ':status': status };
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || name.charCodeAt(0) === 58 || HOP_BY_HOP_HEADERS.has(name)) continue;
    out[name] = v;
  }
  return out;
}

function toTrailers(headers: HttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || name.charCodeAt(0) === 58) continue;
    out[name] = v;
  }
  return out;
}

class Http2ServerStream implements ServerStream {
  readonly protocol: HttpProtocol = 'HTTP/2';
  readonly headers: HttpHeaders;
  readonly headerCount: number;
  readonly headerBytes: number;
  headersSent = false;
  private resetCallback: (() => void) | undefined;
  private finished = false;
  private pendingTrailers: HttpHeaders | undefined;
  private requestTrailers: HttpHeaders | undefined;
  private readonly wantsTrailers: boolean;

  constructor(private readonly stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: readonly string[]) {
    const h: HttpHeaders = {};
    let bytes = 0;
    for (const name in headers) {
      const v = headers[name];
      if (v !== undefined) h[name] = v;
    }
    for (let i = 0; i < rawHeaders.length; i++) bytes += rawHeaders[i]!.length;
    if (h[':scheme'] === undefined) h[':scheme'] = 'http';
    if (h[':authority'] === undefined && h['host'] !== undefined) {
      h[':authority'] = h['host'];
      delete h['host'];
    }
    this.headers = h;
    this.headerCount = rawHeaders.length >> 1;
    this.headerBytes = bytes;
    const te = h['te'];
    const ct = h['content-type'];
    this.wantsTrailers = te === 'trailers' || (typeof ct === 'string' && ct.startsWith('application/grpc'));
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      this.requestTrailers = t as HttpHeaders;
    });
    stream.on('wantTrailers', () => {
      stream.sendTrailers(toTrailers(this.pendingTrailers ?? {}));
    });
    stream.once('close', () => {
      if (!this.finished || stream.rstCode !== constants.NGHTTP2_NO_ERROR) {
        const fire = !this.finished;
        this.finished = true;
        if (fire) this.resetCallback?.();
      }
    });
    stream.on('error', () => {});
  }

  setBodySink(sink: RequestBodySink): void {
    this.stream.on('data', (chunk: Buffer) => sink.onData(chunk));
    this.stream.once('end', () => sink.onEnd(this.requestTrailers));
  }
  pauseBody(): void {
    this.stream.pause();
  }
  resumeBody(): void {
    this.stream.resume();
  }
  onReset(callback: () => void): void {
    this.resetCallback = callback;
  }
  respond(status: number, headers: HttpHeaders, endStream: boolean): void {
    if (this.headersSent || this.stream.destroyed || this.stream.closed) return;
    this.headersSent = true;
    try {
      this.stream.respond(toH2Headers(status, headers), { endStream, waitForTrailers: !endStream && this.wantsTrailers });
    } catch {
      this.reset();
      return;
    }
    if (endStream) this.finished = true;
  }
  write(chunk: Buffer): boolean {
    if (this.stream.destroyed || this.stream.closed) return true;
    return this.stream.write(chunk);
  }
  onDrain(callback: () => void): void {
    this.stream.once('drain', callback);
  }
  end(trailers?: HttpHeaders): void {
    if (this.finished) return;
    this.finished = true;
    if (this.stream.destroyed || this.stream.closed) return;
    if (trailers && !this.wantsTrailers) {
      // A response that did not announce trailers: Node can only send them with waitForTrailers; drop them.
    }
    this.pendingTrailers = trailers;
    this.stream.end();
  }
  reset(): void {
    this.finished = true;
    if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }
  closeConnectionAfterResponse(): void {
    const session = this.stream.session;
    this.stream.once('close', () => {
      if (session && !session.closed) session.close();
    });
  }
}

export class Http2Codec implements DownstreamCodec {
  private readonly server: Http2Server;
  private readonly sessions = new Set<Http2Session>();
  private readonly sockets = new Set<Duplex>();
  private draining = false;

  constructor(private readonly options: DownstreamCodecOptions) {
    this.server = createServer({
      maxHeaderListPairs: Math.max(options.maxHeadersCount * 2, 16) + 8,
      settings: { maxHeaderListSize: options.maxRequestHeadersKb * 1024, enablePush: false },
    });
    this.server.on('session', (session: Http2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      session.on('error', () => {});
      if (options.idleTimeoutMs > 0) session.setTimeout(options.idleTimeoutMs, () => session.close());
      if (this.draining) session.close();
    });
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      const socket = stream.session?.socket as Duplex | undefined;
      const info = socket ? (socket as unknown as InfoCarrier)[kInfo] : undefined;
      if (!info) {
        stream.close(constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      this.options.onStream(new Http2ServerStream(stream, headers, rawHeaders), info);
    });
  }

  get activeConnections(): number {
    return this.sockets.size;
  }

  serve(socket: Duplex, info: DownstreamConnectionInfo, initialBytes?: Buffer): void {
    (socket as unknown as InfoCarrier)[kInfo] = info;
    this.sockets.add(socket);
    this.options.onConnectionOpen?.('http2');
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.options.onConnectionClose?.('http2');
    });
    // node:http2 reads bytes already buffered on the socket before taking over its handle.
    if (initialBytes && initialBytes.length > 0) socket.unshift(initialBytes);
    this.server.emit('connection', socket);
    // A socket that arrived paused (TLS after our inspection) must read for the session to see frames; with peeked
    // plaintext bytes node:http2 drains the buffer itself and resuming would hand them to no one.
    if (!initialBytes?.length) socket.resume();
  }

  drain(): void {
    this.draining = true;
    for (const session of this.sessions) if (!session.closed) session.close();
  }

  destroy(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.server.close();
  }
}
