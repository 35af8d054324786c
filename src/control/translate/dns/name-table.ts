// Istio's BuildNameTable: the hosts a proxy's scope can reach and their IPs, for the agent's DNS proxy (NDS).
import { isIP } from 'node:net';
import type { istio } from '../../../xds/generated/types.js';
import { autoAllocateAddresses, DNS_AUTO_ALLOCATE_METADATA } from '../../model/auto-allocated-addresses.js';
import type { Proxy } from '../../model/proxy.js';
import type { Service, ServiceInstance } from '../../model/service.js';

export type NameTable = istio.networking.nds.v1.NameTable;
export type NameInfo = istio.networking.nds.v1.NameTable.NameInfo;

/** What the builder reads of a PushContext. */
export interface NameTableSource {
  /** The services of the proxy's scope (Sidecar egress hosts, exportTo). */
  readonly services: readonly Service[];
  /** Every service of the snapshot: auto-allocation is mesh-wide so a host has one VIP for every proxy. */
  readonly allServices: readonly Service[];
  /** Instances of a service (headless services answer with their endpoint IPs). */
  instances(service: Service): readonly ServiceInstance[];
}

/** Istio's registry names in NameInfo.registry. */
const KUBERNETES_REGISTRY = 'Kubernetes';
const EXTERNAL_REGISTRY = 'External';

function isPlainIp(address: string): boolean {
  return isIP(address) !== 0 && address !== '0.0.0.0' && address !== '::';
}

/**
 * `name.namespace.svc.<domain>` hosts get shortname and namespace so the agent also answers `name`, `name.namespace`
 * and `name.namespace.svc`. Istio does this for Kubernetes services only; Trellis also does it for ServiceEntries
 * shaped like them, which is how local meshes declare their services (there is no Kubernetes to own the names).
 */
function kubeShape(service: Service, domainSuffix: string): { shortname: string; namespace: string } | undefined {
  const suffix = `.${service.namespace}.svc.${domainSuffix}`;
  if (!service.hostname.endsWith(suffix)) return undefined;
  const shortname = service.hostname.slice(0, -suffix.length);
  if (shortname === '' || shortname.includes('.')) return undefined;
  return { shortname, namespace: service.namespace };
}

/**
 * The name table for `proxy`: each host of its scope with its IPs — declared addresses (CIDRs left out, as Istio does),
 * else the auto-allocated VIP when the proxy asks for them (ISTIO_META_DNS_AUTO_ALLOCATE), else for resolution NONE
 * (headless) the endpoint IPs. Hosts with none of these are left to the upstream resolver. Wildcard hosts are kept
 * (the agent answers every name under them). A host declared twice merges the addresses of ServiceEntries and lets a
 * Kubernetes service win, as Istio does.
 */
export function buildNameTable(proxy: Proxy, source: NameTableSource): NameTable {
  const autoAllocate = proxy.metadata[DNS_AUTO_ALLOCATE_METADATA] === 'true';
  const allocated = autoAllocate ? autoAllocateAddresses(source.allServices) : new Map<string, string>();
  const table: Record<string, NameInfo> = {};
  for (const service of source.services) {
    let ips = service.addresses.filter(isPlainIp);
    if (ips.length === 0) {
      const vip = allocated.get(service.hostname);
      if (vip) ips = [vip];
      else if (service.resolution === 'NONE') ips = [...new Set(source.instances(service).map((i) => i.address).filter(isPlainIp))];
    }
    if (ips.length === 0) continue;
    const registry = service.source.registry === 'kube' ? KUBERNETES_REGISTRY : EXTERNAL_REGISTRY;
    const existing = table[service.hostname];
    if (existing) {
      if (registry === KUBERNETES_REGISTRY && existing.registry !== KUBERNETES_REGISTRY) {
        existing.ips = ips;
        existing.registry = registry;
      } else if (existing.registry !== KUBERNETES_REGISTRY) {
        existing.ips = [...new Set([...(existing.ips ?? []), ...ips])];
      }
      continue;
    }
    const info: NameInfo = { ips, registry };
    const shape = kubeShape(service, proxy.domainSuffix);
    if (shape) Object.assign(info, shape);
    table[service.hostname] = info;
  }
  return { table };
}

/**
 * One NDS resource per host, named by the host, each a NameTable of that one entry (Istio's per-host form for Delta
 * NDS): a change to one host re-sends that host only, in SotW and Delta alike.
 */
export function perHostResources(nameTable: NameTable): { name: string; resource: NameTable }[] {
  return Object.keys(nameTable.table ?? {})
    .sort()
    .map((host) => ({ name: host, resource: { table: { [host]: nameTable.table![host]! } } }));
}
