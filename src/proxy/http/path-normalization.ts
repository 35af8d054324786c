// The HCM's path hardening before routing, in Envoy's order (ConnectionManagerUtility::maybeNormalizePath):
// path_with_escaped_slashes_action, then normalize_path (RFC 3986 canonicalization as Envoy's PathUtil::canonicalPath),
// then merge_slashes. Only the path is touched; the query string is left alone.
import type { envoy } from '../../xds/generated/types.js';

type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;

/** HttpConnectionManager.PathWithEscapedSlashesAction (IMPLEMENTATION_SPECIFIC_DEFAULT is KEEP_UNCHANGED, as in Envoy). */
export type EscapedSlashesAction = 'KEEP_UNCHANGED' | 'REJECT_REQUEST' | 'UNESCAPE_AND_REDIRECT' | 'UNESCAPE_AND_FORWARD';

const ESCAPED_SLASHES_ACTIONS: Readonly<Record<string, EscapedSlashesAction>> = {
  IMPLEMENTATION_SPECIFIC_DEFAULT: 'KEEP_UNCHANGED',
  '0': 'KEEP_UNCHANGED',
  KEEP_UNCHANGED: 'KEEP_UNCHANGED',
  '1': 'KEEP_UNCHANGED',
  REJECT_REQUEST: 'REJECT_REQUEST',
  '2': 'REJECT_REQUEST',
  UNESCAPE_AND_REDIRECT: 'UNESCAPE_AND_REDIRECT',
  '3': 'UNESCAPE_AND_REDIRECT',
  UNESCAPE_AND_FORWARD: 'UNESCAPE_AND_FORWARD',
  '4': 'UNESCAPE_AND_FORWARD',
};

export interface PathNormalizationOptions {
  readonly normalizePath: boolean;
  readonly mergeSlashes: boolean;
  readonly escapedSlashes: EscapedSlashesAction;
}

/**
 * What the HCM does with the request: go on with the (possibly rewritten) path, answer 307 to `path` (the
 * unescaped path, UNESCAPE_AND_REDIRECT), or answer 400 (`reason` is for the log only; Envoy's response code details
 * are `path_normalization_failed` either way).
 */
export type PathNormalizationResult =
  | { readonly action: 'continue'; readonly path: string }
  | { readonly action: 'redirect'; readonly path: string }
  | { readonly action: 'reject'; readonly reason: string };

/**
 * Reads normalize_path, merge_slashes and path_with_escaped_slashes_action; undefined when none is on (the request path
 * then skips normalization entirely). Unknown enum values are reported in `problems`.
 */
export function compilePathNormalization(config: Hcm, path: string, problems: string[]): PathNormalizationOptions | undefined {
  const raw = String(config.path_with_escaped_slashes_action ?? 'IMPLEMENTATION_SPECIFIC_DEFAULT');
  const escapedSlashes = ESCAPED_SLASHES_ACTIONS[raw];
  if (!escapedSlashes) {
    problems.push(`${path}.path_with_escaped_slashes_action: unknown value ${raw}`);
    return undefined;
  }
  const options = { normalizePath: config.normalize_path?.value === true, mergeSlashes: config.merge_slashes === true, escapedSlashes };
  return options.normalizePath || options.mergeSlashes || escapedSlashes !== 'KEEP_UNCHANGED' ? options : undefined;
}

/** Applies the HCM's path options to `:path` (origin form) in Envoy's order. */
export function normalizePath(original: string, options: PathNormalizationOptions): PathNormalizationResult {
  // Envoy rejects a fragment in :path (http_reject_path_with_fragment); a client never sends one.
  if (original.includes('#')) return { action: 'reject', reason: 'fragment in path' };
  const q = original.indexOf('?');
  let p = q < 0 ? original : original.slice(0, q);
  const query = q < 0 ? '' : original.slice(q);
  let redirect = false;
  if (options.escapedSlashes !== 'KEEP_UNCHANGED') {
    const unescaped = unescapeSlashes(p);
    if (unescaped !== p) {
      if (options.escapedSlashes === 'REJECT_REQUEST') return { action: 'reject', reason: 'escaped slash in path' };
      redirect = options.escapedSlashes === 'UNESCAPE_AND_REDIRECT';
      p = unescaped;
    }
  }
  if (options.normalizePath) {
    const canonical = canonicalizePath(p);
    if (typeof canonical !== 'string') return { action: 'reject', reason: canonical.reason };
    p = canonical;
  }
  // After normalization, so that escapes decoded above cannot leave a `//` behind (Envoy's order).
  if (options.mergeSlashes) p = mergeSlashes(p);
  return { action: redirect ? 'redirect' : 'continue', path: p + query };
}

