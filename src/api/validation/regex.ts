// Checks that a regex Istio would hand to Envoy compiles. Envoy uses RE2; we compile with JS RegExp after
// translating RE2-only syntax, and reject what RE2 lacks (lookaround, backreferences), so close but not exact.

const RE2_UNSUPPORTED: ReadonlyArray<[RegExp, string]> = [
  [/\(\?<?[=!]/, 'lookahead and lookbehind are not supported by RE2'],
  [/(^|[^\\])\\[1-9]/, 'backreferences are not supported by RE2'],
  [/\\k</, 'named backreferences are not supported by RE2'],
];

/** Translates RE2 spellings JS lacks: `(?P<name>` groups and a leading `(?i)`/`(?s)`/`(?m)` flag group. */
export function toJsRegExp(pattern: string): RegExp {
  let flags = 'u';
  let source = pattern.replace(/\(\?P</g, '(?<');
  const leading = /^\(\?([ims]+)\)/.exec(source);
  if (leading) {
    for (const f of leading[1]!) if (!flags.includes(f)) flags += f;
    source = source.slice(leading[0].length);
  }
  return new RegExp(source, flags);
}

/** What is wrong with `pattern` as an RE2 regex, or undefined when it compiles. */
export function regexProblem(pattern: string): string | undefined {
  for (const [test, message] of RE2_UNSUPPORTED) if (test.test(pattern)) return `invalid regex ${JSON.stringify(pattern)}: ${message}`;
  try {
    toJsRegExp(pattern);
    return undefined;
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '') : String(err);
    return `invalid regex ${JSON.stringify(pattern)}: ${reason}; Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)`;
  }
}
