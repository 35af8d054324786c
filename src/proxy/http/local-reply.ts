// Envoy's local replies: text/plain bodies for HTTP, trailers-only grpc-status/grpc-message for gRPC requests.
import type { HttpHeaders } from './headers.js';

/** Envoy's HTTP → gRPC status mapping for local replies to gRPC requests (grpc_http1_bridge / Utility::httpToGrpcStatus). */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

export function isGrpcRequest(headers: HttpHeaders): boolean {
  const ct = headers['content-type'];
  return typeof ct === 'string' && ct.startsWith('application/grpc');
}

export interface LocalReply {
  readonly status: number;
  readonly headers: HttpHeaders;
  /** Empty for gRPC (trailers-only) and bodiless replies. */
  readonly body: Buffer;
}

/** Builds the reply Envoy would send; `grpcStatus` overrides the mapped status for gRPC requests. */
export function buildLocalReply(status: number, body: string, grpc: boolean, grpcStatus?: number, extra?: HttpHeaders): LocalReply {
  if (grpc) {
    const headers: HttpHeaders = {
      ...extra,
      'content-type': 'application/grpc',
      'grpc-status': String(grpcStatus ?? httpToGrpcStatus(status)),
    };
    if (body) headers['grpc-message'] = encodeURIComponent(body).replace(/%20/g, ' ');
    return { status: 200, headers, body: Buffer.alloc(0) };
  }
  const bytes = Buffer.from(body);
  const headers: HttpHeaders = { ...extra, 'content-length': String(bytes.length) };
  if (bytes.length > 0) headers['content-type'] = 'text/plain';
  return { status, headers, body: bytes };
}
