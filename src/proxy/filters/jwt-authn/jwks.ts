// A JSON Web Key Set turned into jose keys once (on config apply or fetch), and Envoy's key selection over it
// (verifyJwtWithoutTimeChecking): a key is tried when its kid and alg do not contradict the token's.
import { compactVerify, importJWK, type JWK, type KeyLike } from 'jose';
import type { ParsedJwt } from './jwt.js';
import type { JwtStatus } from './status.js';

interface JwksKey {
  readonly kid: string;
  readonly alg: string;
  readonly kty: string;
  readonly key: KeyLike | Uint8Array;
}

/** A parsed key set; `status` is Ok when at least one key was usable. */
export class Jwks {
  private constructor(
    readonly status: JwtStatus,
    private readonly keys: readonly JwksKey[],
    /** Why keys were skipped, for the log (no key material). */
    readonly skipped: readonly string[],
  ) {}

  get size(): number {
    return this.keys.length;
  }

  /** Parses a JWKS document; a key that cannot be imported is skipped, as jwt_verify_lib does. */
  static async parse(text: string): Promise<Jwks> {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return new Jwks('JwksParseError', [], []);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return new Jwks('JwksParseError', [], []);
    const list = (doc as Record<string, unknown>)['keys'];
    if (list === undefined) return new Jwks('JwksNoKeys', [], []);
    if (!Array.isArray(list)) return new Jwks('JwksBadKeys', [], []);
    const keys: JwksKey[] = [];
    const skipped: string[] = [];
    for (const [i, raw] of list.entries()) {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        skipped.push(`keys[${i}]: not an object`);
        continue;
      }
      const jwk = raw as JWK;
      const kty = typeof jwk.kty === 'string' ? jwk.kty : '';
      if (!['RSA', 'EC', 'OKP', 'oct'].includes(kty)) {
        skipped.push(`keys[${i}]: kty ${JSON.stringify(jwk.kty)} is not supported`);
        continue;
      }
      try {
        // A private JWK would import as a private key: only public members are handed to jose.
        const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
        const key = await importJWK(kty === 'oct' ? jwk : pub);
        keys.push({ kid: typeof jwk.kid === 'string' ? jwk.kid : '', alg: typeof jwk.alg === 'string' ? jwk.alg : '', kty, key });
      } catch (err) {
        skipped.push(`keys[${i}]: ${(err as Error).message}`);
      }
    }
    return new Jwks(keys.length > 0 ? 'Ok' : 'JwksNoValidKeys', keys, skipped);
  }

  /** Verifies the token's signature with the first key that fits; `none` never gets here (see IMPLEMENTED_ALGS). */
  async verify(jwt: ParsedJwt): Promise<JwtStatus> {
    let matched = false;
    for (const k of this.keys) {
      if (jwt.kid && k.kid && k.kid !== jwt.kid) continue;
      if (k.alg && k.alg !== jwt.alg) continue;
      matched = true;
      if (!keyFitsAlg(k.kty, jwt.alg)) continue;
      try {
        await compactVerify(jwt.token, k.key, { algorithms: [jwt.alg] });
        return 'Ok';
      } catch {
        // Try the next key, as Envoy does.
      }
    }
    return matched ? 'JwtVerificationFail' : 'JwksKidAlgMismatch';
  }
}

/** Envoy picks the verification routine by key type; a key of another family cannot verify the token. */
function keyFitsAlg(kty: string, alg: string): boolean {
  if (kty === 'RSA') return alg.startsWith('RS') || alg.startsWith('PS');
  if (kty === 'EC') return alg.startsWith('ES');
  if (kty === 'OKP') return alg === 'EdDSA';
  return alg.startsWith('HS');
}
