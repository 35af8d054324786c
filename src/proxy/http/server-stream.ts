// The downstream side of one HTTP stream, whichever codec carries it: what the connection manager and the router use.
import type { Duplex } from 'node:stream';
import type { HttpHeaders } from './headers.js';
import type { DownstreamTlsInfo, HttpProtocol } from './stream-info.js';

/** Where the request body goes; set once by the connection manager before the body flows. */
export interface RequestBodySink {
  onData(chunk: Buffer): void;
  onEnd(trailers?: HttpHeaders): void;
}

export interface ServerStream {
  readonly protocol: HttpProtocol;
  /** Request headers in HTTP/2 shape (`:method`, `:path`, `:authority`, `:scheme`), lower-case names. */
  readonly headers: HttpHeaders;
  /** Number of header fields as received (limit check: max_headers_count). */
  readonly headerCount: number;
  /** Bytes of the header block as received (limit check: max_request_headers_kb). */
  readonly headerBytes: number;
  /**
   * HTTP/1.x: the request's Connection header, which the codec keeps out of `headers` (with the other hop-by-hop
   * framing headers it consumes) so that removing it does not `delete` a property of the header object: V8 turns an
   * object that loses a property into a slow dictionary, for every filter after. The connection manager reads the
   * names listed in it.
   */
  readonly connectionHeader?: string;
  /** An HTTP/1.1 Upgrade (WebSocket): the raw socket and the bytes read past the headers. */
  readonly upgrade?: { readonly socket: Duplex; readonly head: Buffer };
  /** Starts the request body flowing into `sink` (pauses/resumes follow `pauseBody`/`resumeBody`). */
  setBodySink(sink: RequestBodySink): void;
  pauseBody(): void;
  resumeBody(): void;
  /** Called once when the downstream goes away before the response ended (client reset or disconnect). */
  onReset(callback: () => void): void;
  readonly headersSent: boolean;
  /** Sends response headers (`:status` is taken from `status`); `endStream` for bodiless replies. */
  respond(status: number, headers: HttpHeaders, endStream: boolean): void;
  /** Returns false when the caller should wait for `onDrain`. */
  write(chunk: Buffer): boolean;
  onDrain(callback: () => void): void;
  end(trailers?: HttpHeaders): void;
  /** Resets the stream (HTTP/2 RST_STREAM, HTTP/1.1 connection close). */
  reset(): void;
  /** Ask the codec to close the connection after this response (drain: `connection: close` / GOAWAY). */
  closeConnectionAfterResponse(): void;
}

/** The connection a stream arrived on. */
export interface DownstreamConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly tls?: DownstreamTlsInfo;
}

/**
 * A downstream codec: takes accepted sockets and produces ServerStreams. Kept small so a leaner codec can replace
 * node:http/node:http2 later without touching the connection manager.
 */
export interface DownstreamCodec {
  /** Serves one connection; `initialBytes` are bytes already read (peeked) from `socket`, to be parsed first. */
  serve(socket: Duplex, info: DownstreamConnectionInfo, initialBytes?: Buffer): void;
  /** Drain: keep-alive connections close after their next response, idle ones now; HTTP/2 gets GOAWAY. */
  drain(): void;
  /** Closes every connection now. */
  destroy(): void;
  readonly activeConnections: number;
}
