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
import { effectiveLocalityLbSetting, type LocalityLbInput } from '../endpoint/locality-lb.js';
import type { Proxy } from '../../model/proxy.js';
import type { LocalityLoadBalancerSetting } from '../../../api/index.js';
import type { ResolvedTrafficPolicy } from '../cluster/traffic-policy.js';

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
      const policy = clusterTrafficPolicy(rule, parsed.port, parsed.subset || undefined);
      // Istio's mtlsChecker: a DestinationRule TLS mode other than ISTIO_MUTUAL means no auto-mTLS to these endpoints.
      const mtlsEnabled = endpointsMtlsEnabled(policy);
      const localityLb = localityLbFor(proxy, push, policy);
      // Istio keys EDS by cluster name, DestinationRule and endpoint version; here by what the rule decides (subset
      // labels, mTLS, locality load balancing), so proxies whose different rules agree share too. Only a locality
      // setting that changes the assignment makes it depend on the proxy (its locality, and its labels for
      // failoverPriority); every other proxy shares one assignment per cluster.
      const key = `eds|${name}|${identity(service)}|${labelsKey(subsetLabels)}|${mtlsEnabled}|${localityLb ? localityLbKey(localityLb) : ''}`;
      const assignment = sharedBuild(push, key, () =>
        buildClusterLoadAssignment(name, push.instances(service, parsed.port), {
          ...(subsetLabels ? { subsetLabels } : {}),
          mtlsEnabled,
          // PeerAuthentication is snapshot-wide, so it needs no place in the key.
          endpointMtlsMode: (i) => push.mtlsModeForPort(i.source.namespace, i.labels, i.port),
          ...(localityLb ? { localityLb } : {}),
        }));
      out.push({ name, resource: assignment });
    }
    return out;
  },
};

/**
 * Istio's endpoint builder: the effective localityLbSetting (DestinationRule over mesh) for this cluster's traffic
 * policy, with failover enabled only where the policy sets outlierDetection. Undefined when it would change nothing
 * (no setting; or no distribute and no outlier detection), so such proxies keep sharing one assignment.
 */
function localityLbFor(proxy: Proxy, push: PushContext, policy: ResolvedTrafficPolicy | undefined): LocalityLbInput | undefined {
  const setting = effectiveLocalityLbSetting(push.mesh.localityLbSetting, policy?.loadBalancer?.localityLbSetting);
  if (!setting) return undefined;
  const enableFailover = policy?.outlierDetection !== undefined;
  if (!enableFailover && !(setting.distribute && setting.distribute.length > 0)) return undefined;
  return { proxyLocality: proxy.locality, proxyLabels: proxy.labels, setting, enableFailover };
}

function localityLbKey(input: LocalityLbInput): string {
  const l = input.proxyLocality;
  // Labels matter only to failoverPriority (with failover enabled), so only then do they split the cache.
  const labels = input.enableFailover && input.setting.failoverPriority?.length ? labelsKey(input.proxyLabels) : '';
  return `${JSON.stringify([l.region, l.zone, l.subzone, labels, input.enableFailover])}|${settingKey(input.setting)}`;
}

/**
 * A localityLbSetting's JSON, made once per setting object: each is a DestinationRule's (or the mesh's) and never
 * changes (an edit makes a new resource), while every proxy calling its clusters needs the key. By value, so rules
 * that agree still share.
 */
const settingKeys = new WeakMap<LocalityLoadBalancerSetting, string>();
function settingKey(setting: LocalityLoadBalancerSetting): string {
  let key = settingKeys.get(setting);
  if (key === undefined) settingKeys.set(setting, (key = JSON.stringify(setting)));
  return key;
}
