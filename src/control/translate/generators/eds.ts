// EDS: a ClusterLoadAssignment for every EDS cluster the proxy's CDS holds, subsets filtered by their DestinationRule labels.
import { CLUSTER_LOAD_ASSIGNMENT } from '../../../xds/type-urls.js';
import { parseClusterName } from '../../model/cluster-name.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { PushContext } from '../../model/push-context.js';
import { buildClusterLoadAssignment } from '../endpoint/index.js';
import { proxyClusters } from './cds.js';
import { clusterTrafficPolicy, endpointsMtlsEnabled } from '../cluster/index.js';
import { proxyInputs } from './proxy-inputs.js';
import { identity, labelsKey, sharedBuild } from './shared-build.js';

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
        out.push({ name, resource: sharedBuild(push, `eds-empty|${name}`, () => buildClusterLoadAssignment(name, [])) });
        continue;
      }
      const rule = push.destinationRule(proxy, service);
      const subsetLabels = parsed.subset ? push.subsetLabels(proxy, service, parsed.subset) : undefined;
      // Istio's mtlsChecker: a DestinationRule TLS mode other than ISTIO_MUTUAL means no auto-mTLS to these endpoints.
      const mtlsEnabled = endpointsMtlsEnabled(clusterTrafficPolicy(rule, parsed.port, parsed.subset || undefined));
      // Istio keys EDS by cluster name, DestinationRule and endpoint version; here by what the rule decides (subset
      // labels, mTLS), so proxies whose different rules agree share too. The proxy's locality is not in the key because
      // the assignment does not depend on it yet (no locality-aware priorities): it must join the key when it does.
      const key = `eds|${name}|${identity(service)}|${labelsKey(subsetLabels)}|${mtlsEnabled}`;
      const assignment = sharedBuild(push, key, () =>
        buildClusterLoadAssignment(name, push.instances(service, parsed.port), {
          ...(subsetLabels ? { subsetLabels } : {}),
          mtlsEnabled,
          // PeerAuthentication is snapshot-wide, so it needs no place in the key.
          endpointMtlsMode: (i) => push.mtlsModeForPort(i.source.namespace, i.labels, i.port),
        }));
      out.push({ name, resource: assignment });
    }
    return out;
  },
};
