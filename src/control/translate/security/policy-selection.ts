// The AuthorizationPolicies that apply to one workload, grouped by action (Istio's ListAuthorizationPolicies):
// root-namespace policies apply mesh-wide, then the workload's namespace; a selector must match the workload's labels.
import type { AuthorizationPolicy } from '../../../api/index.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';

export interface PoliciesByAction {
  readonly custom: readonly AuthorizationPolicy[];
  readonly deny: readonly AuthorizationPolicy[];
  readonly allow: readonly AuthorizationPolicy[];
  readonly audit: readonly AuthorizationPolicy[];
}

/**
 * Selection itself is the PushContext's (it indexes policies once per push, and ignores `targetRef(s)` policies: those
 * bind to Gateway API resources and Services, which Trellis does not model; validation refuses them); this groups the
 * result by action, keeping the snapshot's order (by name, then namespace) so the generated config is deterministic.
 */
export function authorizationPoliciesFor(push: PushContext, proxy: Proxy): PoliciesByAction {
  const custom: AuthorizationPolicy[] = [];
  const deny: AuthorizationPolicy[] = [];
  const allow: AuthorizationPolicy[] = [];
  const audit: AuthorizationPolicy[] = [];
  for (const policy of push.authorizationPolicies(proxy)) {
    const action = policy.spec.action ?? 'ALLOW';
    if (action === 'CUSTOM') custom.push(policy);
    else if (action === 'DENY') deny.push(policy);
    else if (action === 'AUDIT') audit.push(policy);
    else allow.push(policy);
  }
  return { custom, deny, allow, audit };
}

/** Istio's `istio.io/dry-run: "true"` annotation: the policy is evaluated into shadow rules and never enforced. */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** The values Go's strconv.ParseBool reads as true (Istio parses the annotation with it). */
const TRUE_VALUES = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);

export function isDryRun(policy: AuthorizationPolicy): boolean {
  return TRUE_VALUES.has(policy.metadata.annotations?.[DRY_RUN_ANNOTATION] ?? '');
}

/** `ns[<namespace>]-policy[<name>]-rule[<index>]`, Istio's RBAC policy name (CUSTOM ones get a prefix). */
export function rbacPolicyName(policy: AuthorizationPolicy, ruleIndex: number, prefix = ''): string {
  return `${prefix}ns[${policy.metadata.namespace}]-policy[${policy.metadata.name}]-rule[${ruleIndex}]`;
}
