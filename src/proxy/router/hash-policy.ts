// Envoy's RouteAction hash_policy (header, cookie with TTL, connection_properties source_ip, query_parameter; terminal) hashed with xxHash64 like Envoy, for RING_HASH and MAGLEV.
import type { HttpHeaders } from '../http/headers.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, durationMs, fieldPath, isValidHeaderName, rejectUnsupportedFields } from './config-problems.js';
import { compileRegexSubstitution, type RegexSubstitution } from './regex.js';
import { queryParameter } from './route-matcher.js';
import type { CompiledHashPolicy } from './route-table.js';
import { asciiLower } from './string-matcher.js';
import { uint64ToHex, xxHash64 } from '../../common/xxhash64.js';

type HashPolicy = envoy.config.route.v3.RouteAction.HashPolicy;

const MASK = 0xffffffffffffffffn;
const KINDS = ['header', 'cookie', 'connection_properties', 'query_parameter', 'filter_state'] as const;

/**
 * Envoy's HashPolicyImpl::generateHash: each policy's hash is folded in as `rotl(previous, 1) ^ hash`; a terminal
 * policy that produced a hash ends the walk. Undefined when no policy produced one.
 */
export function computeRequestHash(policies: readonly CompiledHashPolicy[], headers: HttpHeaders, sourceAddress: string): bigint | undefined {
  let hash: bigint | undefined;
  for (let i = 0; i < policies.length; i++) {
    const policy = policies[i]!;
    const next = policy.hash(headers, sourceAddress);
    if (next !== undefined) {
      const old = hash === undefined ? 0n : ((hash << 1n) | (hash >> 63n)) & MASK;
      hash = old ^ next;
    }
    if (policy.terminal && hash !== undefined) break;
  }
  return hash;
}

/** The value of cookie `name` in the request's Cookie headers (first match; surrounding double quotes removed), like Envoy's parseCookieValue. */
export function cookieValue(headers: HttpHeaders, name: string): string | undefined {
  const raw = headers['cookie'];
  if (raw === undefined) return undefined;
  const values = typeof raw === 'string' ? [raw] : raw;
  for (const header of values) {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      let start = 0;
      while (start < eq && part.charCodeAt(start) === 32) start++;
      if (eq - start !== name.length || !part.startsWith(name, start)) continue;
      let value = part.slice(eq + 1);
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
  }
  return undefined;
}

/**
 * The cookie a TTL cookie policy sets when the request has none, as Envoy's router makes it: the value is the hex
 * xxHash64 of the downstream remote and local addresses (`ip:port` each), so one connection keeps one value; the
 * request is then hashed on that value.
 */
export function generateHashCookie(
  cookie: NonNullable<CompiledHashPolicy['cookie']>,
  downstreamRemoteAddress: string,
  downstreamLocalAddress: string,
): { value: string; hash: bigint; setCookie: string } {
  const value = uint64ToHex(xxHash64(downstreamRemoteAddress + downstreamLocalAddress));
  // Envoy's Http::Utility::makeSetCookieValue.
  let setCookie = `${cookie.name}="${value}"`;
  if (cookie.ttlSeconds !== 0) setCookie += `; Max-Age=${cookie.ttlSeconds}`;
  if (cookie.path) setCookie += `; Path=${cookie.path}`;
  for (const attribute of cookie.attributes ?? []) setCookie += attribute.value === '' ? `; ${attribute.name}` : `; ${attribute.name}=${attribute.value}`;
  setCookie += '; HttpOnly';
  return { value, hash: xxHash64(value), setCookie };
}

function headerValues(headers: HttpHeaders, name: string): readonly string[] | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return [v];
  return v.length > 0 ? v : undefined;
}

