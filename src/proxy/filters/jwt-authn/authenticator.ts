// Verifies the tokens found for one requirement node (Envoy's AuthenticatorImpl): parse, issuer, time, audiences,
// subject, lifetime, keys, signature; on success writes the forwarded payload, claim headers and metadata. Every
// token found must verify unless the node allows failures, so a good token cannot smuggle a bad one past the filter.
import type { HttpHeaders } from '../../http/headers.js';
import type { JwtLocation, Extractor } from './extractor.js';
import { checkTime, parseJwt, type AudienceChecker, type ParsedJwt } from './jwt.js';
import type { JwksSource } from './jwks-cache.js';
import type { JwtCache } from './jwt-cache.js';
import type { JwtStatus } from './status.js';

/** A provider compiled from JwtProvider. */
export interface CompiledProvider {
  readonly name: string;
  readonly issuer: string;
  readonly audiences: AudienceChecker;
  readonly subjects?: (sub: string) => boolean;
  /** Seconds: require_expiration (Infinity) or max_lifetime; undefined when neither is set. */
  readonly maxLifetimeSeconds?: number;
  readonly clockSkewSeconds: number;
  readonly jwks: JwksSource | undefined;
  readonly forward: boolean;
  readonly forwardPayloadHeader?: string;
  readonly padForwardPayloadHeader: boolean;
  readonly payloadInMetadata?: string;
  readonly headerInMetadata?: string;
  readonly claimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  readonly clearRouteCache: boolean;
  /** This provider's token locations alone. */
  readonly extractor: Extractor;
  /** jwt_cache_config: verified tokens (used for provider_name / provider_and_audiences requirements, as Envoy). */
  readonly jwtCache?: JwtCache;
}

/** What one request's verification shares across the requirement tree. */
export interface VerifyContext {
  readonly headers: HttpHeaders;
  /** Provider lookup by issuer for allow_missing(_or_failed): the first provider with that issuer, else one with none. */
  findByIssuer(iss: string): CompiledProvider | undefined;
  nowSeconds(): number;
  /** payload_in_metadata / header_in_metadata entries (dynamic metadata of envoy.filters.http.jwt_authn). */
  readonly extracted: Record<string, unknown>;
  /** Tokens that verified, in order, for Istio's request.auth.* view. */
  readonly verified: ParsedJwt[];
  clearRouteCache: boolean;
  /** Why a token failed, without the token: for the proxy log. */
  readonly reasons: string[];
  /** jwt_authn.jwt_cache_hit / jwt_cache_miss. */
  countJwtCache(hit: boolean): void;
}

export interface AuthenticateOptions {
  /** A specific provider (provider_name / provider_and_audiences); absent for allow_missing(_or_failed). */
  readonly provider?: CompiledProvider;
  /** provider_and_audiences: replaces the provider's audiences. */
  readonly audiences?: AudienceChecker;
  readonly allowFailed: boolean;
  readonly allowMissing: boolean;
}

export async function authenticate(ctx: VerifyContext, tokens: readonly JwtLocation[], options: AuthenticateOptions): Promise<JwtStatus> {
  const remaining = [...tokens];
  let status: JwtStatus = 'JwtMissed';
  // Envoy takes tokens from the back of the list.
  while (remaining.length > 0) {
    const location = remaining.pop()!;
    status = await verifyToken(ctx, location, options);
    if (status !== 'Ok') ctx.reasons.push(`${options.provider?.name ?? 'any provider'}: token in ${location.where}: ${status}`);
    if (status !== 'Ok' && !options.allowFailed && !options.allowMissing) break;
  }
  if (options.allowFailed) return 'Ok';
  if (options.allowMissing && status === 'JwtMissed') return 'Ok';
  return status;
}

async function verifyToken(ctx: VerifyContext, location: JwtLocation, options: AuthenticateOptions): Promise<JwtStatus> {
  const now = ctx.nowSeconds();
  const cache = options.provider?.jwtCache;
  const cached = cache?.lookup(location.token, now, options.provider!.clockSkewSeconds);
  if (cache) ctx.countJwtCache(cached !== undefined);
  const jwt = cached ?? parseJwt(location.token);
  if (typeof jwt === 'string') return jwt;
  if (!location.isIssuerAllowed(jwt.iss)) return 'JwtUnknownIssuer';
  const provider = options.provider ?? ctx.findByIssuer(jwt.iss);
  if (!provider) return 'JwtUnknownIssuer';
  const time = checkTime(jwt, now, provider.clockSkewSeconds);
  if (time !== 'Ok') return time;
  if (!(options.audiences ?? provider.audiences).allows(jwt.audiences)) return 'JwtAudienceNotAllowed';
  if (provider.subjects && !provider.subjects(jwt.sub)) return 'JwtVerificationFail';
  if (provider.maxLifetimeSeconds !== undefined && (!jwt.exp || jwt.exp - now >= provider.maxLifetimeSeconds)) return 'JwtExpired';
  if (cached) {
    onGoodJwt(ctx, provider, jwt, location);
    return 'Ok';
  }
  const jwks = provider.jwks ? await provider.jwks.get() : undefined;
  if (!jwks) return provider.jwks?.remote ? 'JwksFetchFail' : 'JwksNoValidKeys';
  if (jwks.status !== 'Ok') return 'JwksNoValidKeys';
  const verified = await jwks.verify(jwt);
  if (verified !== 'Ok') return verified;
  cache?.insert(jwt);
  onGoodJwt(ctx, provider, jwt, location);
  return 'Ok';
}

function onGoodJwt(ctx: VerifyContext, provider: CompiledProvider, jwt: ParsedJwt, location: JwtLocation): void {
  const h = ctx.headers;
  if (provider.forwardPayloadHeader) {
    let payload = jwt.payloadB64.replace(/=+$/, '');
    if (provider.padForwardPayloadHeader) payload += '='.repeat((4 - (payload.length % 4)) % 4);
    addHeader(h, provider.forwardPayloadHeader, payload);
  }
  for (const { header, claim } of provider.claimToHeaders) {
    const value = claimAsString(claimAt(jwt.payload, claim));
    if (value) addHeader(h, header, value);
  }
  if (!provider.forward) location.removeJwt(h);
  if (provider.headerInMetadata) ctx.extracted[provider.headerInMetadata] = jwt.header;
  if (provider.payloadInMetadata) ctx.extracted[provider.payloadInMetadata] = jwt.payload;
  if (provider.clearRouteCache) ctx.clearRouteCache = true;
  ctx.verified.push(jwt);
}

function addHeader(h: HttpHeaders, name: string, value: string): void {
  const key = name.toLowerCase();
  const old = h[key];
  h[key] = old === undefined ? value : Array.isArray(old) ? [...old, value] : [old, value];
}

/** A claim by name; `a.b` walks nested objects (jwt_verify_lib StructUtils::GetValue). */
function claimAt(payload: Readonly<Record<string, unknown>>, name: string): unknown {
  if (name in payload) return payload[name];
  let v: unknown = payload;
  for (const part of name.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** Envoy copies string, number (integers without a fraction) and bool claims; other types are skipped. */
function claimAsString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && Number.isFinite(v)) return Number.isInteger(v) && v >= 0 ? String(v) : v.toFixed(6);
  return undefined;
}
