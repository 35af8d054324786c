// CDS: envoy.config.cluster.v3.Cluster, validated for what Trellis's cluster manager relies on.
import type { envoy } from '../../generated/types.js';
import { CLUSTER } from '../../type-urls.js';
import { EnvoyResourceType, type Problems } from '../envoy-resource-type.js';
import { checkPositiveDuration } from './address-validation.js';
import { checkLocalityEndpoints } from './cluster-load-assignment.js';

export type Cluster = envoy.config.cluster.v3.Cluster;

export class ClusterResourceType extends EnvoyResourceType<Cluster> {
  readonly typeUrl = CLUSTER;
  readonly allResourcesRequiredInSotW = true;

  protected validate(cluster: Cluster, problems: Problems): void {
    checkPositiveDuration(cluster.connect_timeout, 'connect_timeout', problems);
    const type = cluster.type ?? 'STATIC';
    if (typeof type === 'number') problems.add('type', `unknown discovery type ${type}`);
    if (cluster.cluster_type) problems.add('cluster_type', 'custom cluster types are not supported');
    if (type === 'EDS' && cluster.load_assignment) problems.add('load_assignment', 'must be empty for an EDS cluster (endpoints come from EDS)');
    if ((type === 'STATIC' || type === 'STRICT_DNS' || type === 'LOGICAL_DNS') && cluster.load_assignment) {
      checkLocalityEndpoints(cluster.load_assignment.endpoints ?? [], 'load_assignment.endpoints', problems);
    }
    if (typeof cluster.lb_policy === 'number') problems.add('lb_policy', `unknown load balancing policy ${cluster.lb_policy}`);
  }
}
