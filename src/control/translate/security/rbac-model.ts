// One AuthorizationPolicy rule as an Envoy RBAC Policy (Istio's pilot/pkg/security/authz/model/model.go): each `from`
// is one principal (ANDed conditions), each `to` one permission, and `when` conditions join every one of them.
import type { Rule } from '../../../api/security/authorization-policy.js';
import type { envoy } from '../../../xds/generated/types.js';
import {
  ATTR_REQUEST_CLAIMS,
  AttributeError,
  connSNI,
  destIP,
  destPort,
  envoyFilter,
  host,
  method,
  path,
  remoteIP,
  requestAuthString,
  requestClaim,
  requestHeader,
  requestInlineHeader,
  srcIP,
  srcNamespace,
  srcPrincipal,
  srcServiceAccount,
  type AttributeGenerator,
  type Permission,
  type Principal,
} from './rbac-attributes.js';
import { migrateTrustDomain } from './trust-domain.js';

export type RbacPolicy = envoy.config.rbac.v3.Policy;
export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

interface Condition {
  readonly key: string;
  readonly values: readonly string[];
  readonly notValues: readonly string[];
  readonly g: AttributeGenerator;
}

type ConditionList = Condition[];

/** A rule that cannot be compiled at all (an unknown `when` key: validation refuses it, so only hand-built input). */
export class RuleError extends Error {}

export interface RbacPolicyOptions {
  /** Namespace of the AuthorizationPolicy (the default namespace of `serviceAccounts`). */
  readonly policyNamespace: string;
  readonly forTCP: boolean;
  readonly action: RbacAction;
  /** The mesh's trust domain: `cluster.local/…` principals are matched in it (Istio's trust domain migration). */
  readonly trustDomain: string;
}

/**
 * Compiles `rule` of a policy in `policyNamespace` for an HTTP (`forTCP` false) or TCP filter chain. Throws
 * AttributeError when the rule must be dropped: in an ALLOW policy, a value that cannot apply (an HTTP attribute on a
 * TCP chain) drops the whole rule, so it allows less; in DENY and AUDIT (LOG) policies that value alone is ignored, so
 * the rule matches more (Istio's checkError), and the reason goes to `ignored`.
 */
export function generateRbacPolicy(rule: Rule, options: RbacPolicyOptions, ignored: string[] = []): RbacPolicy {
  const { policyNamespace, forTCP, action, trustDomain } = options;
  const principalsIn = (values: readonly string[] | undefined) => (values ? migrateTrustDomain(values, trustDomain) : undefined);
  const basePermission: ConditionList = [];
  const basePrincipal: ConditionList = [];
  for (const when of rule.when ?? []) {
    const k = when.key;
    const add = (list: ConditionList, g: AttributeGenerator) => appendLast(list, g, k, when.values, when.notValues);
    if (k === 'destination.ip') add(basePermission, destIP);
    else if (k === 'destination.port') add(basePermission, destPort);
    else if (k === 'connection.sni') add(basePermission, connSNI);
    else if (k.startsWith('experimental.envoy.filters.')) add(basePermission, envoyFilter);
    else if (k === 'source.ip') add(basePrincipal, srcIP);
    else if (k === 'remote.ip') add(basePrincipal, remoteIP);
    else if (k === 'source.namespace') add(basePrincipal, srcNamespace);
    else if (k === 'source.serviceAccount') add(basePrincipal, srcServiceAccount(policyNamespace));
    else if (k === 'source.principal') appendLast(basePrincipal, srcPrincipal, k, principalsIn(when.values), principalsIn(when.notValues));
    else if (k === 'request.auth.principal' || k === 'request.auth.audiences' || k === 'request.auth.presenter') add(basePrincipal, requestAuthString);
    else if (k.startsWith('request.headers')) add(basePrincipal, requestHeader);
    else if (k.startsWith('request.experimental.inline.headers')) add(basePrincipal, requestInlineHeader);
    else if (k.startsWith(ATTR_REQUEST_CLAIMS)) add(basePrincipal, requestClaim);
    else throw new RuleError(`unknown attribute ${k}`);
  }

  const principals: ConditionList[] = [];
  for (const from of rule.from ?? []) {
    const merged = [...basePrincipal];
    const s = from.source;
    if (s) {
      insertFront(merged, srcIP, 'source.ip', s.ipBlocks, s.notIpBlocks);
      insertFront(merged, remoteIP, 'remote.ip', s.remoteIpBlocks, s.notRemoteIpBlocks);
      insertFront(merged, srcNamespace, 'source.namespace', s.namespaces, s.notNamespaces);
      insertFront(merged, srcServiceAccount(policyNamespace), 'source.serviceAccount', s.serviceAccounts, s.notServiceAccounts);
      insertFront(merged, requestAuthString, 'request.auth.principal', s.requestPrincipals, s.notRequestPrincipals);
      insertFront(merged, srcPrincipal, 'source.principal', principalsIn(s.principals), principalsIn(s.notPrincipals));
    }
    principals.push(merged);
  }
  if (principals.length === 0) principals.push(basePrincipal);

  const permissions: ConditionList[] = [];
  for (const to of rule.to ?? []) {
    const merged = [...basePermission];
    const o = to.operation;
    if (o) {
      insertFront(merged, destPort, 'destination.port', o.ports, o.notPorts);
      insertFront(merged, path, 'path-matcher', o.paths, o.notPaths);
      insertFront(merged, method, ':method', o.methods, o.notMethods);
      insertFront(merged, host, ':authority', o.hosts, o.notHosts);
    }
    permissions.push(merged);
  }
  if (permissions.length === 0) permissions.push(basePermission);

  return {
    permissions: permissions.map((list) => ({ and_rules: { rules: orAny(list.flatMap((c) => permissionsOf(c, forTCP, action, ignored)), { any: true }) } })),
    principals: principals.map((list) => ({ and_ids: { ids: orAny(list.flatMap((c) => principalsOf(c, forTCP, action, ignored)), { any: true }) } })),
  };
}

