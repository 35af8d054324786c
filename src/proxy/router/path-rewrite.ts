// prefix_rewrite and regex_rewrite of a route (or a redirect): the new :path for a request, computed from the route's match like Envoy.
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, fieldPath } from './config-problems.js';
import { compileRegexSubstitution } from './regex.js';
import { pathEnd, type CompiledRouteMatch } from './route-matcher.js';

/** Returns the rewritten path, or undefined when the route does not rewrite. */
export type PathRewriter = (path: string) => string | undefined;

/**
 * prefix_rewrite replaces the matched prefix (the configured prefix or path; for safe_regex routes the whole path
 * without its query), keeping the rest; regex_rewrite rewrites the path part and keeps the query string.
 */
export function compilePathRewrite(
  prefixRewrite: string | undefined,
  regexRewrite: envoy.type.matcher.v3.RegexMatchAndSubstitute | undefined,
  match: CompiledRouteMatch,
  path: string,
  problems: ConfigProblems,
): PathRewriter | undefined {
  if (prefixRewrite !== undefined && prefixRewrite !== '' && regexRewrite !== undefined) {
    problems.add(path, 'only one of prefix_rewrite, regex_rewrite may be set');
    return undefined;
  }
  if (prefixRewrite !== undefined && prefixRewrite !== '') {
    if (match.kind === 'safe_regex') {
      return (p) => prefixRewrite + p.slice(pathEnd(p, false));
    }
    const matched = match.matchedText.length;
    return (p) => prefixRewrite + p.slice(matched);
  }
  if (regexRewrite !== undefined) {
    const substitute = compileRegexSubstitution(regexRewrite, fieldPath(path, 'regex_rewrite'), problems);
    if (!substitute) return undefined;
    return (p) => {
      const end = pathEnd(p, false);
      return substitute(p.slice(0, end)) + p.slice(end);
    };
  }
  return undefined;
}