/**
 * The HCM's normalize_path/merge_slashes without the escaped-slashes action: the normalized path, or undefined when
 * Envoy would answer 400.
 */
export function normalizeRequestPath(path: string, normalize: boolean, mergeSlashesOption: boolean): string | undefined {
  const r = normalizePath(path, { normalizePath: normalize, mergeSlashes: mergeSlashesOption, escapedSlashes: 'KEEP_UNCHANGED' });
  return r.action === 'reject' ? undefined : r.path;
}

/** Envoy's PathUtil::unescapeSlashes: `%2F`/`%2f` → `/`, `%5C`/`%5c` → `\` (both case-insensitive). */
export function unescapeSlashes(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
}

/** Envoy's PathTransformer::mergeSlashes on the path part: runs of `/` become one, leading and trailing `/` kept. */
export function mergeSlashes(path: string): string {
  return path.includes('//') ? path.replace(/\/{2,}/g, '/') : path;
}

const HEX = /^[0-9A-Fa-f]{2}$/;
/** No `%`, `\`, control, non-ASCII or other character canonicalization would change. */
// eslint-disable-next-line no-control-regex
const PLAIN_PATH = /^[^%\\\x00-\x20\x7f-\uffff"<>`{}]*$/;
/** A `.` or `..` segment somewhere in the path. */
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x2d || code === 0x2e || code === 0x5f || code === 0x7e
  );
}

/** Characters Chromium's path canonicalizer (Envoy's canonicalPath) escapes when they appear raw. */
function mustEscape(code: number): boolean {
  return code <= 0x20 || code >= 0x7f || code === 0x22 || code === 0x3c || code === 0x3e || code === 0x60 || code === 0x7b || code === 0x7d;
}

function hexByte(b: number): string {
  return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
}

/**
 * RFC 3986 canonicalization as Envoy does it (Chromium's CanonicalizePath): `\` is a separator, escapes of unreserved
 * characters are decoded (so `%2e%2e` is a dot segment), other escapes are kept (hex upper-cased, RFC 3986 §6.2.2.1),
 * characters that may not appear raw are escaped, dot segments are removed and the path starts with `/`. `%00` or a
 * raw NUL fails, as in Envoy; so does a malformed escape (`%zz`) — Chromium passes those through, Trellis refuses
 * them rather than let a backend decode them differently.
 */
export function canonicalizePath(path: string): string | { readonly reason: string } {
  // Most paths have nothing to decode or escape: skip the per-character rebuild.
  if (PLAIN_PATH.test(path)) return removeDotSegments(path.charCodeAt(0) === 0x2f ? path : `/${path}`);
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = path.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return { reason: 'malformed percent-encoding' };
      const byte = parseInt(hex, 16);
      if (byte === 0) return { reason: 'escaped NUL (%00) in path' };
      out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${hex.toUpperCase()}`;
      i += 2;
    } else if (c === 0) {
      return { reason: 'NUL in path' };
    } else if (c === 0x5c /* \ */) {
      out += '/';
    } else if (mustEscape(c)) {
      // Bytes above 0xff come from an HTTP/2 header decoded as UTF-8; lower ones are the raw (latin1) byte.
      if (c > 0xff) {
        const cp = path.codePointAt(i)!;
        for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out += hexByte(b);
        if (cp > 0xffff) i++;
      } else out += hexByte(c);
    } else out += path[i];
  }
  return removeDotSegments(out.startsWith('/') ? out : `/${out}`);
}

/** RFC 3986 §5.2.4 on an absolute path: `.` and `..` segments go, a trailing one leaves the path ending in `/`. */
function removeDotSegments(path: string): string {
  if (!DOT_SEGMENT.test(path)) return path;
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}`;
}
