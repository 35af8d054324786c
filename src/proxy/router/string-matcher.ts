// Envoy's StringMatcher (exact, prefix, suffix, contains, safe_regex; ignore_case ASCII-only like absl) compiled to a predicate that does not allocate.
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, fieldPath, rejectUnsupportedFields } from './config-problems.js';
import { compileFullMatchRegex } from './regex.js';

type StringMatcher = envoy.type.matcher.v3.StringMatcher;

export type StringPredicate = (value: string) => boolean;

const SUPPORTED = new Set(['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case']);

function lowerAscii(code: number): number {
  return code >= 65 && code <= 90 ? code + 32 : code;
}

/** True when `value` has `lowerNeedle` (already lower-case ASCII) at `offset`, comparing ASCII case-insensitively. */
export function equalsIgnoreCaseAt(value: string, offset: number, lowerNeedle: string): boolean {
  if (offset < 0 || offset + lowerNeedle.length > value.length) return false;
  for (let i = 0; i < lowerNeedle.length; i++) {
    if (lowerAscii(value.charCodeAt(offset + i)) !== lowerNeedle.charCodeAt(i)) return false;
  }
  return true;
}

/** ASCII-only lower-casing, like absl::AsciiStrToLower (non-ASCII letters are left alone). */
export function asciiLower(value: string): string {
  return value.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** Compiles a StringMatcher at `path`; reports what is missing, empty or unsupported (custom matchers). */
export function compileStringMatcher(matcher: StringMatcher | undefined, path: string, problems: ConfigProblems): StringPredicate | undefined {
  if (matcher === undefined) {
    problems.add(path, 'a string matcher is required');
    return undefined;
  }
  rejectUnsupportedFields(matcher, SUPPORTED, path, problems);
  const kinds = (['exact', 'prefix', 'suffix', 'contains', 'safe_regex'] as const).filter((k) => matcher[k] !== undefined);
  if (kinds.length === 0) {
    if (matcher.custom === undefined) problems.add(path, 'one of exact, prefix, suffix, contains or safe_regex is required');
    return undefined;
  }
  if (kinds.length > 1) {
    problems.add(path, `only one of exact, prefix, suffix, contains, safe_regex may be set (got ${kinds.join(', ')})`);
    return undefined;
  }
  const kind = kinds[0]!;
  const ignoreCase = matcher.ignore_case === true;
  if (kind === 'safe_regex') {
    // Envoy: ignore_case has no effect on safe_regex.
    const regex = compileFullMatchRegex(matcher.safe_regex, fieldPath(path, 'safe_regex'), problems);
    return regex ? (value) => regex.test(value) : undefined;
  }
  const text = matcher[kind] as string;
  if (kind !== 'exact' && text === '') {
    problems.add(fieldPath(path, kind), 'must not be empty');
    return undefined;
  }
  return textPredicate(kind, text, ignoreCase);
}

/** exact/prefix/suffix/contains of `text`, optionally ASCII case-insensitive. */
export function textPredicate(kind: 'exact' | 'prefix' | 'suffix' | 'contains', text: string, ignoreCase: boolean): StringPredicate {
  if (!ignoreCase) {
    switch (kind) {
      case 'exact':
        return (value) => value === text;
      case 'prefix':
        return (value) => value.startsWith(text);
      case 'suffix':
        return (value) => value.endsWith(text);
      case 'contains':
        return (value) => value.includes(text);
    }
  }
  const lower = asciiLower(text);
  switch (kind) {
    case 'exact':
      return (value) => value.length === lower.length && equalsIgnoreCaseAt(value, 0, lower);
    case 'prefix':
      return (value) => equalsIgnoreCaseAt(value, 0, lower);
    case 'suffix':
      return (value) => equalsIgnoreCaseAt(value, value.length - lower.length, lower);
    case 'contains':
      return (value) => {
        for (let i = 0; i + lower.length <= value.length; i++) if (equalsIgnoreCaseAt(value, i, lower)) return true;
        return false;
      };
  }
}
