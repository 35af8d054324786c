// The ServiceRegistry interface: the services of the mesh by host name, their instances, and change events split into service and endpoint changes.
import type { RegistryChange, Service, ServiceInstance } from '../model/service.js';

export type { RegistryChange, Service, ServiceInstance, ServicePort } from '../model/service.js';

export interface InstanceQuery {
  /** Namespace of the resource that names the host: resolves short names and picks that namespace's service first. */
  namespace?: string;
  /** Only instances of this service port number. */
  port?: number;
}

export interface ServiceRegistry {
  /** A short name for messages and debug output (`ServiceEntry`, `memory`, `kube`). */
  readonly name: string;
  /** Every service, sorted by host name then namespace. */
  services(): readonly Service[];
  /**
   * The service for `hostname`. With `namespace`, a short name resolves in it (`reviews` → `reviews.<ns>.svc.<suffix>`)
   * and a service defined in that namespace is preferred over one of the same host elsewhere.
   */
  getService(hostname: string, namespace?: string): Service | undefined;
  /** The instances of the service `getService(hostname, query.namespace)` finds, optionally of one port. */
  instances(hostname: string, query?: InstanceQuery): readonly ServiceInstance[];
  /** Calls `handler` after each change, with the hosts whose services or endpoints changed; returns the unsubscribe function. */
  onChange(handler: (change: RegistryChange) => void): () => void;
}
