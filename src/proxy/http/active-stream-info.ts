// The StreamInfo of one request as the connection manager fills it: fixed fields, and the collections most requests
// never touch (response flags, filter state) made on first use instead of per request.
import type { HttpHeaders } from './headers.js';
import type { ResponseFlag } from './response-flags.js';
import type { DownstreamConnectionInfo } from './server-stream.js';
import type { DownstreamTlsInfo, HttpProtocol, StreamInfo } from './stream-info.js';

const NO_FLAGS: ReadonlySet<ResponseFlag> = new Set();

export class ActiveStreamInfo implements StreamInfo {
  readonly startTime: number;
  readonly downstreamRemoteAddress: string;
  readonly downstreamRemotePort: number;
  readonly downstreamLocalAddress: string;
  readonly downstreamLocalPort: number;
  readonly downstreamTls: DownstreamTlsInfo | undefined;
  requestId = '';
  routeName: string | undefined = undefined;
  upstreamCluster: string | undefined = undefined;
  upstreamHost: string | undefined = undefined;
  responseCode: number | undefined = undefined;
  responseCodeDetails: string | undefined = undefined;
  bytesReceived = 0;
  bytesSent = 0;
  attemptCount = 0;
  upstreamResponseStart: number | undefined = undefined;
  endTime: number | undefined = undefined;
  responseHeaders: HttpHeaders | undefined = undefined;
  private flags: Set<ResponseFlag> | undefined = undefined;
  private state: Map<string, unknown> | undefined = undefined;

  constructor(
    readonly protocol: HttpProtocol,
    conn: DownstreamConnectionInfo,
    readonly listenerName: string,
    readonly statPrefix: string,
    readonly requestHeaders: HttpHeaders,
  ) {
    this.startTime = performance.now();
    this.downstreamRemoteAddress = conn.remoteAddress;
    this.downstreamRemotePort = conn.remotePort;
    this.downstreamLocalAddress = conn.localAddress;
    this.downstreamLocalPort = conn.localPort;
    this.downstreamTls = conn.tls;
  }

  get responseFlags(): Set<ResponseFlag> {
    return (this.flags ??= new Set());
  }

  /** The flags without creating the set (for readers on every request, e.g. stats). */
  get responseFlagsView(): ReadonlySet<ResponseFlag> {
    return this.flags ?? NO_FLAGS;
  }

  get filterState(): Map<string, unknown> {
    return (this.state ??= new Map());
  }
}
