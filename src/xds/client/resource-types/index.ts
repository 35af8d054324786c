// The five ADS resource types the xDS client knows out of the box, one instance each.
import type { XdsResourceType } from '../resource-type.js';
import { ClusterLoadAssignmentResourceType } from './cluster-load-assignment.js';
import { ClusterResourceType } from './cluster.js';
import { ListenerResourceType } from './listener.js';
import { RouteConfigurationResourceType } from './route-configuration.js';
import { SecretResourceType } from './secret.js';

export { ClusterResourceType, type Cluster } from './cluster.js';
export { ClusterLoadAssignmentResourceType, type ClusterLoadAssignment } from './cluster-load-assignment.js';
export { ListenerResourceType, type Listener } from './listener.js';
export { RouteConfigurationResourceType, type RouteConfiguration } from './route-configuration.js';
export { SecretResourceType, type Secret } from './secret.js';

export const clusterResourceType = new ClusterResourceType();
export const clusterLoadAssignmentResourceType = new ClusterLoadAssignmentResourceType();
export const listenerResourceType = new ListenerResourceType();
export const routeConfigurationResourceType = new RouteConfigurationResourceType();
export const secretResourceType = new SecretResourceType();

/** In Envoy's request order: CDS before EDS, LDS before RDS. */
export const BUILTIN_RESOURCE_TYPES: readonly XdsResourceType<object>[] = [
  clusterResourceType,
  clusterLoadAssignmentResourceType,
  listenerResourceType,
  routeConfigurationResourceType,
  secretResourceType,
];
