// What both HTTP/1.1 downstream codecs share: llhttp error classes, codec error replies, the Date header, Upgrade streams.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { HOP_BY_HOP_HEADERS, type HttpHeaders } from './headers.js';
import type { RequestBodySink, ServerStream } from './server-stream.js';
import type { DownstreamProtocolError } from './codec-options.js';
import type { HttpProtocol } from './stream-info.js';

/** Envoy's HTTP/1 codec error details → our error kinds. llhttp codes are stable strings (HPE_*). */
export function classifyParseError(code: string | undefined): DownstreamProtocolError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'header_overflow';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return 'header_timeout';
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 'smuggling';
    default:
      return 'malformed';
  }
}

export const LOCAL_ERROR_STATUS: Record<DownstreamProtocolError, number> = {
  header_overflow: 431,
  header_timeout: 408,
  malformed: 400,
  smuggling: 400,
};

/** The reply to a request the codec could not parse; the connection closes after it. */
export function protocolErrorResponse(status: number): string {
  const body = STATUS_CODES[status] ?? 'Bad Request';
  return `HTTP/1.1 ${status} ${body}\r\ncontent-length: ${body.length}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${body}`;
}

let dateSecond = -1;
let dateValue = '';

/** The Date header value (RFC 9110 IMF-fixdate), formatted at most once a second like Envoy's cached date provider. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/** An Upgrade request: local replies are written raw; the router tunnels `socket` when it accepts the upgrade. */
export class UpgradeStream implements ServerStream {
  connectionHeader: string | undefined;
  readonly protocol: HttpProtocol = 'HTTP/1.1';
  readonly headerBytes = 0;
  readonly upgrade: { readonly socket: Duplex; readonly head: Buffer };
  headersSent = false;
  private resetCallback: (() => void) | undefined;

  constructor(
    readonly headers: HttpHeaders,
    readonly headerCount: number,
    socket: Duplex,
    head: Buffer,
  ) {
    this.upgrade = { socket, head };
    socket.once('close', () => this.resetCallback?.());
  }
  setBodySink(sink: RequestBodySink): void {
    sink.onEnd();
  }
  pauseBody(): void {}
  resumeBody(): void {}
  onReset(callback: () => void): void {
    this.resetCallback = callback;
  }
  respond(status: number, headers: HttpHeaders, endStream: boolean): void {
    if (this.headersSent) return;
    this.headersSent = true;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined || name.startsWith(':') || HOP_BY_HOP_HEADERS.has(name)) continue;
      for (const one of Array.isArray(v) ? v : [v]) head += `${name}: ${one}\r\n`;
    }
    head += 'connection: close\r\n\r\n';
    this.upgrade.socket.write(head);
    if (endStream) this.end();
  }
  write(chunk: Buffer): boolean {
    return this.upgrade.socket.write(chunk);
  }
  onDrain(callback: () => void): void {
    this.upgrade.socket.once('drain', callback);
  }
  end(): void {
    this.upgrade.socket.end();
  }
  reset(): void {
    this.upgrade.socket.destroy();
  }
  closeConnectionAfterResponse(): void {}
}
