// jwt_cache_config: verified tokens of one provider kept in a small LRU (Envoy's JwtCache, default 100 entries), so a
// token seen again skips parsing and the signature check; issuer, time, audience, subject and lifetime are still
// checked on every request, and an expired entry is dropped on lookup.
import { checkTime, type ParsedJwt } from './jwt.js';

/** Envoy: kJwtCacheDefaultSize. */
export const DEFAULT_JWT_CACHE_SIZE = 100;

export class JwtCache {
  private readonly entries = new Map<string, ParsedJwt>();
  constructor(private readonly capacity: number) {}

  lookup(token: string, nowSeconds: number, clockSkewSeconds: number): ParsedJwt | undefined {
    const jwt = this.entries.get(token);
    if (!jwt) return undefined;
    this.entries.delete(token);
    if (checkTime(jwt, nowSeconds, clockSkewSeconds) !== 'Ok') return undefined;
    // Re-inserted last: most recently used.
    this.entries.set(token, jwt);
    return jwt;
  }

  insert(jwt: ParsedJwt): void {
    this.entries.delete(jwt.token);
    this.entries.set(jwt.token, jwt);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}
