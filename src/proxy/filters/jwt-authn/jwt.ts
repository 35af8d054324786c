// A compact JWS token parsed the way jwt_verify_lib parses it (Jwt::parseFromString), so each malformed part gets
// Envoy's own status; the signature itself is checked by jwks.ts with jose.
import type { JwtStatus } from './status.js';

/** The algorithms jwt_verify_lib implements; anything else, `none` included, is refused before any key is looked at. */
export const IMPLEMENTED_ALGS: ReadonlySet<string> = new Set([
  'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA',
]);

export interface ParsedJwt {
  /** The token as extracted (used for forward removal, never logged). */
  readonly token: string;
  readonly headerB64: string;
  readonly payloadB64: string;
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly alg: string;
  readonly kid: string;
  readonly iss: string;
  readonly sub: string;
  readonly audiences: readonly string[];
  /** Seconds since the epoch; 0 when the claim is absent. */
  readonly exp: number;
  readonly nbf: number;
}

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

function decodeBase64Url(s: string): Buffer | undefined {
  if (!BASE64URL.test(s) || s.replace(/=+$/, '').length % 4 === 1) return undefined;
  return Buffer.from(s.replace(/=+$/, ''), 'base64url');
}

function parseObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** `undefined`: absent; `null`: present with the wrong type. */
function stringClaim(o: Readonly<Record<string, unknown>>, name: string): string | undefined | null {
  const v = o[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : null;
}

function timeClaim(o: Readonly<Record<string, unknown>>, name: string): number | undefined | null {
  const v = o[name];
  if (v === undefined) return undefined;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : null;
}

/** Parses `token`, or returns the status jwt_verify_lib would give it. */
export function parseJwt(token: string): ParsedJwt | JwtStatus {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) return 'JwtBadFormat';
  const [headerB64, payloadB64, signatureB64] = parts as [string, string, string];
  const headerBytes = decodeBase64Url(headerB64);
  if (!headerBytes) return 'JwtHeaderParseErrorBadBase64';
  const header = parseObject(headerBytes);
  if (!header) return 'JwtHeaderParseErrorBadJson';
  const alg = stringClaim(header, 'alg');
  if (typeof alg !== 'string') return 'JwtHeaderBadAlg';
  if (!IMPLEMENTED_ALGS.has(alg)) return 'JwtHeaderNotImplementedAlg';
  const kid = stringClaim(header, 'kid');
  if (kid === null) return 'JwtHeaderBadKid';
  const payloadBytes = decodeBase64Url(payloadB64);
  if (!payloadBytes) return 'JwtPayloadParseErrorBadBase64';
  const payload = parseObject(payloadBytes);
  if (!payload) return 'JwtPayloadParseErrorBadJson';
  const iss = stringClaim(payload, 'iss');
  if (iss === null) return 'JwtPayloadParseErrorIssNotString';
  const sub = stringClaim(payload, 'sub');
  if (sub === null) return 'JwtPayloadParseErrorSubNotString';
  if (timeClaim(payload, 'iat') === null) return 'JwtPayloadParseErrorIatNotInteger';
  const nbf = timeClaim(payload, 'nbf');
  if (nbf === null) return 'JwtPayloadParseErrorNbfNotInteger';
  const exp = timeClaim(payload, 'exp');
  if (exp === null) return 'JwtPayloadParseErrorExpNotInteger';
  if (stringClaim(payload, 'jti') === null) return 'JwtPayloadParseErrorJtiNotString';
  const aud = payload['aud'];
  let audiences: string[] = [];
  if (typeof aud === 'string') audiences = [aud];
  else if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) audiences = aud as string[];
  else if (aud !== undefined) return 'JwtPayloadParseErrorAudNotString';
  if (!decodeBase64Url(signatureB64)) return 'JwtSignatureParseErrorBadBase64';
  return { token, headerB64, payloadB64, header, payload, alg, kid: kid ?? '', iss: iss ?? '', sub: sub ?? '', audiences, exp: exp ?? 0, nbf: nbf ?? 0 };
}

/** Jwt::verifyTimeConstraint: nbf later than now + skew is not yet valid; exp earlier than now - skew is expired. */
export function checkTime(jwt: ParsedJwt, nowSeconds: number, clockSkewSeconds: number): JwtStatus {
  if (nowSeconds + clockSkewSeconds < jwt.nbf) return 'JwtNotYetValid';
  if (jwt.exp && nowSeconds > jwt.exp + clockSkewSeconds) return 'JwtExpired';
  return 'Ok';
}

/** jwt_verify_lib's CheckAudience: `http(s)://` prefixes and a trailing `/` do not count; no configured audience allows all. */
export class AudienceChecker {
  private readonly allowed: ReadonlySet<string>;
  constructor(audiences: readonly string[]) {
    this.allowed = new Set(audiences.map(sanitizeAudience));
  }
  allows(jwtAudiences: readonly string[]): boolean {
    if (this.allowed.size === 0) return true;
    return jwtAudiences.some((a) => this.allowed.has(sanitizeAudience(a)));
  }
}

function sanitizeAudience(aud: string): string {
  let s = aud;
  if (s.startsWith('http://')) s = s.slice(7);
  else if (s.startsWith('https://')) s = s.slice(8);
  if (s.endsWith('/')) s = s.slice(0, -1);
  return s;
}
