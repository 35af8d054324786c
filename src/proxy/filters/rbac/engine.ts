// The RBAC engine (envoy.config.rbac.v3.RBAC): policies in name order, first match decides, ALLOW/DENY/LOG as Envoy's RoleBasedAccessControlEngineImpl.
import type { envoy } from '../../../xds/generated/types.js';
import { ConfigProblems, fieldPath, rejectUnsupportedFields } from '../../router/config-problems.js';
import { compilePermission, compilePrincipal, type RbacPredicate } from './matchers.js';
import type { RbacInput } from './rbac-input.js';

type RbacConfig = envoy.config.rbac.v3.RBAC;

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface RbacDecision {
  readonly allowed: boolean;
  /** The first matching policy in name order (Envoy's effective_policy_id), if any matched. */
  readonly policy?: string;
}

interface CompiledPolicy {
  readonly name: string;
  readonly permissions: readonly RbacPredicate[];
  readonly principals: readonly RbacPredicate[];
}

export interface RbacEngine {
  readonly action: RbacAction;
  /** Number of policies (for tests and debug output). */
  readonly policyCount: number;
  /** The first policy (by name) whose permissions and principals both have a match, or undefined. */
  matchedPolicy(input: RbacInput): string | undefined;
  /** Envoy's handleAction: ALLOW → allowed iff a policy matched; DENY → allowed iff none did; LOG → always allowed. */
  evaluate(input: RbacInput): RbacDecision;
}

const ACTIONS: Record<string, RbacAction> = { ALLOW: 'ALLOW', DENY: 'DENY', LOG: 'LOG', '0': 'ALLOW', '1': 'DENY', '2': 'LOG' };

function any(ps: readonly RbacPredicate[], input: RbacInput): boolean {
  for (let i = 0; i < ps.length; i++) if (ps[i]!(input)) return true;
  return false;
}

/** Compiles an RBAC message at `path`; problems go to `problems` (the caller throws them as one NACK). */
export function compileRbacEngine(config: RbacConfig, path: string, problems: ConfigProblems): RbacEngine {
  rejectUnsupportedFields(config, new Set(['action', 'policies']), path, problems);
  const action = ACTIONS[String(config.action ?? 'ALLOW')];
  if (!action) problems.add(fieldPath(path, 'action'), `expected ALLOW, DENY or LOG (got ${String(config.action)})`);
  // Envoy keeps policies in a std::map: evaluation (and so the reported policy) follows byte-wise name order.
  const names = Object.keys(config.policies ?? {}).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const policies: CompiledPolicy[] = names.map((name) => {
    const policy = config.policies![name]!;
    const pp = `${fieldPath(path, 'policies')}[${JSON.stringify(name)}]`;
    rejectUnsupportedFields(policy, new Set(['permissions', 'principals']), pp, problems);
    if (!policy.permissions?.length) problems.add(fieldPath(pp, 'permissions'), 'at least one permission is required');
    if (!policy.principals?.length) problems.add(fieldPath(pp, 'principals'), 'at least one principal is required');
    return {
      name,
      permissions: (policy.permissions ?? []).map((p, i) => compilePermission(p, `${fieldPath(pp, 'permissions')}[${i}]`, problems)),
      principals: (policy.principals ?? []).map((p, i) => compilePrincipal(p, `${fieldPath(pp, 'principals')}[${i}]`, problems)),
    };
  });
  const kind = action ?? 'ALLOW';
  const matchedPolicy = (input: RbacInput): string | undefined => {
    for (const p of policies) if (any(p.permissions, input) && any(p.principals, input)) return p.name;
    return undefined;
  };
  return {
    action: kind,
    policyCount: policies.length,
    matchedPolicy,
    evaluate(input) {
      const policy = matchedPolicy(input);
      const allowed = kind === 'LOG' ? true : kind === 'ALLOW' ? policy !== undefined : policy === undefined;
      return policy === undefined ? { allowed } : { allowed, policy };
    },
  };
}
