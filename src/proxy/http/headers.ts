// Headers on the proxy's request path, shaped like HTTP/2's: lower-case names plus pseudo-headers, for both protocols.

/** A header value; repeated headers (other than set-cookie in HTTP/1.1 folding rules) keep every value. */
export type HeaderValue = string | string[];

/**
 * Request or response headers. Requests carry `:method`, `:path`, `:authority` and `:scheme`; responses `:status`.
 * Names are lower-case. The HTTP/1.1 codec converts to and from this shape at the edge only.
 */
export type HttpHeaders = Record<string, HeaderValue | undefined>;

/** The first value of a header, or undefined. */
export function headerValue(headers: HttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Hop-by-hop headers a proxy must not forward (RFC 9110 §7.6.1), plus the ones Envoy strips. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
