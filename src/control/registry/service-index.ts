// Services and instances held per namespace, looked up by host, and the diff (service vs endpoint change) when a namespace is replaced.
import { canonicalJson } from '../config/resource-version.js';
import { DEFAULT_DOMAIN_SUFFIX, resolveHostname } from '../model/hostname.js';
import type { Service, ServiceInstance } from '../model/service.js';
import type { InstanceQuery } from './registry.js';

export interface NamespaceServices {
  services: Map<string, Service>;
  instances: Map<string, readonly ServiceInstance[]>;
}

/** Hosts that changed, filled in by `replaceNamespace`. */
export interface ChangeSets {
  services: Set<string>;
  endpoints: Set<string>;
}

export class ServiceIndex {
  private readonly byNamespace = new Map<string, NamespaceServices>();
  private readonly byHost = new Map<string, Service[]>();
  private sortedServices: readonly Service[] | undefined;

  constructor(private readonly domainSuffix: string = DEFAULT_DOMAIN_SUFFIX) {}

  services(): readonly Service[] {
    this.sortedServices ??= [...this.byHost.values()].flat().sort((a, b) => compare(a.hostname, b.hostname) || compare(a.namespace, b.namespace));
    return this.sortedServices;
  }

  getService(hostname: string, namespace?: string): Service | undefined {
    const host = namespace === undefined ? hostname : resolveHostname(hostname, namespace, this.domainSuffix);
    const candidates = this.byHost.get(host);
    if (!candidates) return undefined;
    return candidates.find((s) => s.namespace === namespace) ?? candidates[0];
  }

  instances(hostname: string, query: InstanceQuery = {}): readonly ServiceInstance[] {
    const service = this.getService(hostname, query.namespace);
    if (!service) return [];
    const all = this.byNamespace.get(service.namespace)?.instances.get(service.hostname) ?? [];
    return query.port === undefined ? all : all.filter((i) => i.servicePort.number === query.port);
  }

  namespace(namespace: string): NamespaceServices | undefined {
    return this.byNamespace.get(namespace);
  }

  /** Replaces everything in `namespace`, adding to `changes` each host whose service or instances differ. */
  replaceNamespace(namespace: string, next: NamespaceServices, changes: ChangeSets): void {
    const before = this.byNamespace.get(namespace) ?? { services: new Map(), instances: new Map() };
    const touched = new Set<string>();
    for (const host of new Set([...before.services.keys(), ...next.services.keys()])) {
      const a = before.services.get(host), b = next.services.get(host);
      if (!a || !b || serviceFingerprint(a) !== serviceFingerprint(b)) {
        changes.services.add(host);
        touched.add(host);
      } else if (a !== b) {
        touched.add(host); // same definition, new object (its source moved): keep the index pointing at the current one
      }
    }
    for (const host of new Set([...before.instances.keys(), ...next.instances.keys()])) {
      if (instancesFingerprint(before.instances.get(host) ?? []) !== instancesFingerprint(next.instances.get(host) ?? [])) changes.endpoints.add(host);
    }
    if (next.services.size === 0 && next.instances.size === 0) this.byNamespace.delete(namespace);
    else this.byNamespace.set(namespace, next);
    for (const host of touched) this.reindexHost(host);
  }

  private reindexHost(host: string): void {
    const list: Service[] = [];
    for (const [, ns] of [...this.byNamespace].sort(([a], [b]) => compare(a, b))) {
      const s = ns.services.get(host);
      if (s) list.push(s);
    }
    if (list.length > 0) this.byHost.set(host, list);
    else this.byHost.delete(host);
    this.sortedServices = undefined;
  }
}

// What a consumer would notice: where the configuration came from (file, document) is not part of it.
function serviceFingerprint(s: Service): string {
  const { source: _source, ...rest } = s;
  return canonicalJson(rest);
}

function instancesFingerprint(list: readonly ServiceInstance[]): string {
  return canonicalJson(list.map(({ source, ...rest }) => ({ ...rest, source: `${source.kind ?? ''}/${source.namespace}/${source.name}` })));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
