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

/**
 * A header value that would split an HTTP/1.1 head (CR, LF or NUL: node:http's ERR_INVALID_CHAR check). Three
 * indexOf calls rather than /[\r\n\0]/.test: a third cheaper per value, and the serialisers check every value of
 * every request and response (docs/performance.md, step 14).
 */
export function invalidHeaderValue(value: string): boolean {
  return value.indexOf('\r') !== -1 || value.indexOf('\n') !== -1 || value.indexOf('\0') !== -1;
}
