// The HCM's normalize_path (RFC 3986 §6: percent-decoding of unreserved characters, §5.2.4 dot-segment removal) and
// merge_slashes, applied to :path before routing as Envoy does; the query string is left alone.

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Returns the normalized path (with its query), or undefined when it cannot be normalized (Envoy answers 400). */
export function normalizeRequestPath(path: string, normalize: boolean, mergeSlashes: boolean): string | undefined {
  const q = path.indexOf('?');
  let p = q < 0 ? path : path.slice(0, q);
  const query = q < 0 ? '' : path.slice(q);
  if (normalize) {
    // Decode %XX of unreserved characters only, upper-case the other escapes; a malformed escape refuses the request.
    let out = '';
    for (let i = 0; i < p.length; i++) {
      const c = p[i]!;
      if (c !== '%') {
        out += c;
        continue;
      }
      const hex = p.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      const ch = String.fromCharCode(parseInt(hex, 16));
      out += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
      i += 2;
    }
    p = removeDotSegments(out);
  }
  if (mergeSlashes) p = p.replace(/\/{2,}/g, '/');
  return p + query;
}

function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      if (out.length > 1) out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  const joined = out.join('/');
  return joined.startsWith('/') ? joined : `/${joined}`;
}
