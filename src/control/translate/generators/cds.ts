// CDS: per service port and subset of the proxy's scope (DestinationRule applied), its inbound clusters, and Istio's fixed clusters.
import { CLUSTER } from '../../../xds/type-urls.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import {
  buildBlackHoleCluster, buildInboundClusters, buildInboundPassthroughCluster, buildOutboundClusters, buildPassthroughCluster, dnsLookupFamily, type Cluster,
} from '../cluster/index.js';
import { buildJwksClusters } from '../security/jwks-cluster.js';
import { memoize, proxyInputs } from './proxy-inputs.js';
import { identity, sharedBuild } from './shared-build.js';

const clusterMemo = new WeakMap<PushContext, WeakMap<Proxy, readonly Cluster[]>>();

/** The clusters of `proxy` (memoized per snapshot, so EDS can follow exactly what CDS sent). */
export function proxyClusters(proxy: Proxy, push: PushContext): readonly Cluster[] {
  return memoize(clusterMemo, proxy, push, () => {
    const inputs = proxyInputs(proxy, push);
    const out: Cluster[] = [];
    // Istio's clusterCache key: what buildOutboundClusters reads besides the snapshot-wide mesh, instances and
    // PeerAuthentication modes — the service, the DestinationRule this proxy gets for it (its namespace and, for
    // workloadSelector rules, its labels chose it), the proxy type and the DNS lookup family of its IPs.
    const proxyPart = `${proxy.type}|${dnsLookupFamily(proxy.ipAddresses)}`;
    for (const service of inputs.outboundServices) {
      const rule = push.destinationRule(proxy, service);
      const key = `cds|${identity(service)}|${identity(rule)}|${proxyPart}`;
      out.push(...sharedBuild(push, key, () => buildOutboundClusters(service, rule, inputs.clusterContext)));
    }
    out.push(sharedBuild(push, 'cds|BlackHoleCluster', () => buildBlackHoleCluster(push.mesh)));
    if (proxy.type === 'sidecar') {
      // Explicit mode: the connection's original destination is the proxy's own listener, so passthrough follows the Host.
      out.push(inputs.explicitPort !== undefined
        ? sharedBuild(push, 'cds|PassthroughCluster|explicit', () => buildPassthroughCluster(push.mesh, { byAuthority: true }))
        : sharedBuild(push, 'cds|PassthroughCluster', () => buildPassthroughCluster(push.mesh)));
      out.push(...buildInboundClusters(proxy, inputs.inboundInstances, push.mesh, inputs.localInboundPorts));
      out.push(sharedBuild(push, 'cds|InboundPassthroughCluster', () => buildInboundPassthroughCluster(push.mesh)));
    }
    // RequestAuthentication jwksUri hosts no service of the scope covers: jwt_authn fetches keys through these
    // (endpoints inline, so EDS has nothing to follow).
    out.push(...buildJwksClusters(push, proxy, new Set(out.map((c) => c.name ?? ''))));
    return out;
  });
}

export const cdsGenerator: XdsGenerator<PushContext> = {
  typeUrl: CLUSTER,
  generate(proxy, push): readonly GeneratedResource[] {
    return proxyClusters(proxy, push).map((c) => ({ name: c.name ?? '', resource: c }));
  },
};
