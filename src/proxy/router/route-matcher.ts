// Envoy's RouteMatch compiled: path (prefix, path, safe_regex, path_separated_prefix; case_sensitive), headers, query parameters, runtime_fraction, grpc.
import type { HttpHeaders } from '../http/headers.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, fieldPath, fractionOf, rejectUnsupportedFields } from './config-problems.js';
import { compileHeaderMatchers, matchHeaders, type CompiledHeaderMatcher } from './header-matcher.js';
import { compileFullMatchRegex } from './regex.js';
import { asciiLower, compileStringMatcher, equalsIgnoreCaseAt, type StringPredicate } from './string-matcher.js';

type RouteMatch = envoy.config.route.v3.RouteMatch;

const SUPPORTED = new Set([
  'prefix',
  'path',
  'safe_regex',
  'path_separated_prefix',
  'case_sensitive',
  'runtime_fraction',
  'headers',
  'query_parameters',
  'grpc',
]);
const PATH_SPECIFIERS = ['prefix', 'path', 'safe_regex', 'path_separated_prefix'] as const;

export type PathMatchKind = (typeof PATH_SPECIFIERS)[number];

export interface CompiledRouteMatch {
  readonly kind: PathMatchKind;
  /** The configured prefix or path (empty for safe_regex): what prefix_rewrite replaces. */
  readonly matchedText: string;
  matches(headers: HttpHeaders, random: number): boolean;
  /**
   * The same, for a caller that already read `:path` and its end (pathEnd): the route table does this once per
   * request instead of once per route.
   */
  matchesPath(headers: HttpHeaders, path: string, end: number, random: number): boolean;
}

export interface RouteMatchOptions {
  /** RouteConfiguration.ignore_path_parameters_in_path_matching: the path is cut at its first ';'. */
  readonly ignorePathParameters: boolean;
}

/** End of the path part of `:path` (Envoy's removeQueryAndFragment), optionally at the first ';'. */
export function pathEnd(path: string, ignorePathParameters: boolean): number {
  let end = path.length;
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */ || (ignorePathParameters && c === 59) /* ; */) {
      end = i;
      break;
    }
  }
  return end;
}

/** The first value of query parameter `name` in `path` (raw, not URL-decoded, like Envoy's parseQueryString), or undefined. */
export function queryParameter(path: string, name: string): string | undefined {
  let i = path.indexOf('?');
  if (i < 0) return undefined;
  i++;
  while (i <= path.length) {
    let end = path.indexOf('&', i);
    if (end < 0) end = path.length;
    if (end > i) {
      const eq = path.indexOf('=', i);
      if (eq >= 0 && eq < end) {
        if (eq - i === name.length && path.startsWith(name, i)) return path.slice(eq + 1, end);
      } else if (end - i === name.length && path.startsWith(name, i)) {
        return '';
      }
    }
    i = end + 1;
  }
  return undefined;
}

interface QueryMatcher {
  readonly name: string;
  /** undefined: presence only. */
  readonly predicate?: StringPredicate;
}

function compileQueryMatchers(list: RouteMatch['query_parameters'], path: string, problems: ConfigProblems): QueryMatcher[] {
  const out: QueryMatcher[] = [];
  (list ?? []).forEach((q, i) => {
    const p = `${path}[${i}]`;
    rejectUnsupportedFields(q, new Set(['name', 'string_match', 'present_match']), p, problems);
    const name = q.name ?? '';
    if (name === '') {
      problems.add(fieldPath(p, 'name'), 'must not be empty');
      return;
    }
    if (q.string_match !== undefined && q.present_match !== undefined) {
      problems.add(p, 'only one of string_match, present_match may be set');
      return;
    }
    if (q.string_match !== undefined) {
      const predicate = compileStringMatcher(q.string_match, fieldPath(p, 'string_match'), problems);
      if (predicate) out.push({ name, predicate });
      return;
    }
    // present_match (true or false) and no specifier both mean "present" in Envoy's QueryParameterMatcher.
    out.push({ name });
  });
  return out;
}

/** Envoy's Grpc::Common::hasGrpcContentType: `application/grpc` or `application/grpc+…`. */
function isGrpcRequest(headers: HttpHeaders): boolean {
  const raw = headers['content-type'];
  const value = typeof raw === 'string' ? raw : raw?.[0];
  if (value === undefined || !value.startsWith('application/grpc')) return false;
  return value.length === 16 || value.charCodeAt(16) === 43; /* + */
}

