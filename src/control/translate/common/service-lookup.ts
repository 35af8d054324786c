// Finding a Service by host name, and Istio's gateway names (`mesh`, `namespace/name`) as VirtualServices refer to them.
import type { Service } from '../../model/service.js';

/** The service with this fully qualified host name, if the registry has it. */
export type ServiceLookup = (hostname: string) => Service | undefined;

/** A lookup over a list of services (first one wins for a host). */
export function serviceLookupOf(services: Iterable<Service>, fallback?: ServiceLookup): ServiceLookup {
  const byHost = new Map<string, Service>();
  for (const service of services) if (!byHost.has(service.hostname)) byHost.set(service.hostname, service);
  return (hostname) => byHost.get(hostname) ?? fallback?.(hostname);
}

/** The reserved gateway name for sidecars. */
export const MESH_GATEWAY = 'mesh';

/** `name` in a resource of `namespace` → `namespace/name`; `mesh` and `ns/name` stay as written (Istio's resolveGatewayName). */
export function resolveGatewayName(name: string, namespace: string): string {
  if (name === MESH_GATEWAY || name.includes('/')) return name;
  return `${namespace}/${name}`;
}

/** The gateways a VirtualService is bound to, resolved; none listed means `mesh` only. */
export function virtualServiceGateways(gateways: readonly string[] | undefined, namespace: string): string[] {
  if (!gateways || gateways.length === 0) return [MESH_GATEWAY];
  return gateways.map((g) => resolveGatewayName(g, namespace));
}
