// JwtAuthentication and PerRouteConfig validated and compiled (once per config apply): providers with their key
// sources, rules (RouteMatch → requirement), requirement_map. Every problem is reported with its field path.
import { readDataSource } from '../../transport/data-source.js';
import type { envoy } from '../../../xds/generated/types.js';
import { ConfigProblems, durationMs, rejectUnsupportedFields } from '../../router/config-problems.js';
import { compileRouteMatch, type CompiledRouteMatch } from '../../router/route-matcher.js';
import { compileStringMatcher } from '../../router/string-matcher.js';
import type { ClusterManager } from '../../upstream/types.js';
import type { CompiledProvider } from './authenticator.js';
import { Extractor, type LocationConfig } from './extractor.js';
import { LocalJwks, RemoteJwks, type JwksSource, type JwksStats } from './jwks-cache.js';
import { AudienceChecker } from './jwt.js';
import { DEFAULT_JWT_CACHE_SIZE, JwtCache } from './jwt-cache.js';
import { compileRequirement, type Verifier } from './verifier.js';

type JwtAuthentication = envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
type JwtProvider = envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
type PerRouteConfig = envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig;

/** Envoy: DefaultCacheExpirationSec (10 minutes). */
export const DEFAULT_JWKS_CACHE_DURATION_MS = 600_000;
/** jwt_verify_lib kClockSkewInSecond. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;
/** Envoy: DefaultRefetchAfterFailedSec. */
const DEFAULT_FAILED_REFETCH_MS = 1000;

const SUPPORTED_CONFIG = new Set(['providers', 'rules', 'requirement_map', 'bypass_cors_preflight', 'strip_failure_response']);
const SUPPORTED_PROVIDER = new Set([
  'issuer', 'audiences', 'subjects', 'require_expiration', 'max_lifetime', 'remote_jwks', 'local_jwks', 'forward', 'from_headers',
  'from_params', 'from_cookies', 'forward_payload_header', 'pad_forward_payload_header', 'payload_in_metadata', 'header_in_metadata',
  'clock_skew_seconds', 'claim_to_headers', 'clear_route_cache', 'jwt_cache_config',
]);
const SUPPORTED_REMOTE = new Set(['http_uri', 'cache_duration', 'async_fetch', 'retry_policy']);

export interface CompiledRule {
  readonly match: CompiledRouteMatch;
  /** undefined: the rule matches and nothing is required. */
  readonly verifier: Verifier | undefined;
}

export interface CompiledJwtAuthentication {
  readonly providers: ReadonlyMap<string, CompiledProvider>;
  readonly rules: readonly CompiledRule[];
  readonly requirements: ReadonlyMap<string, Verifier>;
  readonly bypassCorsPreflight: boolean;
  readonly stripFailureResponse: boolean;
  findByIssuer(iss: string): CompiledProvider | undefined;
  close(): void;
}

/** PerRouteConfig compiled: disabled, or the name of a requirement_map entry (looked up per request, as Envoy does). */
export type CompiledPerRoute = { readonly disabled: true } | { readonly disabled: false; readonly requirementName: string };

export interface JwtConfigDeps {
  readonly clusters: ClusterManager;
  readonly jwksStats: JwksStats;
}

export function compileJwtAuthentication(config: JwtAuthentication, deps: JwtConfigDeps): CompiledJwtAuthentication {
  const problems = new ConfigProblems();
  rejectUnsupportedFields(config, SUPPORTED_CONFIG, '', problems);
  const providers = new Map<string, CompiledProvider>();
  const locations: LocationConfig[] = [];
  for (const [name, p] of Object.entries(config.providers ?? {})) {
    const compiled = compileProvider(name, p, `providers[${name}]`, problems, deps);
    if (compiled) {
      providers.set(name, compiled.provider);
      locations.push(compiled.locations);
    }
  }
  const close = (): void => {
    for (const p of providers.values()) p.jwks?.close();
  };
  const ctx = { providers, allProvidersExtractor: new Extractor(locations) };
  const strings: string[] = [];
  const requirements = new Map<string, Verifier>();
  for (const [name, req] of Object.entries(config.requirement_map ?? {})) requirements.set(name, compileRequirement(req, ctx, `requirement_map[${name}]`, strings));
  const allNames = [...requirements.keys()].sort().join(',');
  const rules: CompiledRule[] = [];
  (config.rules ?? []).forEach((rule, i) => {
    const path = `rules[${i}]`;
    const match = compileRouteMatch(rule.match, `${path}.match`, problems, { ignorePathParameters: false });
    let verifier: Verifier | undefined;
    if (rule.requires) verifier = compileRequirement(rule.requires, ctx, `${path}.requires`, strings);
    else if (rule.requirement_name) {
      verifier = requirements.get(rule.requirement_name);
      if (!verifier) strings.push(`${path}.requirement_name: Wrong requirement_name: ${rule.requirement_name}. It should be one of [${allNames}]`);
    }
    if (match) rules.push({ match, verifier });
  });
  for (const s of strings) problems.add('', s);
  if (problems.details.length > 0) close();
  problems.throwIfAny();
  // Envoy's JwksCache: the first provider (in map order) with an issuer answers for it; one without answers for the rest.
  const byIssuer = new Map<string, CompiledProvider>();
  for (const p of providers.values()) if (!byIssuer.has(p.issuer)) byIssuer.set(p.issuer, p);
  return {
    providers,
    rules,
    requirements,
    bypassCorsPreflight: config.bypass_cors_preflight === true,
    stripFailureResponse: config.strip_failure_response === true,
    findByIssuer: (iss) => byIssuer.get(iss) ?? (iss ? byIssuer.get('') : undefined),
    close,
  };
}