function compileOne(policy: HashPolicy, path: string, problems: ConfigProblems): CompiledHashPolicy | undefined {
  rejectUnsupportedFields(policy, new Set(['header', 'cookie', 'connection_properties', 'query_parameter', 'terminal']), path, problems);
  const kinds = KINDS.filter((k) => policy[k] !== undefined);
  if (kinds.length !== 1) {
    problems.add(path, kinds.length === 0 ? `one of ${KINDS.join(', ')} is required` : `only one of ${KINDS.join(', ')} may be set`);
    return undefined;
  }
  const terminal = policy.terminal === true;
  if (policy.header) {
    const p = fieldPath(path, 'header');
    rejectUnsupportedFields(policy.header, new Set(['header_name', 'regex_rewrite']), p, problems);
    const name = asciiLower(policy.header.header_name ?? '');
    if (!isValidHeaderName(name)) {
      problems.add(fieldPath(p, 'header_name'), 'a valid header name is required');
      return undefined;
    }
    let rewrite: RegexSubstitution | undefined;
    if (policy.header.regex_rewrite) {
      rewrite = compileRegexSubstitution(policy.header.regex_rewrite, fieldPath(p, 'regex_rewrite'), problems);
      if (!rewrite) return undefined;
    }
    const rw = rewrite;
    return {
      terminal,
      hash(headers) {
        const values = headerValues(headers, name);
        if (values === undefined) return undefined;
        if (values.length === 1 && !rw) return xxHash64(values[0]!);
        // Envoy sorts the (rewritten) values so their order does not matter, then hashes them as one stream.
        const list = rw ? values.map(rw) : [...values];
        list.sort();
        return xxHash64(list.join(''));
      },
    };
  }
  if (policy.cookie) {
    const p = fieldPath(path, 'cookie');
    rejectUnsupportedFields(policy.cookie, new Set(['name', 'ttl', 'path', 'attributes']), p, problems);
    const name = policy.cookie.name ?? '';
    if (name === '') {
      problems.add(fieldPath(p, 'name'), 'must not be empty');
      return undefined;
    }
    const ttlMs = durationMs(policy.cookie.ttl, fieldPath(p, 'ttl'), problems);
    const attributes = (policy.cookie.attributes ?? []).map((a) => ({ name: a.name ?? '', value: a.value ?? '' }));
    attributes.forEach((a, i) => {
      if (a.name === '') problems.add(`${fieldPath(p, 'attributes')}[${i}].name`, 'must not be empty');
    });
    const cookie =
      ttlMs === undefined
        ? undefined
        : {
            name,
            ttlSeconds: Math.floor(ttlMs / 1000),
            ...(policy.cookie.path ? { path: policy.cookie.path } : {}),
            ...(attributes.length > 0 ? { attributes } : {}),
          };
    return {
      terminal,
      ...(cookie ? { cookie } : {}),
      hash(headers) {
        const value = cookieValue(headers, name);
        return value === undefined || value === '' ? undefined : xxHash64(value);
      },
    };
  }
  if (policy.connection_properties) {
    const p = fieldPath(path, 'connection_properties');
    rejectUnsupportedFields(policy.connection_properties, new Set(['source_ip']), p, problems);
    if (policy.connection_properties.source_ip !== true) {
      problems.add(fieldPath(p, 'source_ip'), 'must be true (the only connection property Envoy hashes)');
      return undefined;
    }
    return { terminal, hash: (_headers, sourceAddress) => (sourceAddress === '' ? undefined : xxHash64(sourceAddress)) };
  }
  if (policy.query_parameter) {
    const p = fieldPath(path, 'query_parameter');
    rejectUnsupportedFields(policy.query_parameter, new Set(['name']), p, problems);
    const name = policy.query_parameter.name ?? '';
    if (name === '') {
      problems.add(fieldPath(p, 'name'), 'must not be empty');
      return undefined;
    }
    return {
      terminal,
      hash(headers) {
        const raw = headers[':path'];
        const path = typeof raw === 'string' ? raw : raw?.[0];
        const value = path === undefined ? undefined : queryParameter(path, name);
        return value === undefined ? undefined : xxHash64(value);
      },
    };
  }
  // filter_state: already reported as not supported.
  return undefined;
}

/** Compiles RouteAction.hash_policy (`path` is the list's path). */
export function compileHashPolicies(policies: readonly HashPolicy[] | undefined, path: string, problems: ConfigProblems): CompiledHashPolicy[] {
  const out: CompiledHashPolicy[] = [];
  (policies ?? []).forEach((policy, i) => {
    const compiled = compileOne(policy, `${path}[${i}]`, problems);
    if (compiled) out.push(compiled);
  });
  return out;
}
