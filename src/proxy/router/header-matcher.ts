// Envoy's HeaderMatcher (route matches, and later RBAC, retriable headers…): string_match and the legacy fields, present, range, invert, treat_missing_header_as_empty.
import type { HttpHeaders } from '../http/headers.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, fieldPath, isValidHeaderName, rejectUnsupportedFields } from './config-problems.js';
import { compileFullMatchRegex } from './regex.js';
import { asciiLower, compileStringMatcher, textPredicate, type StringPredicate } from './string-matcher.js';

type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;

export interface CompiledHeaderMatcher {
  /** Lower-case header name (`:authority`, `x-user`…). */
  readonly name: string;
  matches(headers: HttpHeaders): boolean;
}

const SUPPORTED = new Set([
  'name',
  'exact_match',
  'safe_regex_match',
  'range_match',
  'present_match',
  'prefix_match',
  'suffix_match',
  'contains_match',
  'string_match',
  'invert_match',
  'treat_missing_header_as_empty',
]);

const SPECIFIERS = ['exact_match', 'safe_regex_match', 'range_match', 'present_match', 'prefix_match', 'suffix_match', 'contains_match', 'string_match'] as const;

/** All values of a header joined with ',' (Envoy's getAllOfHeaderAsString), or undefined when absent. */
export function headerAsString(headers: HttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (value.length === 0) return undefined;
  return value.length === 1 ? value[0] : value.join(',');
}

/** absl::SimpleAtoi for int64: optional surrounding whitespace and sign, decimal digits. */
function parseInteger(value: string): number | undefined {
  if (!/^\s*[+-]?\d+\s*$/.test(value)) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) || Math.abs(n) < 9.3e18 ? n : undefined;
}

/**
 * Compiles one HeaderMatcher at `path`. Semantics of Envoy's HeaderUtility::matchHeaders: a missing header matches
 * only `present_match: false` (or, inverted, `present_match: true`) unless treat_missing_header_as_empty, which
 * matches the empty string instead; repeated headers are joined with ','; no specifier means "present".
 */
export function compileHeaderMatcher(matcher: HeaderMatcher, path: string, problems: ConfigProblems): CompiledHeaderMatcher | undefined {
  rejectUnsupportedFields(matcher, SUPPORTED, path, problems);
  const rawName = matcher.name ?? '';
  if (!isValidHeaderName(rawName)) {
    problems.add(fieldPath(path, 'name'), 'a valid header name is required');
    return undefined;
  }
  const name = asciiLower(rawName);
  const specifiers = SPECIFIERS.filter((k) => matcher[k] !== undefined);
  if (specifiers.length > 1) {
    problems.add(path, `only one of ${SPECIFIERS.join(', ')} may be set (got ${specifiers.join(', ')})`);
    return undefined;
  }
  const invert = matcher.invert_match === true;
  const missingAsEmpty = matcher.treat_missing_header_as_empty === true;
  const kind = specifiers[0];

  // Present-type matchers: the result only depends on presence.
  if (kind === undefined || kind === 'present_match') {
    const present = kind === undefined ? true : matcher.present_match === true;
    return {
      name,
      matches(headers) {
        const value = headerAsString(headers, name);
        if (value === undefined && !missingAsEmpty) return invert ? present : !present;
        return present !== invert;
      },
    };
  }

  let predicate: StringPredicate | undefined;
  switch (kind) {
    case 'exact_match': {
      const expected = matcher.exact_match!;
      // Legacy exact_match: an empty value matches any value (Envoy's HeaderMatchType::Value).
      predicate = expected === '' ? () => true : (value) => value === expected;
      break;
    }
    case 'prefix_match':
    case 'suffix_match':
    case 'contains_match': {
      const text = matcher[kind]!;
      if (text === '') {
        problems.add(fieldPath(path, kind), 'must not be empty');
        return undefined;
      }
      predicate = textPredicate(kind === 'prefix_match' ? 'prefix' : kind === 'suffix_match' ? 'suffix' : 'contains', text, false);
      break;
    }
    case 'safe_regex_match': {
      const regex = compileFullMatchRegex(matcher.safe_regex_match, fieldPath(path, 'safe_regex_match'), problems);
      if (!regex) return undefined;
      predicate = (value) => regex.test(value);
      break;
    }
    case 'string_match':
      predicate = compileStringMatcher(matcher.string_match, fieldPath(path, 'string_match'), problems);
      break;
    case 'range_match': {
      const start = Number(matcher.range_match!.start ?? 0);
      const end = Number(matcher.range_match!.end ?? 0);
      if (!(start < end)) {
        problems.add(fieldPath(path, 'range_match'), `start (${start}) must be less than end (${end})`);
        return undefined;
      }
      predicate = (value) => {
        const n = parseInteger(value);
        return n !== undefined && n >= start && n < end;
      };
      break;
    }
  }
  if (!predicate) return undefined;
  const match = predicate;
  return {
    name,
    matches(headers) {
      let value = headerAsString(headers, name);
      if (value === undefined) {
        // Envoy: an absent header fails every value matcher, inverted or not.
        if (!missingAsEmpty) return false;
        value = '';
      }
      return match(value) !== invert;
    },
  };
}

/** Compiles a list of HeaderMatchers (`path` is the list's path, entries get `[i]`). */
export function compileHeaderMatchers(matchers: readonly HeaderMatcher[] | undefined, path: string, problems: ConfigProblems): CompiledHeaderMatcher[] {
  const out: CompiledHeaderMatcher[] = [];
  (matchers ?? []).forEach((m, i) => {
    const compiled = compileHeaderMatcher(m, `${path}[${i}]`, problems);
    if (compiled) out.push(compiled);
  });
  return out;
}

/** True when every matcher matches (an empty list matches). */
export function matchHeaders(headers: HttpHeaders, matchers: readonly CompiledHeaderMatcher[]): boolean {
  for (let i = 0; i < matchers.length; i++) if (!matchers[i]!.matches(headers)) return false;
  return true;
}
