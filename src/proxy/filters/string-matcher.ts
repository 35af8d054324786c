// Envoy StringMatcher and HeaderMatcher compiled to predicates, for the filters that match on headers (fault, CORS).
import type { envoy } from '../../xds/generated/types.js';
import { headerValue, type HttpHeaders } from '../http/headers.js';

type StringMatcher = envoy.type.matcher.v3.StringMatcher;
type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;

/** Compiles a StringMatcher; pushes a problem (with `path`) and returns a never-matching predicate when invalid. */
export function compileStringMatcher(m: StringMatcher, path: string, problems: string[]): (value: string) => boolean {
  const ic = m.ignore_case === true;
  const norm = (s: string): string => (ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) {
    const e = norm(m.exact);
    return (v) => norm(v) === e;
  }
  if (m.prefix !== undefined) {
    const p = norm(m.prefix);
    return (v) => norm(v).startsWith(p);
  }
  if (m.suffix !== undefined) {
    const s = norm(m.suffix);
    return (v) => norm(v).endsWith(s);
  }
  if (m.contains !== undefined) {
    const c = norm(m.contains);
    return (v) => norm(v).includes(c);
  }
  if (m.safe_regex?.regex !== undefined) {
    try {
      const re = new RegExp(`^(?:${m.safe_regex.regex})$`, ic ? 'i' : '');
      return (v) => re.test(v);
    } catch (err) {
      problems.push(`${path}.safe_regex.regex: ${(err as Error).message}`);
      return () => false;
    }
  }
  problems.push(`${path}: expected exact, prefix, suffix, contains or safe_regex`);
  return () => false;
}

/** Compiles a HeaderMatcher (the subset filters need: string_match, the legacy *_match fields, present, invert). */
export function compileHeaderMatcher(m: HeaderMatcher, path: string, problems: string[]): (headers: HttpHeaders) => boolean {
  const name = (m.name ?? '').toLowerCase();
  if (!name) problems.push(`${path}.name: required`);
  let test: (value: string | undefined) => boolean;
  if (m.string_match) {
    const f = compileStringMatcher(m.string_match, `${path}.string_match`, problems);
    test = (v) => v !== undefined && f(v);
  } else if (m.exact_match !== undefined) test = (v) => v === m.exact_match;
  else if (m.prefix_match !== undefined) test = (v) => v !== undefined && v.startsWith(m.prefix_match!);
  else if (m.suffix_match !== undefined) test = (v) => v !== undefined && v.endsWith(m.suffix_match!);
  else if (m.contains_match !== undefined) test = (v) => v !== undefined && v.includes(m.contains_match!);
  else if (m.safe_regex_match?.regex !== undefined) {
    const f = compileStringMatcher({ safe_regex: m.safe_regex_match }, `${path}.safe_regex_match`, problems);
    test = (v) => v !== undefined && f(v);
  } else if (m.present_match !== undefined) test = (v) => (v !== undefined) === m.present_match;
  else test = (v) => v !== undefined;
  const invert = m.invert_match === true;
  return (headers) => test(headerValue(headers, name)) !== invert;
}

/** FractionalPercent → probability 0..1. */
export function fractionOf(p: envoy.type.v3.FractionalPercent | undefined, fallback: number): number {
  if (!p) return fallback;
  const denominator = p.denominator === 'TEN_THOUSAND' || p.denominator === 1 ? 10_000 : p.denominator === 'MILLION' || p.denominator === 2 ? 1_000_000 : 100;
  return Math.min(1, (p.numerator ?? 0) / denominator);
}

export function denominatorOf(p: envoy.type.v3.FractionalPercent | undefined): number {
  if (!p) return 100;
  return p.denominator === 'TEN_THOUSAND' || p.denominator === 1 ? 10_000 : p.denominator === 'MILLION' || p.denominator === 2 ? 1_000_000 : 100;
}