/** The sorted, comma-joined requirement names, for Envoy's "Wrong requirement_name" message. */
export function requirementNames(c: CompiledJwtAuthentication): string {
  return [...c.requirements.keys()].sort().join(',');
}

function compileProvider(
  name: string,
  p: JwtProvider,
  path: string,
  problems: ConfigProblems,
  deps: JwtConfigDeps,
): { provider: CompiledProvider; locations: LocationConfig } | undefined {
  const before = problems.details.length;
  rejectUnsupportedFields(p, SUPPORTED_PROVIDER, path, problems);
  let jwks: JwksSource | undefined;
  if (p.remote_jwks && p.local_jwks) problems.add(path, 'only one of remote_jwks and local_jwks may be set');
  else if (!p.remote_jwks && !p.local_jwks) problems.add(path, 'one of remote_jwks or local_jwks is required');
  const subjects = p.subjects ? compileStringMatcher(p.subjects, `${path}.subjects`, problems) : undefined;
  let maxLifetimeSeconds: number | undefined = p.require_expiration ? Number.POSITIVE_INFINITY : undefined;
  const lifetimeMs = durationMs(p.max_lifetime, `${path}.max_lifetime`, problems);
  if (lifetimeMs !== undefined) maxLifetimeSeconds = lifetimeMs / 1000;
  const headerName = (h: string | undefined, at: string): string | undefined => {
    if (h === undefined || h === '') return undefined;
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(h)) problems.add(at, `not a valid header name: ${JSON.stringify(h)}`);
    return h.toLowerCase();
  };
  const forwardPayloadHeader = headerName(p.forward_payload_header, `${path}.forward_payload_header`);
  const claimToHeaders = (p.claim_to_headers ?? []).map((c, i) => {
    const header = headerName(c.header_name, `${path}.claim_to_headers[${i}].header_name`);
    if (!header) problems.add(`${path}.claim_to_headers[${i}].header_name`, 'required');
    if (!c.claim_name) problems.add(`${path}.claim_to_headers[${i}].claim_name`, 'required');
    return { header: header ?? '', claim: c.claim_name ?? '' };
  });
  const fromHeaders = (p.from_headers ?? []).map((h, i) => {
    if (!h.name) problems.add(`${path}.from_headers[${i}].name`, 'required');
    return { name: (h.name ?? '').toLowerCase(), valuePrefix: h.value_prefix ?? '' };
  });
  if (p.local_jwks) {
    const strings: string[] = [];
    const bytes = readDataSource(p.local_jwks, `${path}.local_jwks`, strings, false);
    for (const s of strings) problems.add('', s);
    const text = bytes?.toString('utf8') ?? '';
    // Envoy only warns about an inline JWKS that is not a JWKS at all; Trellis refuses it so the mistake shows at apply time.
    const shape = jwksShapeProblem(text);
    if (shape) problems.add(`${path}.local_jwks`, shape);
    else jwks = new LocalJwks(text);
  }
  if (p.remote_jwks) {
    const r = p.remote_jwks;
    rejectUnsupportedFields(r, SUPPORTED_REMOTE, `${path}.remote_jwks`, problems);
    const uri = r.http_uri?.uri ?? '';
    const cluster = r.http_uri?.cluster ?? '';
    let valid = true;
    try {
      const u = new URL(uri);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    } catch {
      problems.add(`${path}.remote_jwks.http_uri.uri`, `Provider '${name}' has an invalid URI: '${uri}'`);
      valid = false;
    }
    if (!cluster) {
      problems.add(`${path}.remote_jwks.http_uri.cluster`, 'required');
      valid = false;
    }
    const timeoutMs = durationMs(r.http_uri?.timeout, `${path}.remote_jwks.http_uri.timeout`, problems) ?? 1000;
    const cacheDurationMs = durationMs(r.cache_duration, `${path}.remote_jwks.cache_duration`, problems) ?? DEFAULT_JWKS_CACHE_DURATION_MS;
    const failedRefetchMs = durationMs(r.async_fetch?.failed_refetch_duration, `${path}.remote_jwks.async_fetch.failed_refetch_duration`, problems) ?? DEFAULT_FAILED_REFETCH_MS;
    let retry: { numRetries: number; baseMs: number; maxMs: number } | undefined;
    if (r.retry_policy) {
      const rp = r.retry_policy;
      rejectUnsupportedFields(rp, new Set(['retry_back_off', 'num_retries', 'retry_on']), `${path}.remote_jwks.retry_policy`, problems);
      const baseMs = durationMs(rp.retry_back_off?.base_interval, `${path}.remote_jwks.retry_policy.retry_back_off.base_interval`, problems) ?? 25;
      const maxMs = durationMs(rp.retry_back_off?.max_interval, `${path}.remote_jwks.retry_policy.retry_back_off.max_interval`, problems) ?? baseMs * 10;
      if (rp.retry_back_off && maxMs < baseMs) problems.add(`${path}.remote_jwks.retry_policy.retry_back_off.max_interval`, 'must not be less than base_interval');
      // core.v3.RetryPolicy: num_retries defaults to 1.
      retry = { numRetries: rp.num_retries?.value ?? 1, baseMs, maxMs };
    }
    if (valid && problems.details.length === before) {
      jwks = new RemoteJwks(
        {
          httpUri: { uri, cluster, timeoutMs },
          cacheDurationMs,
          ...(r.async_fetch ? { asyncFetch: { failedRefetchMs } } : {}),
          ...(retry ? { retry } : {}),
        },
        deps.clusters,
        deps.jwksStats,
      );
    }
  }
  if (problems.details.length > before) {
    jwks?.close();
    return undefined;
  }
  const issuer = p.issuer ?? '';
  const locations: LocationConfig = {
    issuer,
    fromHeaders,
    fromParams: p.from_params ?? [],
    fromCookies: p.from_cookies ?? [],
    headersToSanitize: [...(forwardPayloadHeader ? [forwardPayloadHeader] : []), ...claimToHeaders.map((c) => c.header)],
  };
  const provider: CompiledProvider = {
    name,
    issuer,
    audiences: new AudienceChecker(p.audiences ?? []),
    ...(subjects ? { subjects } : {}),
    ...(maxLifetimeSeconds !== undefined ? { maxLifetimeSeconds } : {}),
    clockSkewSeconds: p.clock_skew_seconds && p.clock_skew_seconds > 0 ? p.clock_skew_seconds : DEFAULT_CLOCK_SKEW_SECONDS,
    jwks,
    forward: p.forward === true,
    ...(forwardPayloadHeader ? { forwardPayloadHeader } : {}),
    padForwardPayloadHeader: p.pad_forward_payload_header === true,
    ...(p.payload_in_metadata ? { payloadInMetadata: p.payload_in_metadata } : {}),
    ...(p.header_in_metadata ? { headerInMetadata: p.header_in_metadata } : {}),
    claimToHeaders,
    clearRouteCache: p.clear_route_cache === true,
    extractor: new Extractor([locations]),
    ...(p.jwt_cache_config ? { jwtCache: new JwtCache(p.jwt_cache_config.jwt_cache_size || DEFAULT_JWT_CACHE_SIZE) } : {}),
  };
  return { provider, locations };
}

/** The structural checks of Jwks::createFrom that need no key import (those happen asynchronously in Jwks.parse). */
function jwksShapeProblem(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'Jwks is an invalid JSON';
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'Jwks is an invalid JSON';
  const keys = (doc as Record<string, unknown>)['keys'];
  if (keys === undefined) return 'Jwks does not have [keys] field';
  if (!Array.isArray(keys)) return '[keys] in Jwks is not an array';
  // An empty key set is accepted (every token is then refused: `Jwks doesn't have any valid public key`): it is what
  // the control plane emits for a rule without a usable key source, as Istio's placeholder JWKS.
  return undefined;
}

export function compilePerRouteConfig(config: PerRouteConfig): CompiledPerRoute {
  const problems = new ConfigProblems();
  rejectUnsupportedFields(config, new Set(['disabled', 'requirement_name']), '', problems);
  if (!config.disabled && !config.requirement_name) problems.add('', 'one of disabled or requirement_name is required');
  problems.throwIfAny();
  return config.disabled ? { disabled: true } : { disabled: false, requirementName: config.requirement_name! };
}
