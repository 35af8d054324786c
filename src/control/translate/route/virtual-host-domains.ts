// The domains of a service's virtual host: FQDN, the short names valid from the proxy's namespace, VIPs, each with and without the port.
import type { Proxy } from '../../model/proxy.js';
import type { Service } from '../../model/service.js';

function withPort(domains: string[], domain: string, port: number | undefined): void {
  const host = domain.includes(':') && !domain.startsWith('[') && /^[0-9a-fA-F:]+$/.test(domain) ? `[${domain}]` : domain;
  domains.push(host);
  if (port !== undefined) domains.push(`${host}:${port}`);
}

/**
 * Istio's generateVirtualHostDomains (with port suffixes, i.e. without `ignore_port_in_host_matching`): for
 * `reviews.default.svc.cluster.local` seen from namespace `default`: the FQDN, `reviews`, `reviews.default`,
 * `reviews.default.svc`, then the service's addresses; from another namespace the bare `reviews` is left out. Hosts
 * outside `svc.<domainSuffix>` (ServiceEntry hosts) get no short names. Each with `:port` too when `port` is given.
 */
export function virtualHostDomains(service: Service, port: number | undefined, proxy: Proxy): string[] {
  const domains: string[] = [];
  const hostname = service.hostname;
  withPort(domains, hostname, port);
  const svcSuffix = `.svc.${proxy.domainSuffix}`;
  if (hostname.endsWith(svcSuffix)) {
    const svcIndex = hostname.length - svcSuffix.length;
    const firstDot = hostname.indexOf('.');
    if (firstDot > 0 && firstDot < svcIndex) {
      const shortName = hostname.slice(0, firstDot);
      const namespace = hostname.slice(firstDot + 1, svcIndex);
      if (namespace === proxy.namespace) withPort(domains, shortName, port);
      withPort(domains, hostname.slice(0, svcIndex), port);
      withPort(domains, hostname.slice(0, svcIndex + 4), port);
    }
  }
  for (const address of service.addresses) {
    // CIDR ranges cannot be a Host header.
    if (address.includes('/') || address === '0.0.0.0') continue;
    withPort(domains, address, port);
  }
  return domains;
}
