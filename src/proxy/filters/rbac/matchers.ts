// RBAC Permission and Principal trees (envoy.config.rbac.v3) compiled to predicates over an RbacInput, with Envoy's matcher semantics.
import type { envoy } from '../../../xds/generated/types.js';
import { compileCidr, type CompiledCidr } from '../../transport/cidr.js';
import { ConfigProblems, fieldPath } from '../../router/config-problems.js';
import { compileHeaderMatcher } from '../../router/header-matcher.js';
import { compileStringMatcher, type StringPredicate } from '../../router/string-matcher.js';
import { compileFilterStateMatcher, compileMetadataMatcher } from './metadata-matcher.js';
import type { RbacInput } from './rbac-input.js';

type Permission = envoy.config.rbac.v3.Permission;
type Principal = envoy.config.rbac.v3.Principal;
type CidrRange = envoy.config.core.v3.CidrRange;
type PathMatcher = envoy.type.matcher.v3.PathMatcher;

export type RbacPredicate = (input: RbacInput) => boolean;

const NEVER: RbacPredicate = () => false;
const ALWAYS: RbacPredicate = () => true;

const PERMISSION_RULES = [
  'and_rules', 'or_rules', 'any', 'header', 'url_path', 'destination_ip', 'destination_port', 'destination_port_range', 'metadata',
  'not_rule', 'requested_server_name', 'matcher', 'uri_template',
] as const;
const PRINCIPAL_IDS = [
  'and_ids', 'or_ids', 'any', 'authenticated', 'source_ip', 'direct_remote_ip', 'remote_ip', 'header', 'url_path', 'metadata', 'filter_state', 'not_id',
] as const;

/** Exactly one field of a oneof is set; reports otherwise. */
function oneKind<K extends string>(message: Partial<Record<K, unknown>>, kinds: readonly K[], path: string, problems: ConfigProblems): K | undefined {
  // proto3 JSON decodes `any: false` as unset; only a true `any` counts as chosen.
  const set = kinds.filter((k) => message[k] !== undefined && message[k] !== null && !(k === 'any' && message[k] === false));
  if (set.length === 1) return set[0];
  problems.add(path, set.length === 0 ? `one of ${kinds.join(', ')} is required` : `only one of ${kinds.join(', ')} may be set (got ${set.join(', ')})`);
  return undefined;
}

function and(ps: readonly RbacPredicate[]): RbacPredicate {
  return (input) => {
    for (let i = 0; i < ps.length; i++) if (!ps[i]!(input)) return false;
    return true;
  };
}

function or(ps: readonly RbacPredicate[]): RbacPredicate {
  return (input) => {
    for (let i = 0; i < ps.length; i++) if (ps[i]!(input)) return true;
    return false;
  };
}

function cidrOf(range: CidrRange | undefined, path: string, problems: ConfigProblems): CompiledCidr | undefined {
  const prefix = range?.address_prefix ?? '';
  // Envoy reads an absent prefix_len as 0 (UInt32Value default): the whole address family.
  const len = range?.prefix_len?.value ?? 0;
  const cidr = compileCidr(prefix, Number(len));
  if (!cidr) problems.add(path, `expected an IP address prefix and prefix_len (got ${JSON.stringify(prefix)}/${String(len)})`);
  return cidr;
}

/** Envoy's PathMatcher: the :path without query and fragment against a StringMatcher; no :path → no match. */
function urlPath(m: PathMatcher | undefined, path: string, problems: ConfigProblems): RbacPredicate {
  const f = compileStringMatcher(m?.path, fieldPath(path, 'path'), problems);
  if (!f) return NEVER;
  return (input) => {
    let path = input.pathWithoutQuery;
    if (path === undefined) {
      const p = input.headers[':path'];
      if (typeof p !== 'string') return false;
      let end = p.length;
      const q = p.indexOf('?');
      if (q >= 0) end = q;
      const h = p.indexOf('#');
      if (h >= 0 && h < end) end = h;
      path = input.pathWithoutQuery = end === p.length ? p : p.slice(0, end);
    }
    return f(path);
  };
}

function header(m: envoy.config.route.v3.HeaderMatcher | undefined, path: string, problems: ConfigProblems): RbacPredicate {
  const compiled = m ? compileHeaderMatcher(m, path, problems) : undefined;
  if (!m) problems.add(path, 'a header matcher is required');
  return compiled ? (input) => compiled.matches(input.headers) : NEVER;
}

