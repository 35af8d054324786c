// CDS for a sidecar's outbound side: one cluster per service port and one per DestinationRule subset (Istio's buildOutboundClusters).
import type { DestinationRule, Subset, TrafficPolicy } from '../../../api/index.js';
import { clusterName, clusterSni } from '../../model/cluster-name.js';
import type { Service, ServiceInstance, ServicePort } from '../../model/service.js';
import { buildLocalityLbEndpoints } from '../endpoint/load-assignment.js';
import { applyTrafficPolicy, buildCluster, maybeApplyEdsConfig, type DiscoveryType } from './build-cluster.js';
import { finishCluster, istioMetadata, type Cluster, type ClusterWrapper } from './cluster-wrapper.js';
import type { ClusterBuildContext, MutualTlsMode } from './context.js';
import { endpointsMtlsEnabled, mergeSubsetTrafficPolicy, portLevelTrafficPolicy, type ResolvedTrafficPolicy } from './traffic-policy.js';

/**
 * The outbound clusters of `service` for the proxy in `context`: `outbound|<port>||<host>` per port (UDP ports have
 * none) and `outbound|<port>|<subset>|<host>` per subset of `rule`, in port order then subset order. A STATIC or DNS
 * cluster without endpoints is left out, as Istio does.
 */
export function buildOutboundClusters(service: Service, rule: DestinationRule | undefined, context: ClusterBuildContext): Cluster[] {
  const out: Cluster[] = [];
  const spec = rule?.spec;
  const isDrWithSelector = spec?.workloadSelector !== undefined;
  for (const port of service.ports) {
    if (port.protocol.toUpperCase() === 'UDP') continue;
    const instances = context.instances?.(service, port) ?? [];
    const serviceAccounts = serviceAccountsOf(service, instances, context);
    const name = clusterName('outbound', port.number, '', service.hostname);
    const type = discoveryType(service, instances, context);
    const { policy } = portLevelTrafficPolicy(spec?.trafficPolicy, port.number);
    const endpoints = isInline(type) ? buildLocalityLbEndpoints(inlineInstances(type, instances), { allowHostnames: true, mtlsEnabled: endpointsMtlsEnabled(policy), ...endpointMode(context) }) : [];
    const wrapper = buildCluster(name, type, endpoints, port, [service], context);
    if (!wrapper) continue;

    applyTrafficPolicy(wrapper, {
      policy,
      port,
      direction: 'outbound',
      context,
      sni: clusterSni(port.number, '', service.hostname),
      serviceAccounts,
      meshExternal: service.location === 'MESH_EXTERNAL',
      serviceMtlsMode: inferServiceMtlsMode(service, spec?.trafficPolicy, instances, context),
      externalRegistry: service.source.registry === 'ServiceEntry',
      isDrWithSelector,
    });
    maybeApplyEdsConfig(wrapper.cluster);
    if (service.location === 'MESH_EXTERNAL') istioMetadata(wrapper)['external'] = true;
    if (rule) {
      istioMetadata(wrapper)['config'] = configPath(rule);
      addAlpnOverride(wrapper, policy);
    }
    out.push(finishCluster(wrapper));

    for (const subset of spec?.subsets ?? []) {
      const cluster = buildSubsetCluster(service, port, rule!, subset, type, instances, serviceAccounts, context);
      if (cluster) out.push(cluster);
    }
  }
  return out;
}

function buildSubsetCluster(
  service: Service,
  port: ServicePort,
  rule: DestinationRule,
  subset: Subset,
  defaultType: DiscoveryType,
  instances: readonly ServiceInstance[],
  serviceAccounts: readonly string[],
  context: ClusterBuildContext,
): Cluster | undefined {
  const name = clusterName('outbound', port.number, subset.name, service.hostname);
  const policy = mergeSubsetTrafficPolicy(rule.spec.trafficPolicy, subset.trafficPolicy, port.number);
  const passthrough = subset.trafficPolicy?.loadBalancer?.simple === 'PASSTHROUGH';
  const type: DiscoveryType = passthrough ? 'ORIGINAL_DST' : defaultType;
  // STATIC and DNS clusters carry their endpoints, so a subset's are filtered by its labels here; EDS filters at EDS time.
  const endpoints = isInline(type)
    ? buildLocalityLbEndpoints(inlineInstances(type, instances), { allowHostnames: true, subsetLabels: subset.labels ?? {}, mtlsEnabled: endpointsMtlsEnabled(policy), ...endpointMode(context) })
    : [];
  const wrapper = buildCluster(name, type, endpoints, port, [service], context);
  if (!wrapper) return undefined;
  applyTrafficPolicy(wrapper, {
    policy,
    port,
    direction: 'outbound',
    context,
    sni: clusterSni(port.number, subset.name, service.hostname),
    serviceAccounts,
    meshExternal: service.location === 'MESH_EXTERNAL',
    serviceMtlsMode: inferServiceMtlsMode(service, subset.trafficPolicy, instances, context),
    externalRegistry: service.source.registry === 'ServiceEntry',
    isDrWithSelector: rule.spec.workloadSelector !== undefined,
  });
  maybeApplyEdsConfig(wrapper.cluster);
  const meta = istioMetadata(wrapper);
  meta['config'] = configPath(rule);
  meta['subset'] = subset.name;
  addAlpnOverride(wrapper, policy);
  return finishCluster(wrapper);
}

