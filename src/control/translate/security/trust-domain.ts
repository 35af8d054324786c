// Istio's trust domain handling of source principals (pilot/pkg/security/trustdomain): `cluster.local` in a policy
// stands for the mesh's own trust domain, so policies keep working when the mesh's trust domain is another one.

/** Istio's constants.DefaultClusterLocalDomain. */
const CLUSTER_LOCAL = 'cluster.local';

/**
 * Rewrites principals `<td>/ns/<ns>/sa/<sa>` whose trust domain is the mesh's or `cluster.local` to the mesh's trust
 * domain (Istio's ReplaceTrustDomainAliases with no aliases configured). Principals starting with `*` do not enforce a
 * trust domain and stay; so do those of other trust domains (Istio warns about them).
 */
export function migrateTrustDomain(principals: readonly string[], trustDomain: string): string[] {
  return principals.map((principal) => {
    if (principal.startsWith('*')) return principal;
    const at = principal.indexOf('/ns/');
    if (at < 0) return principal;
    const td = principal.slice(0, at);
    if (td !== trustDomain && td !== CLUSTER_LOCAL) return principal;
    return trustDomain + principal.slice(at);
  });
}
