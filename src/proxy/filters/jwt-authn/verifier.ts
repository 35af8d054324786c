// The requirement tree of jwt_authn (Envoy's verifier.cc): provider_name, provider_and_audiences, requires_any,
// requires_all, allow_missing, allow_missing_or_failed, compiled once into functions that verify a request.
import type { envoy } from '../../../xds/generated/types.js';
import { authenticate, type CompiledProvider, type VerifyContext } from './authenticator.js';
import { Extractor } from './extractor.js';
import { AudienceChecker } from './jwt.js';
import type { JwtStatus } from './status.js';

type JwtRequirement = envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement;

export type Verifier = (ctx: VerifyContext) => Promise<JwtStatus>;

const ALLOW_ALL: Verifier = async () => 'Ok';

export interface RequirementCompileContext {
  readonly providers: ReadonlyMap<string, CompiledProvider>;
  /** Token locations of every provider (allow_missing and allow_missing_or_failed look everywhere). */
  readonly allProvidersExtractor: Extractor;
}

function providerVerifier(provider: CompiledProvider, audiences: readonly string[] | undefined): Verifier {
  const checker = audiences && audiences.length > 0 ? new AudienceChecker(audiences) : undefined;
  return (ctx) => {
    provider.extractor.sanitizeHeaders(ctx.headers);
    return authenticate(ctx, provider.extractor.extract(ctx.headers), { provider, ...(checker ? { audiences: checker } : {}), allowFailed: false, allowMissing: false });
  };
}

function allowVerifier(c: RequirementCompileContext, allowFailed: boolean): Verifier {
  return (ctx) => {
    c.allProvidersExtractor.sanitizeHeaders(ctx.headers);
    return authenticate(ctx, c.allProvidersExtractor.extract(ctx.headers), { allowFailed, allowMissing: true });
  };
}

/** Compiles a requirement at `path`; an unknown provider is a problem (Envoy: "Required provider ['x'] is not configured."). */
export function compileRequirement(req: JwtRequirement | undefined, c: RequirementCompileContext, path: string, problems: string[]): Verifier {
  if (!req) return ALLOW_ALL;
  const lookup = (name: string, at: string): CompiledProvider | undefined => {
    const p = c.providers.get(name);
    if (!p) problems.push(`${at}: Required provider ['${name}'] is not configured.`);
    return p;
  };
  if (req.provider_name !== undefined && req.provider_name !== '') {
    const p = lookup(req.provider_name, `${path}.provider_name`);
    return p ? providerVerifier(p, undefined) : ALLOW_ALL;
  }
  if (req.provider_and_audiences) {
    const p = lookup(req.provider_and_audiences.provider_name ?? '', `${path}.provider_and_audiences.provider_name`);
    return p ? providerVerifier(p, req.provider_and_audiences.audiences ?? []) : ALLOW_ALL;
  }
  if (req.requires_any) return compileAny(req.requires_any.requirements ?? [], c, `${path}.requires_any`, problems);
  if (req.requires_all) {
    const children = (req.requires_all.requirements ?? []).map((r, i) => compileRequirement(r, c, `${path}.requires_all.requirements[${i}]`, problems));
    return async (ctx) => {
      for (const child of children) {
        const status = await child(ctx);
        if (status !== 'Ok') return status;
      }
      return 'Ok';
    };
  }
  if (req.allow_missing_or_failed) return allowVerifier(c, true);
  if (req.allow_missing) return allowVerifier(c, false);
  return ALLOW_ALL;
}

function compileAny(requirements: readonly JwtRequirement[], c: RequirementCompileContext, path: string, problems: string[]): Verifier {
  let allowMissingOrFailed = false;
  let allowMissing = false;
  const children: Verifier[] = [];
  requirements.forEach((r, i) => {
    if (r.allow_missing_or_failed) allowMissingOrFailed = true;
    else if (r.allow_missing) allowMissing = true;
    else children.push(compileRequirement(r, c, `${path}.requirements[${i}]`, problems));
  });
  // Only bypass requirements: one verifier that looks at every provider's locations.
  if (children.length === 0 && (allowMissingOrFailed || allowMissing)) children.push(allowVerifier(c, allowMissingOrFailed));
  return async (ctx) => {
    // Envoy prefers a real error over "missing", and "wrong issuer" over "missing", when no child succeeds.
    let final: JwtStatus = 'JwtMissed';
    for (const child of children) {
      const status = await child(ctx);
      if (status === 'Ok') return 'Ok';
      if ((status !== 'JwtMissed' && status !== 'JwtUnknownIssuer') || final === 'JwtMissed') final = status;
    }
    if (allowMissingOrFailed) return 'Ok';
    if (allowMissing && final === 'JwtMissed') return 'Ok';
    return final;
  };
}