/**
 * Istio's convertResolution: STATIC → EDS, DNS → STRICT_DNS, DNS_ROUND_ROBIN → LOGICAL_DNS, NONE → ORIGINAL_DST for
 * sidecars. NONE with known instances uses EDS (Istio does so for Kubernetes headless services), and gateways, which
 * cannot use original destination, always use EDS.
 */
function discoveryType(service: Service, instances: readonly ServiceInstance[], context: ClusterBuildContext): DiscoveryType {
  switch (service.resolution) {
    case 'DNS':
      return 'STRICT_DNS';
    case 'DNS_ROUND_ROBIN':
      return 'LOGICAL_DNS';
    case 'NONE':
      return context.proxy.type === 'router' || instances.length > 0 ? 'EDS' : 'ORIGINAL_DST';
    default:
      return 'EDS';
  }
}

function endpointMode(context: ClusterBuildContext): { endpointMtlsMode?: NonNullable<ClusterBuildContext['endpointMtlsMode']> } {
  return context.endpointMtlsMode ? { endpointMtlsMode: context.endpointMtlsMode } : {};
}

function isInline(type: DiscoveryType): boolean {
  return type === 'STATIC' || type === 'STRICT_DNS' || type === 'LOGICAL_DNS';
}

/** Envoy accepts exactly one host for LOGICAL_DNS; Istio's validation allows one endpoint for DNS_ROUND_ROBIN, so take the first. */
function inlineInstances(type: DiscoveryType, instances: readonly ServiceInstance[]): readonly ServiceInstance[] {
  if (type !== 'LOGICAL_DNS' || instances.length <= 1) return instances;
  const first = [...instances].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port))[0]!;
  return [first];
}

/**
 * Istio's BestEffortInferServiceMTLSMode: UNKNOWN for mesh-external services; for passthrough (resolution NONE or a
 * PASSTHROUGH load balancer) DISABLE unless every instance has a sidecar; DISABLE when no instance has one; then the
 * namespace/mesh PeerAuthentication; PERMISSIVE when none applies.
 */
function inferServiceMtlsMode(
  service: Service,
  policy: TrafficPolicy | ResolvedTrafficPolicy | undefined,
  instances: readonly ServiceInstance[],
  context: ClusterBuildContext,
): MutualTlsMode | 'UNKNOWN' {
  if (service.location === 'MESH_EXTERNAL') return 'UNKNOWN';
  if (service.resolution === 'NONE' || policy?.loadBalancer?.simple === 'PASSTHROUGH') {
    if (instances.length === 0 || instances.some((i) => i.tlsMode !== 'istio')) return 'DISABLE';
  }
  // No endpoint of the port has a sidecar (none known, or all `tlsMode: disabled`): the tlsMode-istio match could never
  // be taken, so the cluster is the same on the wire without it. Leaving it out keeps `default` (over sds-grpc) out of
  // the config of proxies that have no agent SDS cluster (e.g. proxies started without the agent), which
  // would have to refuse it. When the service gains a sidecar endpoint, CDS is pushed again (proxy-dependencies.ts).
  if (instances.every((i) => i.tlsMode !== 'istio')) return 'DISABLE';
  return context.peerAuthenticationMode?.(service.namespace) ?? 'PERMISSIVE';
}

/** The SPIFFE ids to verify: the context's lookup, else the instances' service accounts in the mesh trust domain. */
function serviceAccountsOf(service: Service, instances: readonly ServiceInstance[], context: ClusterBuildContext): string[] {
  if (context.serviceAccounts) return context.serviceAccounts(service.hostname);
  const ids = new Set<string>();
  for (const instance of instances) {
    if (!instance.serviceAccount) continue;
    ids.add(instance.serviceAccount.startsWith('spiffe://')
      ? instance.serviceAccount
      : `spiffe://${context.mesh.trustDomain}/ns/${instance.source.namespace}/sa/${instance.serviceAccount}`);
  }
  return [...ids].sort();
}

/** Istio's AddConfigInfoMetadata path: `/apis/<group>/<version>/namespaces/<ns>/destination-rule/<name>`. */
function configPath(rule: DestinationRule): string {
  return `/apis/${rule.apiVersion}/namespaces/${rule.metadata.namespace}/destination-rule/${rule.metadata.name}`;
}

/** Istio marks clusters with user TLS (SIMPLE/MUTUAL) `alpn_override: "false"` so the sidecar does not replace their ALPN. */
function addAlpnOverride(wrapper: ClusterWrapper, policy: ResolvedTrafficPolicy | undefined): void {
  const mode = policy?.tls?.mode;
  if (mode === 'SIMPLE' || mode === 'MUTUAL') istioMetadata(wrapper)['alpn_override'] = 'false';
}
