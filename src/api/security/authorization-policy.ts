// AuthorizationPolicy (security.istio.io): allow/deny/audit/custom rules on workloads, field names as in Istio's YAML.
import type { PolicyTargetReference, SecurityWorkloadSelector } from './common.js';

export const AUTHORIZATION_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;

export interface AuthorizationPolicySpec {
  selector?: SecurityWorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  rules?: Rule[];
  /** Default ALLOW. */
  action?: (typeof AUTHORIZATION_ACTIONS)[number];
  /** Required with CUSTOM: the extension provider (from mesh config) that decides. */
  provider?: { name?: string };
}

export interface Rule {
  from?: { source?: Source }[];
  to?: { operation?: Operation }[];
  when?: Condition[];
}

export interface Source {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

export interface Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface Condition {
  /** One of Istio's attribute names, e.g. `request.headers[x-token]`, `source.ip`, `request.auth.claims[iss]`. */
  key: string;
  values?: string[];
  notValues?: string[];
}
