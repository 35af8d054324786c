// The security filters Istio puts in front of a workload's (or gateway's) traffic, from RequestAuthentication and
// AuthorizationPolicy: HTTP filters jwt_authn, ext_authz (CUSTOM), rbac (DENY, then ALLOW/AUDIT), inserted before
// fault/CORS/router; network filters rbac (and ext_authz) before tcp_proxy. Listener builders call these two functions.
import { packAny } from '../../../xds/codec.js';
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import type { Filter, HttpFilter } from '../common/network-filters.js';
import { authorizationHttpFilters, authorizationNetworkFilters } from './authz-filters.js';
import { buildJwtAuthentication } from './jwt-authn.js';
import { authorizationPoliciesFor } from './policy-selection.js';
import type { AuthorizationProblem } from './rbac-builder.js';
import { JWT_AUTHN_FILTER, JWT_AUTHN_MESSAGE } from './security-filter-names.js';

export interface SecurityFilterInput {
  readonly push: PushContext;
  /** The sidecar or gateway the listener is for (policies select it by namespace and workload labels). */
  readonly proxy: Proxy;
  /** The workload port of the inbound filter chain (port-level rules); undefined on gateway listeners. */
  readonly port?: number;
  readonly isGateway: boolean;
}

/**
 * HTTP filters, in Istio's order, that go before fault, CORS and the router in the connection manager: jwt_authn
 * (authentication first, so its metadata is there for authorization), then the CUSTOM pair (shadow RBAC, ext_authz),
 * then RBAC for AUDIT, DENY and ALLOW. Destination ports are matched by the RBAC filters at request time, so every
 * port of a workload gets the same filters (as in Istio).
 */
export function securityHttpFilters(input: SecurityFilterInput): HttpFilter[] {
  return [...built(input).http];
}

/** Network filters that go before tcp_proxy on TCP filter chains: RBAC with HTTP-only rules dropped (ALLOW) or widened (DENY). */
export function securityNetworkFilters(input: SecurityFilterInput): Filter[] {
  return [...built(input).network];
}

/**
 * What the two functions above left out for this proxy, and why (rules skipped on TCP chains, unusable CUSTOM
 * providers): Istio logs these; the control plane can report them (e.g. on /debug endpoints) by calling this.
 */
export function securityFilterProblems(input: SecurityFilterInput): AuthorizationProblem[] {
  return [...built(input).problems];
}

interface BuiltSecurityFilters {
  readonly http: readonly HttpFilter[];
  readonly network: readonly Filter[];
  readonly problems: readonly AuthorizationProblem[];
}

/**
 * Listener builders ask once per port and filter chain, but the filters depend only on what selects policies (the
 * workload's namespace, labels and kind: ports are matched at request time), so they are built once per snapshot
 * and workload shape, and replicas share them.
 */
const cache = new WeakMap<PushContext, Map<string, BuiltSecurityFilters>>();

function built(input: SecurityFilterInput): BuiltSecurityFilters {
  const { push, proxy } = input;
  const labels = Object.keys(proxy.labels).sort().map((k) => [k, proxy.labels[k]]);
  const key = JSON.stringify([proxy.type, proxy.namespace, labels]);
  let perPush = cache.get(push);
  if (!perPush) cache.set(push, (perPush = new Map()));
  let out = perPush.get(key);
  if (!out) {
    const http: HttpFilter[] = [];
    const jwt = buildJwtAuthentication(push.requestAuthentications(proxy));
    if (jwt) http.push({ name: JWT_AUTHN_FILTER, typed_config: packAny(JWT_AUTHN_MESSAGE, jwt) });
    const policies = authorizationPoliciesFor(push, proxy);
    const authzHttp = authorizationHttpFilters(push, policies);
    const authzNetwork = authorizationNetworkFilters(push, policies);
    http.push(...authzHttp.filters);
    out = { http, network: authzNetwork.filters, problems: [...authzHttp.problems, ...authzNetwork.problems] };
    perPush.set(key, out);
  }
  return out;
}
