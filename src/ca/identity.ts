// SPIFFE workload identities as Istio writes them: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.

export interface SpiffeIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

// Kubernetes names (DNS-1123 labels for namespaces, subdomains for service accounts), which is what Istio identities carry.
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** The URI SAN of an identity. */
export function spiffeUri(id: SpiffeIdentity): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses Istio's SPIFFE form; undefined for anything else (another path shape, bad characters). */
export function parseSpiffeUri(uri: string): SpiffeIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  const [, trustDomain, namespace, serviceAccount] = m as unknown as [string, string, string, string];
  if (!TRUST_DOMAIN.test(trustDomain) || !NAMESPACE.test(namespace) || !SERVICE_ACCOUNT.test(serviceAccount)) return undefined;
  return { trustDomain, namespace, serviceAccount };
}

/** Why a namespace / service account pair cannot be an identity, or undefined when it can. */
export function identityProblem(namespace: string, serviceAccount: string): string | undefined {
  if (!NAMESPACE.test(namespace)) return `namespace ${JSON.stringify(namespace)} is not a DNS-1123 label`;
  if (!SERVICE_ACCOUNT.test(serviceAccount)) return `service account ${JSON.stringify(serviceAccount)} is not a DNS-1123 subdomain`;
  return undefined;
}

/** Why a trust domain cannot be used, or undefined. */
export function trustDomainProblem(trustDomain: string): string | undefined {
  return TRUST_DOMAIN.test(trustDomain) ? undefined : `trust domain ${JSON.stringify(trustDomain)} has characters other than a-z 0-9 . _ -`;
}
