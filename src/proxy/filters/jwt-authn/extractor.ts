// Where a provider's token is looked for (Envoy's jwt_authn Extractor): from_headers with a value prefix, from_params,
// from_cookies; `Authorization: Bearer` and `access_token` when none is configured. Each location remembers which
// issuers configured it, so a token found in one provider's place is not accepted for another issuer.
import type { HttpHeaders } from '../../http/headers.js';

export interface LocationConfig {
  readonly issuer: string;
  readonly fromHeaders: readonly { readonly name: string; readonly valuePrefix: string }[];
  readonly fromParams: readonly string[];
  readonly fromCookies: readonly string[];
  /** Headers the provider writes on success (forward_payload_header, claim_to_headers): removed from the request first. */
  readonly headersToSanitize: readonly string[];
}

/** A token found in the request. */
export interface JwtLocation {
  readonly token: string;
  /** Envoy's JwtLocation::isIssuerAllowed: the token's iss is one of the issuers that configured this location. */
  isIssuerAllowed(iss: string): boolean;
  /** Removes the token from the request (forward: false); cookies are left, as in Envoy. */
  removeJwt(headers: HttpHeaders): void;
  /** Where it was found, for logs: `header authorization`, `query access_token`, `cookie session`. */
  readonly where: string;
}

class IssuerChecker {
  private allowAll = false;
  private readonly issuers = new Set<string>();
  add(issuer: string): void {
    if (issuer === '') this.allowAll = true;
    else this.issuers.add(issuer);
  }
  check(iss: string): boolean {
    return this.allowAll || this.issuers.has(iss);
  }
}

const BEARER_PREFIX = 'Bearer ';
const ACCESS_TOKEN_PARAM = 'access_token';
/** RFC 4648 §5 alphabet plus `.`: where a token starts after its prefix (Envoy's extractJWT). */
const TOKEN_START = /[A-Za-z0-9\-_.]/;

export class Extractor {
  /** Keyed by header name + value prefix, in key order as Envoy's std::map. */
  private readonly headerLocations = new Map<string, { name: string; prefix: string; issuers: IssuerChecker }>();
  private readonly paramLocations = new Map<string, IssuerChecker>();
  private readonly cookieLocations = new Map<string, IssuerChecker>();
  private readonly sanitize = new Set<string>();

  constructor(providers: readonly LocationConfig[]) {
    for (const p of providers) this.addProvider(p);
    const sorted = [...this.headerLocations.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.headerLocations.clear();
    for (const [k, v] of sorted) this.headerLocations.set(k, v);
  }

  private addProvider(p: LocationConfig): void {
    for (const h of p.fromHeaders) this.addHeader(p.issuer, h.name.toLowerCase(), h.valuePrefix);
    for (const name of p.fromParams) this.entry(this.paramLocations, name).add(p.issuer);
    for (const name of p.fromCookies) this.entry(this.cookieLocations, name).add(p.issuer);
    if (p.fromHeaders.length === 0 && p.fromParams.length === 0 && p.fromCookies.length === 0) {
      this.addHeader(p.issuer, 'authorization', BEARER_PREFIX);
      this.entry(this.paramLocations, ACCESS_TOKEN_PARAM).add(p.issuer);
    }
    for (const h of p.headersToSanitize) this.sanitize.add(h.toLowerCase());
  }

  private addHeader(issuer: string, name: string, prefix: string): void {
    const key = name + prefix;
    let loc = this.headerLocations.get(key);
    if (!loc) this.headerLocations.set(key, (loc = { name, prefix, issuers: new IssuerChecker() }));
    loc.issuers.add(issuer);
  }

  private entry(map: Map<string, IssuerChecker>, name: string): IssuerChecker {
    let c = map.get(name);
    if (!c) map.set(name, (c = new IssuerChecker()));
    return c;
  }

  /** Removes headers a client must not be able to forge (the ones the filter writes after verification). */
  sanitizeHeaders(headers: HttpHeaders): void {
    for (const name of this.sanitize) delete headers[name];
  }

  extract(headers: HttpHeaders): JwtLocation[] {
    const tokens: JwtLocation[] = [];
    for (const loc of this.headerLocations.values()) {
      const raw = headers[loc.name];
      if (raw === undefined) continue;
      for (const value of Array.isArray(raw) ? raw : [raw]) {
        let token = value;
        if (loc.prefix) {
          const pos = value.indexOf(loc.prefix);
          if (pos < 0) continue;
          token = tokenAfter(value, pos + loc.prefix.length);
        }
        const name = loc.name;
        tokens.push({
          token,
          where: `header ${name}`,
          isIssuerAllowed: (iss) => loc.issuers.check(iss),
          removeJwt: (h) => void delete h[name],
        });
      }
    }
    const path = headers[':path'];
    if (this.paramLocations.size > 0 && typeof path === 'string' && path.includes('?')) {
      const params = parseQuery(path);
      for (const [name, issuers] of this.paramLocations) {
        const value = params.get(name);
        if (value === undefined) continue;
        tokens.push({
          token: value,
          where: `query ${name}`,
          isIssuerAllowed: (iss) => issuers.check(iss),
          removeJwt: (h) => {
            const p = h[':path'];
            if (typeof p === 'string') h[':path'] = removeQueryParam(p, name);
          },
        });
      }
    }
    if (this.cookieLocations.size > 0) {
      const cookies = parseCookies(headers, this.cookieLocations);
      for (const [name, issuers] of this.cookieLocations) {
        const value = cookies.get(name);
        if (value === undefined) continue;
        tokens.push({ token: value, where: `cookie ${name}`, isIssuerAllowed: (iss) => issuers.check(iss), removeJwt: () => undefined });
      }
    }
    return tokens;
  }
}

function tokenAfter(value: string, from: number): string {
  for (let i = from; i < value.length; i++) if (TOKEN_START.test(value[i]!)) return value.slice(i);
  return value;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** The first value of each query parameter, URL-decoded (Envoy's parseAndDecodeQueryString + getFirstValue). */
function parseQuery(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.slice(path.indexOf('?') + 1);
  for (const pair of q.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    if (!out.has(key)) out.set(key, decode(eq < 0 ? '' : pair.slice(eq + 1)));
  }
  return out;
}

function removeQueryParam(path: string, name: string): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const kept = path
    .slice(q + 1)
    .split('&')
    .filter((pair) => pair && decode(pair.split('=', 1)[0]!) !== name);
  return kept.length > 0 ? `${path.slice(0, q)}?${kept.join('&')}` : path.slice(0, q);
}

/** Envoy's Utility::parseCookies: `name=value` pairs of every cookie header; quotes around a value are dropped. */
function parseCookies(headers: HttpHeaders, wanted: ReadonlyMap<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  const raw = headers['cookie'];
  if (raw === undefined) return out;
  for (const header of Array.isArray(raw) ? raw : [raw]) {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const key = part.slice(0, eq).trim();
      if (!wanted.has(key) || out.has(key)) continue;
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      out.set(key, value);
    }
  }
  return out;
}
