// EDS: a ClusterLoadAssignment for every EDS cluster the proxy's CDS holds, subsets filtered by their DestinationRule labels.
import { CLUSTER_LOAD_ASSIGNMENT } from '../../../xds/type-urls.js';
import { parseClusterName } from '../../model/cluster-name.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { PushContext } from '../../model/push-context.js';
import { buildClusterLoadAssignment } from '../endpoint/index.js';
import { proxyClusters } from './cds.js';
import { clusterTrafficPolicy, endpointsMtlsEnabled } from '../cluster/index.js';
import { proxyInputs } from './proxy-inputs.js';

export const edsGenerator: XdsGenerator<PushContext> = {
  typeUrl: CLUSTER_LOAD_ASSIGNMENT,
  generate(proxy, push): readonly GeneratedResource[] {
    const inputs = proxyInputs(proxy, push);
    const out: GeneratedResource[] = [];
    for (const cluster of proxyClusters(proxy, push)) {
      if (cluster.type !== 'EDS') continue;
      const name = cluster.eds_cluster_config?.service_name || cluster.name || '';
      const parsed = parseClusterName(name);
      const service = parsed && (inputs.scope.service(parsed.hostname) ?? push.service(parsed.hostname, proxy.namespace));
      if (!parsed || !service) {
        out.push({ name, resource: buildClusterLoadAssignment(name, []) });
        continue;
      }
      const rule = push.destinationRule(proxy, service);
      const subsetLabels = parsed.subset ? push.subsetLabels(proxy, service, parsed.subset) : undefined;
      const assignment = buildClusterLoadAssignment(name, push.instances(service, parsed.port), {
        ...(subsetLabels ? { subsetLabels } : {}),
        proxyLocality: proxy.locality,
        // Istio's mtlsChecker: a DestinationRule TLS mode other than ISTIO_MUTUAL means no auto-mTLS to these endpoints.
        mtlsEnabled: endpointsMtlsEnabled(clusterTrafficPolicy(rule, parsed.port, parsed.subset || undefined)),
      });
      out.push({ name, resource: assignment });
    }
    return out;
  },
};
