// One generator per AuthorizationPolicy attribute: how a value of `from`, `to` or `when` becomes an Envoy RBAC
// permission or principal (Istio's pilot/pkg/security/authz/model/generator.go).
import type { envoy } from '../../../xds/generated/types.js';
import {
  AUTHN_FILTER_NAME,
  cidrRange,
  escapeRegex,
  headerMatcher,
  hostMatcher,
  metadataListMatcher,
  metadataStringMatcher,
  pathMatcher,
  regexMatcher,
  stringMatcher,
} from './matchers.js';

export type Permission = envoy.config.rbac.v3.Permission;
export type Principal = envoy.config.rbac.v3.Principal;

/** Why a value cannot be expressed (e.g. an HTTP attribute on a TCP filter chain); the caller decides what that means. */
export class AttributeError extends Error {}

export interface AttributeGenerator {
  permission?(key: string, value: string, forTCP: boolean): Permission;
  principal?(key: string, value: string, forTCP: boolean): Principal;
}

const SPIFFE_PREFIX = 'spiffe://';
export const ATTR_REQUEST_CLAIMS = 'request.auth.claims';

function httpOnly(key: string, forTCP: boolean): void {
  if (forTCP) throw new AttributeError(`"${key}" is HTTP only`);
}

function authenticated(m: envoy.type.matcher.v3.StringMatcher): Principal {
  return { authenticated: { principal_name: m } };
}

/** `name` from `prefix[name]`. */
export function nameInBrackets(key: string, prefix: string): string {
  const rest = key.slice(prefix.length);
  if (!rest.startsWith('[') || !rest.endsWith(']') || rest.length < 3) throw new AttributeError(`expecting format [<NAME>], but found ${rest}`);
  return rest.slice(1, -1);
}

/** `[a][b][c]` → `a, b, c` (nested JWT claims). */
export function namesInNestedBrackets(text: string): string[] {
  if (!/^(\[[^[\]]+\])+$/.test(text)) throw new AttributeError(`bad format for nested bracket: ${text}`);
  return [...text.matchAll(/\[([^[\]]+)\]/g)].map((m) => m[1]!);
}

function toPort(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n > 65535) throw new AttributeError(`invalid port ${value}`);
  return n;
}

export const destIP: AttributeGenerator = {
  permission: (_k, value) => ({ destination_ip: asAttribute(() => cidrRange(value)) }),
};

export const destPort: AttributeGenerator = {
  permission: (_k, value) => ({ destination_port: toPort(value) }),
};

export const connSNI: AttributeGenerator = {
  permission: (_k, value) => ({ requested_server_name: stringMatcher(value) }),
};

/** `experimental.envoy.filters.a.b[c]`: dynamic metadata of filter `envoy.filters.a.b`, key `c`; a value `[v]` matches in a list. */
export const envoyFilter: AttributeGenerator = {
  permission: (key, value) => {
    const inner = key.slice('experimental.'.length);
    const open = inner.indexOf('[');
    if (open <= 0 || !inner.endsWith(']')) throw new AttributeError(`invalid key: ${key}`);
    const filter = inner.slice(0, open);
    const field = inner.slice(open + 1, -1);
    if (value.startsWith('[') && value.endsWith(']')) return { metadata: metadataListMatcher(filter, [field], stringMatcher(value.slice(1, -1))) };
    return { metadata: metadataStringMatcher(filter, field, stringMatcher(value)) };
  },
};

export const srcIP: AttributeGenerator = {
  principal: (_k, value) => ({ direct_remote_ip: asAttribute(() => cidrRange(value)) }),
};

export const remoteIP: AttributeGenerator = {
  principal: (_k, value) => ({ remote_ip: asAttribute(() => cidrRange(value)) }),
};

/** A namespace is the `/ns/<ns>/` part of the peer's SPIFFE identity; `*` in the value is a regex wildcard. */
export const srcNamespace: AttributeGenerator = {
  principal: (_k, value) => authenticated(regexMatcher(`.*/ns/${value.replaceAll('*', '.*')}/.*`)),
};

/** `sa` (in the policy's namespace) or `ns/sa`, as Istio's serviceAccountRegex. */
export function srcServiceAccount(policyNamespace: string): AttributeGenerator {
  return {
    principal: (_k, value) => {
      const slash = value.indexOf('/');
      const ns = slash < 0 ? policyNamespace : value.slice(0, slash);
      const sa = slash < 0 ? value : value.slice(slash + 1);
      return authenticated(regexMatcher(`spiffe://.+/ns/${ns}/(.+/|)sa/${sa}(/.+)?`));
    },
  };
}

/** `cluster.local/ns/x/sa/y` is matched as `spiffe://cluster.local/ns/x/sa/y` (the URI SAN of the peer certificate). */
export const srcPrincipal: AttributeGenerator = {
  principal: (_k, value) => authenticated(stringMatcher(value, SPIFFE_PREFIX)),
};

/** `request.auth.principal`, `.audiences`, `.presenter`: strings the JWT filter writes under `istio_authn`. */
export const requestAuthString: AttributeGenerator = {
  principal: (key, value, forTCP) => {
    httpOnly(key, forTCP);
    return { metadata: metadataStringMatcher(AUTHN_FILTER_NAME, key, stringMatcher(value)) };
  },
};

export const requestHeader: AttributeGenerator = {
  principal: (key, value, forTCP) => {
    httpOnly(key, forTCP);
    return { header: headerMatcher(nameInBrackets(key, 'request.headers'), value) };
  },
};

/** `request.experimental.inline.headers[x]`: one value of a comma-separated header (RFC 7230), as Istio's regex. */
export const requestInlineHeader: AttributeGenerator = {
  principal: (key, value, forTCP) => {
    httpOnly(key, forTCP);
    const name = nameInBrackets(key, 'request.experimental.inline.headers');
    if (value === '*') return { header: { name, present_match: true } };
    const v = value.startsWith('*') ? `.*${escapeRegex(value.slice(1))}` : value.endsWith('*') ? `${escapeRegex(value.slice(0, -1))}.*` : escapeRegex(value);
    return { header: { name, safe_regex_match: { google_re2: {}, regex: `^${v}$|^${v},.*|.*,${v},.*|.*,${v}$` } } };
  },
};

/** `request.auth.claims[a][b]`: the claim list at `istio_authn` → `request.auth.claims` → `a` → `b` has a matching element. */
export const requestClaim: AttributeGenerator = {
  principal: (key, value, forTCP) => {
    httpOnly(key, forTCP);
    const claims = namesInNestedBrackets(key.slice(ATTR_REQUEST_CLAIMS.length));
    return { metadata: metadataListMatcher(AUTHN_FILTER_NAME, [ATTR_REQUEST_CLAIMS, ...claims], stringMatcher(value)) };
  },
};

export const host: AttributeGenerator = {
  permission: (key, value, forTCP) => {
    httpOnly(key, forTCP);
    return { header: hostMatcher(':authority', value) };
  },
};

export const path: AttributeGenerator = {
  permission: (key, value, forTCP) => {
    httpOnly(key, forTCP);
    return { url_path: pathMatcher(value) };
  },
};

export const method: AttributeGenerator = {
  permission: (key, value, forTCP) => {
    httpOnly(key, forTCP);
    return { header: headerMatcher(':method', value) };
  },
};

/** `any: true` (Istio's internal `any` attribute, used where a value must always match). */
export const anyAttribute: AttributeGenerator = {
  permission: () => ({ any: true }),
};

function asAttribute<T>(build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw new AttributeError(err instanceof Error ? err.message : String(err));
  }
}
