// Host names as Istio reads them: short names resolve within a namespace (`reviews` in `default` → `reviews.default.svc.cluster.local`).
import { DEFAULT_NODE_DOMAIN } from '../../common/node-id.js';

/** Kubernetes' default cluster domain; Istio calls it the domain suffix. */
export const DEFAULT_DOMAIN_SUFFIX = DEFAULT_NODE_DOMAIN;

/**
 * The fully qualified name of `host` as written in a resource of `namespace`, the way Istio's ResolveShortnameToFQDN does it:
 * a name without a dot gets `.<namespace>.svc.<domainSuffix>`; FQDNs, wildcards (`*`, `*.example.com`) and IPs stay as written.
 */
export function resolveHostname(host: string, namespace: string, domainSuffix: string = DEFAULT_DOMAIN_SUFFIX): string {
  if (host === '' || host.startsWith('*') || host.includes('.') || host.includes(':')) return host;
  return `${host}.${namespace}.svc.${domainSuffix}`;
}

/** True when `host` is a wildcard pattern (`*` or `*.suffix`). */
export function isWildcardHost(host: string): boolean {
  return host.startsWith('*');
}

/** True when the (possibly wildcard) pattern covers `hostname`: `*.example.com` covers `a.example.com` and `a.b.example.com`, `*` covers all. */
export function hostMatches(pattern: string, hostname: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return hostname.endsWith(pattern.slice(1)) && hostname.length > pattern.length - 1;
  return pattern === hostname;
}
