// CDS: per service port and subset of the proxy's scope (DestinationRule applied), its inbound clusters, and Istio's fixed clusters.
import { CLUSTER } from '../../../xds/type-urls.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import {
  buildBlackHoleCluster, buildInboundClusters, buildInboundPassthroughCluster, buildOutboundClusters, buildPassthroughCluster, type Cluster,
} from '../cluster/index.js';
import { memoize, proxyInputs } from './proxy-inputs.js';

const clusterMemo = new WeakMap<PushContext, WeakMap<Proxy, readonly Cluster[]>>();

/** The clusters of `proxy` (memoized per snapshot, so EDS can follow exactly what CDS sent). */
export function proxyClusters(proxy: Proxy, push: PushContext): readonly Cluster[] {
  return memoize(clusterMemo, proxy, push, () => {
    const inputs = proxyInputs(proxy, push);
    const out: Cluster[] = [];
    for (const service of inputs.outboundServices) {
      out.push(...buildOutboundClusters(service, push.destinationRule(proxy, service), inputs.clusterContext));
    }
    out.push(buildBlackHoleCluster(push.mesh));
    if (proxy.type === 'sidecar') {
      out.push(buildPassthroughCluster(push.mesh));
      out.push(...buildInboundClusters(proxy, inputs.inboundInstances, push.mesh));
      out.push(buildInboundPassthroughCluster(push.mesh));
    }
    return out;
  });
}

export const cdsGenerator: XdsGenerator<PushContext> = {
  typeUrl: CLUSTER,
  generate(proxy, push): readonly GeneratedResource[] {
    return proxyClusters(proxy, push).map((c) => ({ name: c.name ?? '', resource: c }));
  },
};
