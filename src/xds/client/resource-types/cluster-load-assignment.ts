// EDS: envoy.config.endpoint.v3.ClusterLoadAssignment, named by cluster_name; also checks the endpoints embedded in static clusters.
import type { envoy } from '../../generated/types.js';
import { CLUSTER_LOAD_ASSIGNMENT } from '../../type-urls.js';
import { EnvoyResourceType, type Problems } from '../envoy-resource-type.js';
import { checkAddress } from './address-validation.js';

export type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;

/** Endpoint addresses, weights (PGV: at least 1 when set) and priorities (Envoy: contiguous from 0). */
export function checkLocalityEndpoints(localities: readonly envoy.config.endpoint.v3.LocalityLbEndpoints[], path: string, problems: Problems): void {
  const priorities = new Set<number>();
  localities.forEach((locality, i) => {
    const at = `${path}[${i}]`;
    priorities.add(locality.priority ?? 0);
    if (locality.load_balancing_weight && (locality.load_balancing_weight.value ?? 0) < 1) problems.add(`${at}.load_balancing_weight`, 'must be at least 1');
    (locality.lb_endpoints ?? []).forEach((lbEndpoint, j) => {
      const endpointAt = `${at}.lb_endpoints[${j}]`;
      if (!lbEndpoint.endpoint) {
        problems.add(`${endpointAt}.endpoint`, lbEndpoint.endpoint_name ? 'named endpoints are not supported' : 'is required');
        return;
      }
      checkAddress(lbEndpoint.endpoint.address, `${endpointAt}.endpoint.address`, problems, true);
      if (lbEndpoint.load_balancing_weight && (lbEndpoint.load_balancing_weight.value ?? 0) < 1) problems.add(`${endpointAt}.load_balancing_weight`, 'must be at least 1');
    });
  });
  const sorted = [...priorities].sort((a, b) => a - b);
  sorted.forEach((priority, index) => {
    if (priority !== index) problems.add(path, `priorities must be contiguous from 0, got ${sorted.join(', ')}`);
  });
}

export class ClusterLoadAssignmentResourceType extends EnvoyResourceType<ClusterLoadAssignment> {
  readonly typeUrl = CLUSTER_LOAD_ASSIGNMENT;
  readonly allResourcesRequiredInSotW = false;
  protected override readonly nameField = 'cluster_name';

  protected validate(assignment: ClusterLoadAssignment, problems: Problems): void {
    checkLocalityEndpoints(assignment.endpoints ?? [], 'endpoints', problems);
    const factor = assignment.policy?.overprovisioning_factor;
    if (factor && (factor.value ?? 0) < 1) problems.add('policy.overprovisioning_factor', 'must be at least 1');
  }
}
