// Envoy's safe_regex (RE2 syntax) compiled to JavaScript RegExp: full-match semantics, RE2-only syntax translated,
// and what RE2 refuses (backreferences, lookaround) refused here too so a config Envoy NACKs is NACKed by Trellis.
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, fieldPath } from './config-problems.js';

type RegexMatcher = envoy.type.matcher.v3.RegexMatcher;

/** A translated pattern: JS source (not anchored) and flags. */
export interface Re2Pattern {
  readonly source: string;
  readonly flags: string;
}

/**
 * Translates RE2 syntax to JS: `(?P<name>` → `(?<name>`, leading `(?i)`/`(?s)`/`(?m)` → flags, `\A` → `^`, `\z` → `$`.
 * Returns a message for what RE2 does not accept or Trellis cannot translate.
 */
export function translateRe2(regex: string): Re2Pattern | string {
  let flags = '';
  let rest = regex;
  const leading = /^\(\?([ism]+)\)/.exec(rest);
  if (leading) {
    for (const f of leading[1]!) if (!flags.includes(f)) flags += f;
    rest = rest.slice(leading[0].length);
  }
  let out = '';
  let inClass = false;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (c === '\\') {
      const n = rest[i + 1];
      if (n === undefined) return 'trailing \\';
      if (!inClass && n >= '1' && n <= '9') return `backreference \\${n} is not supported by RE2`;
      if (n === 'k' && rest[i + 2] === '<') return 'backreference \\k<…> is not supported by RE2';
      if (n === 'Q') return '\\Q…\\E literals are not supported by Trellis';
      if (n === 'p' || n === 'P') return `Unicode classes \\${n} are not supported by Trellis`;
      if (n === 'C') return '\\C is not supported';
      if (!inClass && n === 'A') {
        out += '^';
        i++;
        continue;
      }
      if (!inClass && n === 'z') {
        out += '$';
        i++;
        continue;
      }
      out += c + n;
      i++;
      continue;
    }
    if (inClass) {
      if (c === '[' && rest[i + 1] === ':') return 'POSIX character classes ([[:alpha:]]) are not supported by Trellis';
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      // A ']' right after '[' or '[^' is literal in RE2.
      if (rest[i + 1] === '^') {
        out += '^';
        i++;
      }
      if (rest[i + 1] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && rest[i + 1] === '?') {
      const after = rest.slice(i + 2, i + 4);
      if (after.startsWith('=') || after.startsWith('!') || after === '<=' || after === '<!') {
        return 'lookaround assertions are not supported by RE2';
      }
      if (after.startsWith('P') && rest[i + 4 - 1] === '<') {
        out += '(?<';
        i += 3;
        continue;
      }
      if (after.startsWith(':') || (after.startsWith('<') && after !== '<=' && after !== '<!')) {
        out += c;
        continue;
      }
      return 'inline flag groups other than a leading (?i), (?s) or (?m) are not supported by Trellis';
    }
    out += c;
  }
  return { source: out, flags };
}

/** Compiles `source` anchored for a full match (Envoy's safe_regex semantics); a message when it does not compile. */
function compileAnchored(pattern: Re2Pattern, extraFlags = ''): RegExp | string {
  try {
    return new RegExp(`^(?:${pattern.source})$`, pattern.flags + extraFlags);
  } catch (err) {
    return (err as Error).message;
  }
}

/** Reads `matcher.regex`, reporting problems at `path` (`…safe_regex`); returns the translated pattern. */
export function re2PatternOf(matcher: RegexMatcher | undefined, path: string, problems: ConfigProblems): Re2Pattern | undefined {
  const regexPath = fieldPath(path, 'regex');
  const regex = matcher?.regex;
  if (regex === undefined || regex === '') {
    problems.add(regexPath, 'a regex is required');
    return undefined;
  }
  const translated = translateRe2(regex);
  if (typeof translated === 'string') {
    problems.add(regexPath, `does not compile: ${translated}`);
    return undefined;
  }
  const compiled = compileAnchored(translated);
  if (typeof compiled === 'string') {
    problems.add(regexPath, `does not compile: ${compiled}`);
    return undefined;
  }
  return translated;
}

/** A full-match RegExp for an Envoy RegexMatcher (anchored: the whole value must match). */
export function compileFullMatchRegex(matcher: RegexMatcher | undefined, path: string, problems: ConfigProblems, ignoreCase = false): RegExp | undefined {
  const pattern = re2PatternOf(matcher, path, problems);
  if (!pattern) return undefined;
  const compiled = compileAnchored(pattern, ignoreCase && !pattern.flags.includes('i') ? 'i' : '');
  return typeof compiled === 'string' ? undefined : compiled;
}

/** A compiled RegexMatchAndSubstitute: replaces every match in a value (RE2::GlobalReplace). */
export type RegexSubstitution = (value: string) => string;

/**
 * Compiles regex_rewrite (`pattern` + `substitution` with RE2's `\1` group references) into a global replace. The
 * substitution's `\N` becomes JS's `$N`, `\\` a backslash, and a literal `$` is escaped.
 */
export function compileRegexSubstitution(
  rewrite: envoy.type.matcher.v3.RegexMatchAndSubstitute | undefined,
  path: string,
  problems: ConfigProblems,
): RegexSubstitution | undefined {
  const pattern = re2PatternOf(rewrite?.pattern, fieldPath(path, 'pattern'), problems);
  if (!pattern) return undefined;
  let regex: RegExp;
  try {
    regex = new RegExp(pattern.source, `${pattern.flags}g`);
  } catch (err) {
    problems.add(fieldPath(path, 'pattern.regex'), `does not compile: ${(err as Error).message}`);
    return undefined;
  }
  const groups = new RegExp(`${pattern.source}|`, pattern.flags).exec('')!.length - 1;
  const substitution = rewrite?.substitution ?? '';
  let replacement = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i]!;
    if (c === '$') {
      replacement += '$$';
      continue;
    }
    if (c !== '\\') {
      replacement += c;
      continue;
    }
    const n = substitution[i + 1];
    if (n === '\\') {
      replacement += '\\';
      i++;
    } else if (n !== undefined && n >= '0' && n <= '9') {
      const group = Number(n);
      if (group > groups) {
        problems.add(fieldPath(path, 'substitution'), `refers to \\${n} but the pattern has ${groups} capture group(s)`);
        return undefined;
      }
      replacement += group === 0 ? '$&' : `$${n}`;
      i++;
    } else {
      problems.add(fieldPath(path, 'substitution'), `invalid rewrite: \\ must be followed by a digit or \\ (RE2 rewrite syntax)`);
      return undefined;
    }
  }
  return (value) => value.replace(regex, replacement);
}
