// Envoy matchers from AuthorizationPolicy values, with Istio's `*` conventions (pilot/pkg/security/authz/matcher).
import { isIP } from 'node:net';
import type { envoy } from '../../../xds/generated/types.js';

export type StringMatcher = envoy.type.matcher.v3.StringMatcher;
export type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;
export type PathMatcher = envoy.type.matcher.v3.PathMatcher;
export type MetadataMatcher = envoy.type.matcher.v3.MetadataMatcher;
export type ValueMatcher = envoy.type.matcher.v3.ValueMatcher;
export type CidrRange = envoy.config.core.v3.CidrRange;

/** The dynamic metadata namespace the JWT filter fills with the request's authenticated principal and claims. */
export const AUTHN_FILTER_NAME = 'istio_authn';

export function regexMatcher(regex: string): StringMatcher {
  return { safe_regex: { google_re2: {}, regex } };
}

/**
 * Istio's StringMatcherWithPrefix: `*` is "present" (regex `.+`, not `.*`: Envoy refuses empty prefixes and suffixes,
 * and an absent value must not match); `*x` a suffix, `x*` a prefix, else exact. `prefix` (e.g. `spiffe://`) is put in
 * front of the value, turning a suffix into a regex since the prefix must still be at the start.
 */
export function stringMatcher(value: string, prefix = ''): StringMatcher {
  if (value === '*') return regexMatcher('.+');
  if (value.startsWith('*')) {
    if (prefix === '') return { suffix: value.slice(1) };
    return regexMatcher(`${prefix}.*${value.slice(1)}`);
  }
  if (value.endsWith('*')) return { prefix: prefix + value.slice(0, -1) };
  return { exact: prefix + value };
}

/** A header matcher: `*` means the header is present; otherwise the value with Istio's prefix/suffix wildcards. */
export function headerMatcher(name: string, value: string): HeaderMatcher {
  if (value === '*') return { name, present_match: true };
  return { name, string_match: stringMatcher(value) };
}

/** `:authority` matching as Istio's HostMatcher: case-insensitive, with a leading or trailing `*` wildcard. */
export function hostMatcher(name: string, value: string): HeaderMatcher {
  if (value === '*') return { name, present_match: true };
  if (value.startsWith('*')) return { name, string_match: { suffix: value.slice(1), ignore_case: true } };
  if (value.endsWith('*')) return { name, string_match: { prefix: value.slice(0, -1), ignore_case: true } };
  return { name, string_match: { exact: value, ignore_case: true } };
}

/** Istio's path templates: `{*}` one path segment, `{**}` the rest (any number of segments). */
export const MATCH_ONE_TEMPLATE = '{*}';
export const MATCH_ANY_TEMPLATE = '{**}';

export function containsPathTemplate(path: string): boolean {
  return path.includes(MATCH_ONE_TEMPLATE) || path.includes(MATCH_ANY_TEMPLATE);
}

/**
 * A path matcher for `url_path`. Templates become an RE2 regex (full match, as Envoy's safe_regex): Istio emits
 * Envoy's `uri_template` permission, whose config message (UriTemplateMatchConfig) Trellis's generated types do not
 * carry, and a regex is what every RBAC implementation understands. `{*}` → `[^/]+`, `{**}` → `.*`.
 */
export function pathMatcher(path: string): PathMatcher {
  if (!containsPathTemplate(path)) return { path: stringMatcher(path) };
  const regex = path
    .split('/')
    .map((segment) => (segment === MATCH_ONE_TEMPLATE ? '[^/]+' : segment === MATCH_ANY_TEMPLATE ? '.*' : escapeRegex(segment)))
    .join('/');
  return { path: regexMatcher(regex) };
}

export function escapeRegex(literal: string): string {
  return literal.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** A metadata matcher on a string value at `filter`/`key`. */
export function metadataStringMatcher(filter: string, key: string, m: StringMatcher): MetadataMatcher {
  return { filter, path: [{ key }], value: { string_match: m } };
}

/** A metadata matcher on a list value at `filter`/`path…`: matches when one element of the list matches `m`. */
export function metadataListMatcher(filter: string, path: readonly string[], m: StringMatcher): MetadataMatcher {
  return { filter, path: path.map((key) => ({ key })), value: { list_match: { one_of: { string_match: m } } } };
}

/** Istio's AddrStrToCidrRange: `1.2.3.4` is a /32 (/128 for IPv6), `a.b.c.d/n` keeps its address and length. */
export function cidrRange(value: string): CidrRange {
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw new Error(`bad IP address or CIDR range ${JSON.stringify(value)}`);
  if (slash < 0) return { address_prefix: address, prefix_len: { value: family === 6 ? 128 : 32 } };
  const text = value.slice(slash + 1);
  const length = Number(text);
  if (!/^[0-9]+$/.test(text) || length > (family === 6 ? 128 : 32)) throw new Error(`bad CIDR range ${JSON.stringify(value)}`);
  return { address_prefix: address, prefix_len: { value: length } };
}
