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

/** Headers of which node:http keeps the first of duplicates (IncomingMessage._addHeaderLine). */
const FIRST_WINS: ReadonlySet<string> = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag',
  'last-modified', 'server', 'age', 'expires',
]);

/**
 * Adds one parsed header line (`name` lower-case) with node:http's folding of repeats: set-cookie a list, cookie joined
 * with '; ', the FIRST_WINS names keep their first value, the rest joined with ', '. True when `name` was already set.
 */
export function addHeaderLine(out: HttpHeaders, name: string, value: string): boolean {
  const prev = out[name];
  if (prev === undefined) {
    out[name] = name === 'set-cookie' ? [value] : value;
    return false;
  }
  if (name === 'set-cookie') (prev as string[]).push(value);
  else if (!FIRST_WINS.has(name)) out[name] = `${prev as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  return true;
}

/**
 * A header value that would split an HTTP/1.1 head (CR, LF or NUL: node:http's ERR_INVALID_CHAR check). Three
 * indexOf calls rather than /[\r\n\0]/.test: a third cheaper per value, and the serialisers check every value of
 * every request and response (docs/performance.md, step 14).
 */
export function invalidHeaderValue(value: string): boolean {
  return value.indexOf('\r') !== -1 || value.indexOf('\n') !== -1 || value.indexOf('\0') !== -1;
}
