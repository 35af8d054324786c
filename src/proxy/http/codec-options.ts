// What a downstream codec is built with: limits from the HttpConnectionManager and the callback that receives streams.
import type { DownstreamConnectionInfo, ServerStream } from './server-stream.js';

export type DownstreamProtocolError =
  | 'header_overflow' // 431
  | 'header_timeout' // 408
  | 'malformed' // 400
  | 'smuggling'; // 400: conflicting Content-Length / Transfer-Encoding, bad chunk sizes

export interface DownstreamCodecOptions {
  /** max_request_headers_kb (Envoy default 60). */
  readonly maxRequestHeadersKb: number;
  /** common_http_protocol_options.max_headers_count (Envoy default 100). */
  readonly maxHeadersCount: number;
  /** request_headers_timeout; 0 disables (Envoy's default). */
  readonly requestHeadersTimeoutMs: number;
  /** common_http_protocol_options.idle_timeout (Envoy default 1 h). */
  readonly idleTimeoutMs: number;
  onStream(stream: ServerStream, connection: DownstreamConnectionInfo): void;
  onProtocolError(kind: DownstreamProtocolError, detail: string): void;
  onConnectionOpen?(protocol: 'http1' | 'http2'): void;
  onConnectionClose?(protocol: 'http1' | 'http2'): void;
}
