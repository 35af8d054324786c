// A ServiceRegistry held in memory and changed by calls: for tests and for embedding Trellis in a program.
import { ChangeListeners } from '../../config/change-listeners.js';
import { DEFAULT_DOMAIN_SUFFIX } from '../../model/hostname.js';
import type { RegistryChange, Service, ServiceInstance } from '../../model/service.js';
import type { InstanceQuery, ServiceRegistry } from '../registry.js';
import { ServiceIndex, type ChangeSets, type NamespaceServices } from '../service-index.js';

export class MemoryServiceRegistry implements ServiceRegistry {
  readonly name: string;
  private readonly index: ServiceIndex;
  private readonly listeners: ChangeListeners<RegistryChange>;

  constructor(options: { name?: string; domainSuffix?: string } = {}) {
    this.name = options.name ?? 'memory';
    this.index = new ServiceIndex(options.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX);
    this.listeners = new ChangeListeners(`registry ${this.name}`);
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

  /** Adds or replaces a service (by namespace and host name), with its instances when given (else it keeps those it had). */
  setService(service: Service, instances?: readonly ServiceInstance[]): void {
    this.update(service.namespace, (ns) => {
      ns.services.set(service.hostname, service);
      if (instances) ns.instances.set(service.hostname, [...instances]);
    });
  }

  /** Replaces the instances of a host in a namespace: an endpoint-only change. */
  setInstances(hostname: string, namespace: string, instances: readonly ServiceInstance[]): void {
    this.update(namespace, (ns) => {
      if (instances.length > 0) ns.instances.set(hostname, [...instances]);
      else ns.instances.delete(hostname);
    });
  }

  /** Removes a service and its instances. */
  deleteService(hostname: string, namespace: string): void {
    this.update(namespace, (ns) => {
      ns.services.delete(hostname);
      ns.instances.delete(hostname);
    });
  }

  private update(namespace: string, change: (ns: NamespaceServices) => void): void {
    const current = this.index.namespace(namespace);
    const next: NamespaceServices = { services: new Map(current?.services), instances: new Map(current?.instances) };
    change(next);
    const changes: ChangeSets = { services: new Set(), endpoints: new Set() };
    this.index.replaceNamespace(namespace, next, changes);
    if (changes.services.size > 0 || changes.endpoints.size > 0) this.listeners.emit(changes);
  }
}
