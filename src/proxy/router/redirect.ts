// Envoy's RedirectAction: the Location of a redirect (scheme, host, port, path/prefix/regex rewrite, strip_query) and its status.
import type { HttpHeaders } from '../http/headers.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, fieldPath, rejectUnsupportedFields } from './config-problems.js';
import { compilePathRewrite } from './path-rewrite.js';
import type { CompiledRouteMatch } from './route-matcher.js';
import type { RedirectRouteAction } from './route-table.js';

type RedirectAction = envoy.config.route.v3.RedirectAction;

/** RedirectResponseCode → HTTP status. */
export const REDIRECT_STATUS: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};
const REDIRECT_CODES = Object.keys(REDIRECT_STATUS);

function first(headers: HttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : v?.[0];
}

/**
 * Envoy's Utility::processRequestHost: the request's host, without its port when the redirect sets a port, or when
 * the scheme changes away from the request's and the port was the old scheme's default (:80 for http, :443 for https).
 */
function requestHost(headers: HttpHeaders, newScheme: string, newPort: string): string {
  const host = first(headers, ':authority') ?? '';
  if (host === '') return host;
  let end: number;
  if (host.startsWith('[')) {
    end = host.lastIndexOf(']:');
    if (end >= 0) end += 1;
  } else {
    end = host.lastIndexOf(':');
  }
  if (end < 0) return host;
  const port = host.slice(end);
  const requestScheme = first(headers, 'x-forwarded-proto') ?? first(headers, ':scheme') ?? 'http';
  let removePort = newPort !== '';
  if (newScheme !== requestScheme) {
    removePort ||= requestScheme === 'https' && port === ':443';
    removePort ||= requestScheme === 'http' && port === ':80';
  }
  return removePort ? host.slice(0, end) : host;
}

const SUPPORTED = new Set(['https_redirect', 'scheme_redirect', 'host_redirect', 'port_redirect', 'path_redirect', 'prefix_rewrite', 'regex_rewrite', 'response_code', 'strip_query']);

/** Compiles a RedirectAction at `path`; `match` gives prefix_rewrite the matched prefix. */
export function compileRedirect(redirect: RedirectAction, match: CompiledRouteMatch, path: string, problems: ConfigProblems): RedirectRouteAction | undefined {
  const before = problems.details.length;
  rejectUnsupportedFields(redirect, SUPPORTED, path, problems);
  if (redirect.https_redirect === true && redirect.scheme_redirect) problems.add(path, 'only one of https_redirect, scheme_redirect may be set');
  const rewrites = (['path_redirect', 'prefix_rewrite', 'regex_rewrite'] as const).filter((k) => redirect[k] !== undefined && redirect[k] !== '');
  if (rewrites.length > 1) problems.add(path, `only one of path_redirect, prefix_rewrite, regex_rewrite may be set (got ${rewrites.join(', ')})`);
  const code = redirect.response_code ?? 'MOVED_PERMANENTLY';
  const status = typeof code === 'number' ? REDIRECT_STATUS[REDIRECT_CODES[code] ?? ''] : REDIRECT_STATUS[code];
  if (status === undefined) problems.add(fieldPath(path, 'response_code'), `unknown redirect response code ${String(code)}`);
  const port = Number(redirect.port_redirect ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.add(fieldPath(path, 'port_redirect'), `not a port: ${port}`);
  const rewrite = rewrites.length === 1 && rewrites[0] !== 'path_redirect' ? compilePathRewrite(redirect.prefix_rewrite, redirect.regex_rewrite, match, path, problems) : undefined;
  if (problems.details.length > before) return undefined;

  const schemeRedirect = redirect.scheme_redirect || (redirect.https_redirect === true ? 'https' : '');
  const hostRedirect = redirect.host_redirect ?? '';
  const portRedirect = port !== 0 ? `:${port}` : '';
  const pathRedirect = redirect.path_redirect ?? '';
  const pathRedirectHasQuery = pathRedirect.includes('?');
  const stripQuery = redirect.strip_query === true;

  return {
    kind: 'redirect',
    status: status!,
    location(headers) {
      const scheme = schemeRedirect !== '' ? schemeRedirect : (first(headers, 'x-forwarded-proto') ?? first(headers, ':scheme') ?? 'http');
      const host = hostRedirect !== '' ? hostRedirect : requestHost(headers, scheme, portRedirect);
      const requestPath = first(headers, ':path') ?? '/';
      let finalPath: string;
      if (pathRedirect !== '') {
        // path_redirect's own query wins and is never stripped; otherwise the request's query is kept (unless strip_query).
        if (pathRedirectHasQuery) finalPath = pathRedirect;
        else {
          const q = requestPath.indexOf('?');
          finalPath = q >= 0 ? pathRedirect + requestPath.slice(q) : pathRedirect;
        }
      } else {
        finalPath = (rewrite && rewrite(requestPath)) ?? requestPath;
      }
      if (!finalPath.startsWith('/')) finalPath = `/${finalPath}`;
      if (!pathRedirectHasQuery && stripQuery) {
        const q = finalPath.indexOf('?');
        if (q >= 0) finalPath = finalPath.slice(0, q);
      }
      return `${scheme}://${host}${portRedirect}${finalPath}`;
    },
  };
}
