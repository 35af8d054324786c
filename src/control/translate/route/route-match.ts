// VirtualService match conditions as Envoy RouteMatch (Istio's TranslateRouteMatch): uri, headers, withoutHeaders, method, authority, scheme, query parameters.
import type { HTTPMatchRequest, StringMatch } from '../../../api/index.js';
import type { envoy } from '../../../xds/generated/types.js';

export type RouteMatch = envoy.config.route.v3.RouteMatch;
export type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;
export type StringMatcher = envoy.type.matcher.v3.StringMatcher;
type QueryParameterMatcher = envoy.config.route.v3.QueryParameterMatcher;
type Route = envoy.config.route.v3.Route;

/** Istio's ConvertToEnvoyMatch: exact/prefix/regex as an Envoy StringMatcher (regex as safe_regex, RE2). */
export function toStringMatcher(match: StringMatch): StringMatcher | undefined {
  if (match.exact !== undefined) return { exact: match.exact };
  if (match.prefix !== undefined) return { prefix: match.prefix };
  if (match.regex !== undefined) return { safe_regex: { regex: match.regex } };
  return undefined;
}

/** An empty StringMatch, or the regex `*` (a glob, not RE2), means "present" (istio/istio#20629). */
function isPresentMatch(match: StringMatch | undefined): boolean {
  if (!match) return true;
  if (match.exact === undefined && match.prefix === undefined && match.regex === undefined) return true;
  return match.regex === '*';
}

function headerMatcher(name: string, match: StringMatch | undefined): HeaderMatcher {
  if (isPresentMatch(match)) return { name, present_match: true };
  return { name, string_match: toStringMatcher(match!) };
}

function queryParameterMatcher(name: string, match: StringMatch | undefined): QueryParameterMatcher {
  if (isPresentMatch(match)) return { name, present_match: true };
  return { name, string_match: toStringMatcher(match!) };
}

/**
 * Istio's TranslateRouteMatch for sidecars and Istio gateways. Header matchers are sorted by name (Go maps have no
 * order, Istio sorts to keep output stable), then `:method`, `:authority`, `:scheme`; case_sensitive is always set.
 * `@request.auth.claims` headers (JWT claim routing) are not translated here.
 */
export function translateRouteMatch(match: HTTPMatchRequest | undefined): RouteMatch {
  const out: RouteMatch = { prefix: '/' };
  if (!match) return out;
  const headers: HeaderMatcher[] = [];
  for (const [name, stringMatch] of Object.entries(match.headers ?? {})) headers.push(headerMatcher(name, stringMatch));
  for (const [name, stringMatch] of Object.entries(match.withoutHeaders ?? {})) {
    const matcher = headerMatcher(name, stringMatch);
    matcher.invert_match = true;
    // treat_missing_header_as_empty conflicts with present_match.
    if (!isPresentMatch(stringMatch)) matcher.treat_missing_header_as_empty = true;
    headers.push(matcher);
  }
  headers.sort((a, b) => (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));

  const uri = match.uri;
  if (uri) {
    if (uri.exact !== undefined) {
      delete out.prefix;
      out.path = uri.exact;
    } else if (uri.prefix !== undefined) {
      out.prefix = uri.prefix;
    } else if (uri.regex !== undefined) {
      delete out.prefix;
      out.safe_regex = { regex: uri.regex };
    }
  }
  out.case_sensitive = { value: !match.ignoreUriCase };
  if (match.method) headers.push(headerMatcher(':method', match.method));
  if (match.authority) headers.push(headerMatcher(':authority', match.authority));
  if (match.scheme) headers.push(headerMatcher(':scheme', match.scheme));
  if (headers.length > 0) out.headers = headers;

  const query = Object.entries(match.queryParams ?? {}).map(([name, stringMatch]) => queryParameterMatcher(name, stringMatch));
  if (query.length > 0) out.query_parameters = query;
  return out;
}

/** Istio's IsCatchAllRoute: prefix `/` (or regex `.*`) with no header, query or metadata condition. */
export function isCatchAllRoute(route: Route): boolean {
  const m = route.match;
  if (!m) return false;
  const catchAllPath = m.prefix === '/' || m.path_separated_prefix === '/' || m.safe_regex?.regex === '.*';
  return catchAllPath && (m.headers ?? []).length === 0 && (m.query_parameters ?? []).length === 0 && (m.dynamic_metadata ?? []).length === 0;
}
