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

type PathPredicate = (path: string, end: number) => boolean;

function compilePathPredicate(kind: PathMatchKind, text: string, caseSensitive: boolean, regex: RegExp | undefined): PathPredicate {
  const lower = asciiLower(text);
  switch (kind) {
    case 'prefix':
      return caseSensitive
        ? (path, end) => end >= text.length && path.startsWith(text)
        : (path, end) => end >= lower.length && equalsIgnoreCaseAt(path, 0, lower);
    case 'path':
      return caseSensitive
        ? (path, end) => end === text.length && path.startsWith(text)
        : (path, end) => end === lower.length && equalsIgnoreCaseAt(path, 0, lower);
    case 'path_separated_prefix': {
      const head = caseSensitive ? (path: string) => path.startsWith(text) : (path: string) => equalsIgnoreCaseAt(path, 0, lower);
      return (path, end) => end >= text.length && head(path) && (end === text.length || path.charCodeAt(text.length) === 47); /* / */
    }
    case 'safe_regex':
      return (path, end) => regex!.test(end === path.length ? path : path.slice(0, end));
  }
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

  return buildMatcher(kind, text, compilePathPredicate(kind, text, caseSensitive, regex), headers, query, fraction, match.grpc !== undefined, options.ignorePathParameters);
}

function buildMatcher(
  kind: PathMatchKind,
  matchedText: string,
  pathPredicate: PathPredicate,
  headers: readonly CompiledHeaderMatcher[],
  query: readonly QueryMatcher[],
  fraction: number | undefined,
  grpc: boolean,
  ignorePathParameters: boolean,
): CompiledRouteMatch {
  const hasExtra = headers.length > 0 || query.length > 0 || fraction !== undefined || grpc;
  return {
    kind,
    matchedText,
    matches(requestHeaders, random) {
      const raw = requestHeaders[':path'];
      const path = typeof raw === 'string' ? raw : raw?.[0];
      if (path === undefined) return false;
      if (!pathPredicate(path, pathEnd(path, ignorePathParameters))) return false;
      if (!hasExtra) return true;
      // Envoy: random_value % denominator < numerator; `random` is uniform in [0, 1).
      if (fraction !== undefined && !(random < fraction)) return false;
      if (headers.length > 0 && !matchHeaders(requestHeaders, headers)) return false;
      for (let i = 0; i < query.length; i++) {
        const q = query[i]!;
        const value = queryParameter(path, q.name);
        if (value === undefined) return false;
        if (q.predicate && !q.predicate(value)) return false;
      }
      if (grpc && !isGrpcRequest(requestHeaders)) return false;
      return true;
    },
  };
}
