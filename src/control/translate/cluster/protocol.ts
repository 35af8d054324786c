// Istio's protocol classes for a service port (pkg/config/protocol): which ports are HTTP, HTTP/2, or sniffed.

const HTTP = new Set(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB']);
const HTTP2 = new Set(['HTTP2', 'GRPC', 'GRPC-WEB']);
const KNOWN = new Set(['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'HTTP_PROXY', 'MONGO', 'MYSQL', 'REDIS', 'TCP', 'TLS', 'UDP']);

export function isHttpProtocol(protocol: string): boolean {
  return HTTP.has(protocol.toUpperCase());
}

export function isHttp2Protocol(protocol: string): boolean {
  return HTTP2.has(protocol.toUpperCase());
}

/** A port whose protocol Istio does not know, so the sidecar sniffs it (and clusters use the downstream protocol). */
export function isUnsupportedProtocol(protocol: string): boolean {
  return !KNOWN.has(protocol.toUpperCase());
}
