// A ServiceRegistry built from the ServiceEntries and WorkloadEntries of a ConfigStore, rebuilt per namespace on its change events.
import { DEFAULT_DOMAIN_SUFFIX } from '../../model/hostname.js';
import type { RegistryChange, Service, ServiceInstance } from '../../model/service.js';
import { ChangeListeners } from '../../config/change-listeners.js';
import type { ConfigEvent, ConfigStore } from '../../config/store.js';
import type { InstanceQuery, ServiceRegistry } from '../registry.js';
import { ServiceIndex, type ChangeSets } from '../service-index.js';
import { convertNamespace, REGISTRY_NAME } from './service-entry-conversion.js';

export interface ServiceEntryRegistryOptions {
  /** The cluster domain short names resolve under (default `cluster.local`). */
  domainSuffix?: string;
}

export class ServiceEntryRegistry implements ServiceRegistry {
  readonly name = REGISTRY_NAME;
  private readonly index: ServiceIndex;
  private readonly listeners = new ChangeListeners<RegistryChange>(`registry ${REGISTRY_NAME}`);
  private readonly domainSuffix: string;
  private readonly unsubscribe: () => void;

  constructor(private readonly store: ConfigStore, options: ServiceEntryRegistryOptions = {}) {
    this.domainSuffix = options.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX;
    this.index = new ServiceIndex(this.domainSuffix);
    const namespaces = new Set([...store.list('ServiceEntry'), ...store.list('WorkloadEntry')].map((r) => r.metadata.namespace));
    this.rebuild(namespaces);
    this.unsubscribe = store.onChange((events) => this.configChanged(events));
  }

  services(): readonly Service[] {
    return this.index.services();
  }

  getService(hostname: string, namespace?: string): Service | undefined {
    return this.index.getService(hostname, namespace);
  }

  instances(hostname: string, query?: InstanceQuery): readonly ServiceInstance[] {
    return this.index.instances(hostname, query);
  }

  onChange(handler: (change: RegistryChange) => void): () => void {
    return this.listeners.add(handler);
  }

  /** Stops following the config store. */
  close(): void {
    this.unsubscribe();
  }

  private configChanged(events: readonly ConfigEvent[]): void {
    // WorkloadEntries are selected within their own namespace only, so a change rebuilds just the namespaces it touches.
    const namespaces = new Set(events.filter((e) => e.kind === 'ServiceEntry' || e.kind === 'WorkloadEntry').map((e) => e.namespace));
    if (namespaces.size === 0) return;
    const changes = this.rebuild(namespaces);
    if (changes.services.size > 0 || changes.endpoints.size > 0) this.listeners.emit(changes);
  }

  private rebuild(namespaces: Iterable<string>): ChangeSets {
    const changes: ChangeSets = { services: new Set(), endpoints: new Set() };
    for (const ns of namespaces) {
      const next = convertNamespace(ns, this.store.list('ServiceEntry', ns), this.store.list('WorkloadEntry', ns), this.domainSuffix);
      this.index.replaceNamespace(ns, next, changes);
    }
    return changes;
  }
}