/** Compiles a RouteMatch at `path`; undefined when it has problems (all of them reported). */
export function compileRouteMatch(match: RouteMatch | undefined, path: string, problems: ConfigProblems, options: RouteMatchOptions): CompiledRouteMatch | undefined {
  if (match === undefined) {
    problems.add(path, 'a match is required');
    return undefined;
  }
  const before = problems.details.length;
  rejectUnsupportedFields(match, SUPPORTED, path, problems);
  const kinds = PATH_SPECIFIERS.filter((k) => match[k] !== undefined);
  if (kinds.length !== 1) {
    problems.add(path, kinds.length === 0 ? `one of ${PATH_SPECIFIERS.join(', ')} is required` : `only one of ${PATH_SPECIFIERS.join(', ')} may be set (got ${kinds.join(', ')})`);
    return undefined;
  }
  const kind = kinds[0]!;
  // case_sensitive defaults to true; Envoy ignores it for safe_regex.
  const caseSensitive = match.case_sensitive === undefined || match.case_sensitive === null || match.case_sensitive.value === true;
  let text = '';
  let regex: RegExp | undefined;
  if (kind === 'safe_regex') {
    regex = compileFullMatchRegex(match.safe_regex, fieldPath(path, 'safe_regex'), problems);
  } else {
    text = match[kind]!;
    if (kind === 'path_separated_prefix' && !/^[^?#]+[^?#/]$/.test(text)) {
      problems.add(fieldPath(path, kind), `must not be empty, contain ? or #, or end in / (got ${JSON.stringify(text)})`);
    }
  }
  const headers = compileHeaderMatchers(match.headers, fieldPath(path, 'headers'), problems);
  const query = compileQueryMatchers(match.query_parameters, fieldPath(path, 'query_parameters'), problems);
  const fraction = match.runtime_fraction === undefined ? undefined : fractionOf(match.runtime_fraction.default_value, fieldPath(path, 'runtime_fraction.default_value'), problems);
  if (match.runtime_fraction !== undefined) {
    rejectUnsupportedFields(match.runtime_fraction, new Set(['default_value', 'runtime_key']), fieldPath(path, 'runtime_fraction'), problems);
  }
  if (problems.details.length > before) return undefined;

  return new RouteMatcher(kind, text, caseSensitive, regex, headers, query, fraction, match.grpc !== undefined, options.ignorePathParameters);
}

const PREFIX = 0;
const PATH = 1;
const SEPARATED = 2;
const REGEX = 3;
const KIND_CODE: Readonly<Record<PathMatchKind, number>> = { prefix: PREFIX, path: PATH, path_separated_prefix: SEPARATED, safe_regex: REGEX };

/**
 * One class for every route (a switch on the path kind rather than a closure per kind), so the route table's loop
 * calls one monomorphic method.
 */
class RouteMatcher implements CompiledRouteMatch {
  private readonly code: number;
  private readonly lower: string;
  private readonly hasExtra: boolean;

  constructor(
    readonly kind: PathMatchKind,
    readonly matchedText: string,
    private readonly caseSensitive: boolean,
    private readonly regex: RegExp | undefined,
    private readonly headers: readonly CompiledHeaderMatcher[],
    private readonly query: readonly QueryMatcher[],
    private readonly fraction: number | undefined,
    private readonly grpc: boolean,
    private readonly ignorePathParameters: boolean,
  ) {
    this.code = KIND_CODE[kind];
    this.lower = asciiLower(matchedText);
    this.hasExtra = headers.length > 0 || query.length > 0 || fraction !== undefined || grpc;
  }

  matches(requestHeaders: HttpHeaders, random: number): boolean {
    const raw = requestHeaders[':path'];
    const path = typeof raw === 'string' ? raw : raw?.[0];
    if (path === undefined) return false;
    return this.matchesPath(requestHeaders, path, pathEnd(path, this.ignorePathParameters), random);
  }

  private pathMatches(path: string, end: number): boolean {
    const text = this.matchedText;
    switch (this.code) {
      case PREFIX:
        return end >= text.length && (this.caseSensitive ? path.startsWith(text) : equalsIgnoreCaseAt(path, 0, this.lower));
      case PATH:
        return end === text.length && (this.caseSensitive ? path.startsWith(text) : equalsIgnoreCaseAt(path, 0, this.lower));
      case SEPARATED:
        return (
          end >= text.length &&
          (this.caseSensitive ? path.startsWith(text) : equalsIgnoreCaseAt(path, 0, this.lower)) &&
          (end === text.length || path.charCodeAt(text.length) === 47) /* / */
        );
      default:
        // Only a path with a query or fragment is copied, to full-match its path part.
        return this.regex!.test(end === path.length ? path : path.slice(0, end));
    }
  }

  matchesPath(requestHeaders: HttpHeaders, path: string, end: number, random: number): boolean {
    if (!this.pathMatches(path, end)) return false;
    if (!this.hasExtra) return true;
    // Envoy: random_value % denominator < numerator; `random` is uniform in [0, 1).
    if (this.fraction !== undefined && !(random < this.fraction)) return false;
    if (this.headers.length > 0 && !matchHeaders(requestHeaders, this.headers)) return false;
    const query = this.query;
    for (let i = 0; i < query.length; i++) {
      const q = query[i]!;
      const value = queryParameter(path, q.name);
      if (value === undefined) return false;
      if (q.predicate && !q.predicate(value)) return false;
    }
    if (this.grpc && !isGrpcRequest(requestHeaders)) return false;
    return true;
  }
}
