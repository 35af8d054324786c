// Several ServiceRegistries seen as one: services from the first registry that has the host, instances from every registry that has it.
import { ChangeListeners } from '../config/change-listeners.js';
import type { RegistryChange, Service, ServiceInstance } from '../model/service.js';
import type { InstanceQuery, ServiceRegistry } from './registry.js';

export class AggregateServiceRegistry implements ServiceRegistry {
  readonly name: string;
  private readonly registries: readonly ServiceRegistry[];
  private readonly listeners: ChangeListeners<RegistryChange>;
  private readonly unsubscribe: (() => void)[];

  /** `registries` in precedence order: for a host (and namespace) defined by several, the earlier one's service is used. */
  constructor(registries: readonly ServiceRegistry[], options: { name?: string } = {}) {
    this.registries = [...registries];
    this.name = options.name ?? `aggregate(${registries.map((r) => r.name).join(', ')})`;
    this.listeners = new ChangeListeners(`registry ${this.name}`);
    // Each child's change is passed on as it is: which registry a host comes from can only change when one of them changes it.
    this.unsubscribe = this.registries.map((r) => r.onChange((change) => this.listeners.emit(change)));
  }

  services(): readonly Service[] {
    const seen = new Set<string>();
    const out: Service[] = [];
    for (const registry of this.registries) {
      for (const s of registry.services()) {
        const id = `${s.namespace}/${s.hostname}`;
        if (seen.has(id)) continue;
        seen.add(id);
        out.push(s);
      }
    }
    return out.sort((a, b) => compare(a.hostname, b.hostname) || compare(a.namespace, b.namespace));
  }

  getService(hostname: string, namespace?: string): Service | undefined {
    let fallback: Service | undefined;
    for (const registry of this.registries) {
      const s = registry.getService(hostname, namespace);
      if (!s) continue;
      if (namespace === undefined || s.namespace === namespace) return s;
      fallback ??= s;
    }
    return fallback;
  }

  /** Istio merges endpoints across registries: a host with workloads in two registries gets all of them. */
  instances(hostname: string, query: InstanceQuery = {}): readonly ServiceInstance[] {
    const service = this.getService(hostname, query.namespace);
    if (!service) return [];
    return this.registries.flatMap((r) => r.instances(service.hostname, { namespace: service.namespace, ...(query.port !== undefined ? { port: query.port } : {}) }).filter((i) => i.namespace === service.namespace));
  }

  onChange(handler: (change: RegistryChange) => void): () => void {
    return this.listeners.add(handler);
  }

  /** Stops following the child registries. */
  close(): void {
    for (const off of this.unsubscribe) off();
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
