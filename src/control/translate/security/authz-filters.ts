// The authorization filters of a filter chain in Istio's order: CUSTOM (shadow RBAC + ext_authz), then AUDIT, DENY and
// ALLOW RBAC filters (Istio's Builder.BuildHTTP/BuildTCP); TCP chains get network RBAC filters with stat_prefix `tcp.`.
import type { AuthorizationPolicy } from '../../../api/index.js';
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { PushContext } from '../../model/push-context.js';
import type { Filter, HttpFilter } from '../common/network-filters.js';
import { EXT_AUTHZ_MATCH_PREFIX, EXT_AUTHZ_SHADOW_RULES_STAT_PREFIX, resolveExtAuthzProvider, type ExtAuthz } from './ext-authz.js';
import { isDryRun, type PoliciesByAction } from './policy-selection.js';
import {
  authorizationProblem, buildRbacRules, shadowRulesStatPrefix, type AuthorizationProblem, type BuiltRules, type RBAC, type RbacRulesOptions,
} from './rbac-builder.js';
import {
  EXT_AUTHZ_FILTER,
  EXT_AUTHZ_MESSAGE,
  HTTP_RBAC_FILTER,
  HTTP_RBAC_MESSAGE,
  NETWORK_RBAC_FILTER,
  NETWORK_RBAC_MESSAGE,
  RBAC_TCP_STAT_PREFIX,
} from './security-filter-names.js';

type HttpRbac = envoy.extensions.filters.http.rbac.v3.RBAC;
type NetworkRbac = envoy.extensions.filters.network.rbac.v3.RBAC;

const BAD_CUSTOM_ACTION_SUFFIX = '-deny-due-to-bad-CUSTOM-action';
const CUSTOM_POLICY_PREFIX = `${EXT_AUTHZ_MATCH_PREFIX}-`;

export interface AuthzFilters<T> {
  readonly filters: T[];
  readonly problems: AuthorizationProblem[];
}

export function authorizationHttpFilters(push: PushContext, policies: PoliciesByAction): AuthzFilters<HttpFilter> {
  const problems: AuthorizationProblem[] = [];
  const filters: HttpFilter[] = [];
  const rbac = (config: HttpRbac): HttpFilter => ({ name: HTTP_RBAC_FILTER, typed_config: packAny(HTTP_RBAC_MESSAGE, config) });

  const custom = customRules(push, policies.custom, false, problems);
  if (custom?.bad) filters.push(rbac({ rules: custom.bad }));
  else if (custom?.shadow && custom.extAuthz) {
    filters.push(rbac({ shadow_rules: custom.shadow, shadow_rules_stat_prefix: EXT_AUTHZ_SHADOW_RULES_STAT_PREFIX }));
    filters.push({ name: EXT_AUTHZ_FILTER, typed_config: packAny(EXT_AUTHZ_MESSAGE, custom.extAuthz) });
  }
  for (const built of standardRules(policies, { forTCP: false, trustDomain: push.mesh.trustDomain }, problems)) filters.push(rbac(httpRbac(built)));
  return { filters, problems };
}

export function authorizationNetworkFilters(push: PushContext, policies: PoliciesByAction): AuthzFilters<Filter> {
  const problems: AuthorizationProblem[] = [];
  const filters: Filter[] = [];
  const rbac = (config: NetworkRbac): Filter => ({ name: NETWORK_RBAC_FILTER, typed_config: packAny(NETWORK_RBAC_MESSAGE, config) });
  // An HTTP authorizer cannot judge a TCP connection: Istio leaves CUSTOM out of TCP chains, unless the provider is
  // unusable, where the rules it would have covered are denied.
  const custom = customRules(push, policies.custom, true, problems);
  if (custom?.bad) filters.push(rbac({ rules: custom.bad, stat_prefix: RBAC_TCP_STAT_PREFIX }));
  for (const built of standardRules(policies, { forTCP: true, trustDomain: push.mesh.trustDomain }, problems)) filters.push(rbac({ ...httpRbac(built), stat_prefix: RBAC_TCP_STAT_PREFIX }));
  return { filters, problems };
}

function httpRbac(built: BuiltRules): HttpRbac {
  const out: HttpRbac = {};
  if (built.rules) out.rules = built.rules;
  if (built.shadowRules) {
    out.shadow_rules = built.shadowRules;
    const prefix = shadowRulesStatPrefix(built.shadowRules);
    if (prefix) out.shadow_rules_stat_prefix = prefix;
  }
  return out;
}

/** AUDIT (action LOG), then DENY, then ALLOW: one RBAC filter per action that has policies. */
function standardRules(policies: PoliciesByAction, options: RbacRulesOptions, problems: AuthorizationProblem[]): BuiltRules[] {
  const out: BuiltRules[] = [];
  for (const [list, action] of [[policies.audit, 'LOG'], [policies.deny, 'DENY'], [policies.allow, 'ALLOW']] as const) {
    const built = buildRbacRules(list, action, options, problems);
    if (built) out.push(built);
  }
  return out;
}

interface CustomRules {
  /** Shadow rules whose match turns ext_authz on for the request. */
  readonly shadow?: RBAC;
  readonly extAuthz?: ExtAuthz;
  /** Deny rules standing in for policies whose provider cannot be used. */
  readonly bad?: RBAC;
}

function customRules(push: PushContext, policies: readonly AuthorizationPolicy[], forTCP: boolean, problems: AuthorizationProblem[]): CustomRules | undefined {
  // Dry-run CUSTOM policies would still call the authorizer in Istio; Trellis leaves them out rather than enforce them.
  const enforced = policies.filter((p) => {
    if (!isDryRun(p)) return true;
    problems.push(authorizationProblem(`ns[${p.metadata.namespace}]-policy[${p.metadata.name}]`, 'skipped dry-run CUSTOM policy (dry-run is supported for ALLOW, DENY and AUDIT only)'));
    return false;
  });
  // Kept apart: on TCP chains a usable provider emits nothing, so what its rules would lose there is no problem.
  const ruleProblems: AuthorizationProblem[] = [];
  const built = buildRbacRules(enforced, 'DENY', { forTCP, trustDomain: push.mesh.trustDomain, namePrefix: CUSTOM_POLICY_PREFIX }, ruleProblems);
  if (!built?.rules) return undefined;
  const providers = [...new Set(enforced.map((p) => p.spec.provider?.name ?? ''))].sort();
  let error: string | undefined;
  let extAuthz: ExtAuthz | undefined;
  if (providers.length > 1) error = `only 1 provider can be used per workload, found multiple providers: [${providers.join(', ')}]`;
  else {
    const resolved = resolveExtAuthzProvider(push, providers[0] ?? '');
    if ('error' in resolved) error = resolved.error;
    else extAuthz = resolved.extAuthz;
  }
  if (error !== undefined) {
    problems.push(...ruleProblems);
    problems.push(authorizationProblem(Object.keys(built.rules.policies ?? {}).join(', '), `failed to process CUSTOM action, will generate deny configs: ${error}`));
    const policiesOut: Record<string, envoy.config.rbac.v3.Policy> = {};
    for (const [name, policy] of Object.entries(built.rules.policies ?? {})) policiesOut[name + BAD_CUSTOM_ACTION_SUFFIX] = policy;
    return { bad: { action: 'DENY', policies: policiesOut } };
  }
  if (forTCP) return undefined;
  problems.push(...ruleProblems);
  return { shadow: built.rules, extAuthz };
}
