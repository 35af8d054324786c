// Which Istio port protocols the generators treat as HTTP (HTTP connection manager) and which as opaque TCP.

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY']);

/** HTTP, HTTP2, gRPC: routed by an HTTP connection manager. Everything else (TCP, TLS, HTTPS, Mongo…) is proxied as TCP. */
export function isHttpProtocol(protocol: string | undefined): boolean {
  return HTTP_PROTOCOLS.has((protocol ?? '').toUpperCase());
}