function orAny<T>(list: T[], any: T): T[] {
  return list.length > 0 ? list : [any];
}

/** In ALLOW the error stands (the rule is dropped); in DENY/LOG the value is skipped (the rule matches more), noted in `ignored`. */
function tolerate<T>(action: RbacAction, ignored: string[], build: () => T): T | undefined {
  try {
    return build();
  } catch (err) {
    if (action === 'ALLOW' || !(err instanceof AttributeError)) throw err;
    if (!ignored.includes(err.message)) ignored.push(err.message);
    return undefined;
  }
}

function permissionsOf(c: Condition, forTCP: boolean, action: RbacAction, ignored: string[]): Permission[] {
  const one = (v: string) => {
    if (!c.g.permission) throw new AttributeError(`${c.key} is not a permission`);
    return c.g.permission(c.key, v, forTCP);
  };
  const out: Permission[] = [];
  const or = c.values.map((v) => tolerate(action, ignored, () => one(v))).filter((p): p is Permission => p !== undefined);
  if (or.length > 0) out.push({ or_rules: { rules: or } });
  const notOr = c.notValues.map((v) => tolerate(action, ignored, () => one(v))).filter((p): p is Permission => p !== undefined);
  if (notOr.length > 0) out.push({ not_rule: { or_rules: { rules: notOr } } });
  return out;
}

function principalsOf(c: Condition, forTCP: boolean, action: RbacAction, ignored: string[]): Principal[] {
  const one = (v: string) => {
    if (!c.g.principal) throw new AttributeError(`${c.key} is not a principal`);
    return c.g.principal(c.key, v, forTCP);
  };
  const out: Principal[] = [];
  const or = c.values.map((v) => tolerate(action, ignored, () => one(v))).filter((p): p is Principal => p !== undefined);
  if (or.length > 0) out.push({ or_ids: { ids: or } });
  const notOr = c.notValues.map((v) => tolerate(action, ignored, () => one(v))).filter((p): p is Principal => p !== undefined);
  if (notOr.length > 0) out.push({ not_id: { or_ids: { ids: notOr } } });
  return out;
}

function condition(g: AttributeGenerator, key: string, values?: readonly string[], notValues?: readonly string[]): Condition | undefined {
  if ((values?.length ?? 0) === 0 && (notValues?.length ?? 0) === 0) return undefined;
  return { key, values: values ?? [], notValues: notValues ?? [], g };
}

function insertFront(list: ConditionList, g: AttributeGenerator, key: string, values?: readonly string[], notValues?: readonly string[]): void {
  const c = condition(g, key, values, notValues);
  if (c) list.unshift(c);
}

function appendLast(list: ConditionList, g: AttributeGenerator, key: string, values?: readonly string[], notValues?: readonly string[]): void {
  const c = condition(g, key, values, notValues);
  if (c) list.push(c);
}