/** Compiles one Permission (what the request does). */
export function compilePermission(p: Permission, path: string, problems: ConfigProblems): RbacPredicate {
  const kind = oneKind(p as Partial<Record<(typeof PERMISSION_RULES)[number], unknown>>, PERMISSION_RULES, path, problems);
  const at = kind ? fieldPath(path, kind) : path;
  switch (kind) {
    case undefined:
      return NEVER;
    case 'any':
      return ALWAYS;
    case 'and_rules':
      return and((p.and_rules!.rules ?? []).map((r, i) => compilePermission(r, `${fieldPath(at, 'rules')}[${i}]`, problems)));
    case 'or_rules':
      return or((p.or_rules!.rules ?? []).map((r, i) => compilePermission(r, `${fieldPath(at, 'rules')}[${i}]`, problems)));
    case 'not_rule': {
      const inner = compilePermission(p.not_rule!, at, problems);
      return (input) => !inner(input);
    }
    case 'header':
      return header(p.header, at, problems);
    case 'url_path':
      return urlPath(p.url_path, at, problems);
    case 'destination_ip': {
      const cidr = cidrOf(p.destination_ip, at, problems);
      return cidr ? (input) => cidr.contains(input.connection.localAddress) : NEVER;
    }
    case 'destination_port': {
      const port = Number(p.destination_port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) problems.add(at, `expected a port 0..65535 (got ${String(p.destination_port)})`);
      return (input) => input.connection.localPort === port;
    }
    case 'destination_port_range': {
      const start = Number(p.destination_port_range!.start ?? 0);
      const end = Number(p.destination_port_range!.end ?? 0);
      if (!(start <= end)) problems.add(at, `start (${start}) must not be greater than end (${end})`);
      // Int32Range is [start, end).
      return (input) => input.connection.localPort >= start && input.connection.localPort < end;
    }
    case 'metadata': {
      const f = compileMetadataMatcher(p.metadata!, at, problems);
      return (input) => f(input.filterState);
    }
    case 'requested_server_name': {
      const f = compileStringMatcher(p.requested_server_name, at, problems);
      return f ? (input) => f(input.connection.requestedServerName) : NEVER;
    }
    case 'matcher':
    case 'uri_template':
      problems.add(at, `${kind} is not supported by Trellis (its extension types are not among the generated Envoy types)`);
      return NEVER;
  }
}

/**
 * Envoy's AuthenticatedMatcher: a TLS connection matches when principal_name is unset; otherwise any URI SAN, then any
 * DNS SAN, then the subject must match principal_name. Plaintext never matches.
 */
function authenticated(a: envoy.config.rbac.v3.Principal.Authenticated, path: string, problems: ConfigProblems): RbacPredicate {
  let name: StringPredicate | undefined;
  if (a.principal_name !== undefined) {
    name = compileStringMatcher(a.principal_name, fieldPath(path, 'principal_name'), problems);
    if (!name) return NEVER;
  }
  const match = name;
  return (input) => {
    const peer = input.connection.peer;
    if (!peer) return false;
    if (!match) return true;
    for (const uri of peer.uriSans) if (match(uri)) return true;
    for (const dns of peer.dnsSans) if (match(dns)) return true;
    return match(peer.subject);
  };
}

/** Compiles one Principal (who sends the request). */
export function compilePrincipal(p: Principal, path: string, problems: ConfigProblems): RbacPredicate {
  const kind = oneKind(p as Partial<Record<(typeof PRINCIPAL_IDS)[number], unknown>>, PRINCIPAL_IDS, path, problems);
  const at = kind ? fieldPath(path, kind) : path;
  switch (kind) {
    case undefined:
      return NEVER;
    case 'any':
      return ALWAYS;
    case 'and_ids':
      return and((p.and_ids!.ids ?? []).map((r, i) => compilePrincipal(r, `${fieldPath(at, 'ids')}[${i}]`, problems)));
    case 'or_ids':
      return or((p.or_ids!.ids ?? []).map((r, i) => compilePrincipal(r, `${fieldPath(at, 'ids')}[${i}]`, problems)));
    case 'not_id': {
      const inner = compilePrincipal(p.not_id!, at, problems);
      return (input) => !inner(input);
    }
    case 'authenticated':
      return authenticated(p.authenticated!, at, problems);
    case 'source_ip':
    case 'direct_remote_ip': {
      const cidr = cidrOf(p[kind], at, problems);
      return cidr ? (input) => cidr.contains(input.connection.remoteAddress) : NEVER;
    }
    case 'remote_ip': {
      const cidr = cidrOf(p.remote_ip, at, problems);
      return cidr ? (input) => cidr.contains(input.remoteIp) : NEVER;
    }
    case 'header':
      return header(p.header, at, problems);
    case 'url_path':
      return urlPath(p.url_path, at, problems);
    case 'metadata': {
      const f = compileMetadataMatcher(p.metadata!, at, problems);
      return (input) => f(input.filterState);
    }
    case 'filter_state': {
      const f = compileFilterStateMatcher(p.filter_state!, at, problems);
      return (input) => f(input.filterState);
    }
  }
}
