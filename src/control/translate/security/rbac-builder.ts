// AuthorizationPolicies of one action compiled to Envoy RBAC configs (Istio's pilot/pkg/security/authz/builder):
// enforced policies in `rules`, dry-run ones in `shadow_rules`, and what could not be compiled as problems.
import type { AuthorizationPolicy } from '../../../api/index.js';
import type { envoy } from '../../../xds/generated/types.js';
import { isDryRun, rbacPolicyName } from './policy-selection.js';
import { generateRbacPolicy, type RbacAction, type RbacPolicy } from './rbac-model.js';

export type RBAC = envoy.config.rbac.v3.RBAC;

/** Stat prefixes Istio gives shadow rules, so dry-run results are told apart in stats and dynamic metadata. */
export const SHADOW_RULES_ALLOW_STAT_PREFIX = 'istio_dry_run_allow_';
export const SHADOW_RULES_DENY_STAT_PREFIX = 'istio_dry_run_deny_';

/** A policy without rules: ALLOW matches nothing (so, alone, denies all); DENY and AUDIT never match. */
export const RBAC_POLICY_MATCH_NEVER: RbacPolicy = {
  permissions: [{ not_rule: { any: true } }],
  principals: [{ not_id: { any: true } }],
};

export interface BuiltRules {
  /** Enforced policies; undefined when every policy of the action is dry-run. */
  readonly rules?: RBAC;
  /** Dry-run policies; undefined when there is none. */
  readonly shadowRules?: RBAC;
}

/** A rule left out of (or changed in) the generated config, and why (Istio logs these at debug or error level). */
export interface AuthorizationProblem {
  readonly code: 'TRELLIS_AUTHZ_RULE_DEGRADED';
  readonly policy: string;
  readonly message: string;
}

export function authorizationProblem(policy: string, message: string): AuthorizationProblem {
  return { code: 'TRELLIS_AUTHZ_RULE_DEGRADED', policy, message };
}

/**
 * Compiles `policies` (all of one action) for an HTTP or TCP filter chain; undefined when there are none.
 * CUSTOM policies get the name prefix `istio-ext-authz-` (their RBAC results tell ext_authz when to run).
 */
export interface RbacRulesOptions {
  readonly forTCP: boolean;
  /** The mesh's trust domain (see trust-domain.ts). */
  readonly trustDomain: string;
  /** `istio-ext-authz-` for CUSTOM policies. */
  readonly namePrefix?: string;
}

export function buildRbacRules(
  policies: readonly AuthorizationPolicy[],
  action: RbacAction,
  options: RbacRulesOptions,
  problems: AuthorizationProblem[],
): BuiltRules | undefined {
  const { forTCP, trustDomain } = options;
  const namePrefix = options.namePrefix ?? '';
  if (policies.length === 0) return undefined;
  const enforced: Record<string, RbacPolicy> = {};
  const shadow: Record<string, RbacPolicy> = {};
  let hasEnforced = false;
  let hasShadow = false;
  for (const policy of policies) {
    const dryRun = isDryRun(policy);
    const target = dryRun ? shadow : enforced;
    if (dryRun) hasShadow = true;
    else hasEnforced = true;
    const rules = policy.spec.rules ?? [];
    rules.forEach((rule, i) => {
      const name = rbacPolicyName(policy, i, namePrefix);
      if (rule === null || typeof rule !== 'object') {
        problems.push(authorizationProblem(name, 'skipped nil rule'));
        return;
      }
      const chain = forTCP ? 'TCP' : 'HTTP';
      try {
        const ignored: string[] = [];
        target[name] = generateRbacPolicy(rule, { policyNamespace: policy.metadata.namespace, forTCP, action, trustDomain }, ignored);
        for (const reason of ignored) problems.push(authorizationProblem(name, `ignored on ${chain} filter chain, so the rule matches more: ${reason}`));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        problems.push(authorizationProblem(name, `skipped rule on ${chain} filter chain: ${reason}`));
      }
    });
    if (rules.length === 0) target[rbacPolicyName(policy, 0, namePrefix)] = RBAC_POLICY_MATCH_NEVER;
  }
  return {
    rules: hasEnforced ? { action, policies: enforced } : undefined,
    shadowRules: hasShadow ? { action, policies: shadow } : undefined,
  };
}

export function shadowRulesStatPrefix(shadowRules: RBAC | undefined): string | undefined {
  if (shadowRules?.action === 'ALLOW') return SHADOW_RULES_ALLOW_STAT_PREFIX;
  if (shadowRules?.action === 'DENY') return SHADOW_RULES_DENY_STAT_PREFIX;
  return undefined;
}
