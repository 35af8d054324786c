// The parts every Istio cluster shares (Istio's buildCluster and applyTrafficPolicy), used by outbound and inbound builders.
import type { TrafficPolicy } from '../../../api/index.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { Service, ServicePort } from '../../model/service.js';
import { durationFromMs } from '../common/protobuf-values.js';
import { applyConnectionPool, applyH2Upgrade } from './connection-pool.js';
import { istioMetadata, setH2Options, setUseDownstreamProtocol, type Cluster, type ClusterWrapper } from './cluster-wrapper.js';
import type { ClusterBuildContext, MutualTlsMode } from './context.js';
import { applyLoadBalancer, applyLocalityWeightedLbConfig } from './load-balancer.js';
import { effectiveLocalityLbSetting } from '../endpoint/locality-lb.js';
import { applyOutlierDetection } from './outlier-detection.js';
import { isHttp2Protocol, isUnsupportedProtocol } from './protocol.js';
import type { ResolvedTrafficPolicy } from './traffic-policy.js';
import { applyUpstreamTls } from './upstream-tls.js';

export type DiscoveryType = 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';
type LocalityLbEndpoints = envoy.config.endpoint.v3.LocalityLbEndpoints;

/** Istio's default DNS refresh rate for DNS clusters (MeshConfig dnsRefreshRate). */
const DEFAULT_DNS_REFRESH_MS = 60_000;

/**
 * A cluster with Istio's common settings: alt_stat_name `<name>;`, empty common_lb_config, DNS options, the inline
 * load_assignment of STATIC and DNS clusters (undefined when such a cluster has no endpoints: Istio drops it),
 * the upstream protocol of the port, and `istio.services` metadata. Circuit breakers and connect timeout come with the
 * traffic policy (an empty connection pool gives Istio's defaults).
 */
export function buildCluster(
  name: string,
  type: DiscoveryType,
  endpoints: readonly LocalityLbEndpoints[],
  port: ServicePort,
  services: readonly Service[],
  context: ClusterBuildContext,
): ClusterWrapper | undefined {
  const cluster: Cluster = { name, type, alt_stat_name: `${name};`, common_lb_config: {} };
  if (type === 'STRICT_DNS' || type === 'LOGICAL_DNS') {
    cluster.dns_lookup_family = dnsLookupFamily(context.proxy.ipAddresses);
    cluster.dns_refresh_rate = durationFromMs(context.mesh.dnsRefreshRateMs ?? DEFAULT_DNS_REFRESH_MS);
    cluster.respect_dns_ttl = true;
  }
  if (type === 'STATIC' || type === 'STRICT_DNS' || type === 'LOGICAL_DNS') {
    if (endpoints.length === 0) return undefined;
    cluster.load_assignment = { cluster_name: name, endpoints: [...endpoints] };
  }
  const wrapper: ClusterWrapper = { cluster };
  if (isHttp2Protocol(port.protocol)) setH2Options(wrapper);
  else if (context.proxy.type === 'sidecar' && isUnsupportedProtocol(port.protocol)) setUseDownstreamProtocol(wrapper);
  if (services.length > 0) istioMetadata(wrapper)['services'] = uniqueByHost(services).map(serviceMetadata);
  return wrapper;
}

export interface TrafficPolicyInput {
  policy: ResolvedTrafficPolicy | TrafficPolicy | undefined;
  port: ServicePort;
  direction: 'outbound' | 'inbound';
  context: ClusterBuildContext;
  /** Outbound only: the TLS inputs. */
  sni?: string;
  serviceAccounts?: readonly string[];
  meshExternal?: boolean;
  serviceMtlsMode?: MutualTlsMode | 'UNKNOWN';
  externalRegistry?: boolean;
  isDrWithSelector?: boolean;
}

/** Istio's applyTrafficPolicy: connection pool for every cluster; H2 upgrade, outlier detection, load balancer and TLS for outbound. */
export function applyTrafficPolicy(wrapper: ClusterWrapper, input: TrafficPolicyInput): void {
  const policy = input.policy;
  const connectionPool = policy?.connectionPool ?? {};
  const sendUnhealthy = input.context.mesh.sendUnhealthyEndpoints ?? false;
  applyConnectionPool(wrapper, connectionPool, input.context);
  if (input.direction === 'outbound') {
    applyH2Upgrade(wrapper, input.port, connectionPool, input.context);
    applyOutlierDetection(wrapper.cluster, policy?.outlierDetection, sendUnhealthy);
    applyLoadBalancer(wrapper.cluster, policy?.loadBalancer, sendUnhealthy);
    applyLocalityWeightedLbConfig(wrapper.cluster, effectiveLocalityLbSetting(input.context.mesh.localityLbSetting, policy?.loadBalancer?.localityLbSetting));
    applyUpstreamTls(wrapper, {
      tls: policy?.tls,
      serviceAccounts: input.serviceAccounts ?? [],
      sni: input.sni ?? '',
      autoMtlsEnabled: input.context.mesh.enableAutoMtls,
      meshExternal: input.meshExternal ?? false,
      serviceMtlsMode: input.serviceMtlsMode ?? 'PERMISSIVE',
      externalRegistry: input.externalRegistry ?? false,
      isSidecar: input.context.proxy.type === 'sidecar',
      isDrWithSelector: input.isDrWithSelector ?? false,
    });
  }
  if (wrapper.cluster.type === 'ORIGINAL_DST') wrapper.cluster.lb_policy = 'CLUSTER_PROVIDED';
}

/** EDS clusters fetch their endpoints over ADS under their own name (Istio's maybeApplyEdsConfig, after the policy may have changed the type). */
export function maybeApplyEdsConfig(cluster: Cluster): void {
  if (cluster.type !== 'EDS') return;
  cluster.eds_cluster_config = {
    service_name: cluster.name ?? '',
    eds_config: { ads: {}, initial_fetch_timeout: { seconds: 0, nanos: 0 }, resource_api_version: 'V3' },
  };
}

/**
 * Istio's `istio.services` entry: host, name and namespace. ServiceEntry services are named by their host (as in
 * Istio's ServiceEntry registry); Kubernetes services by the first label of `name.namespace.svc.<domain>`.
 */
function serviceMetadata(service: Service): Record<string, string> {
  const kube = service.source.registry === 'kube' && service.hostname.includes('.svc.');
  const name = kube ? service.hostname.slice(0, service.hostname.indexOf('.')) : service.hostname;
  return { host: service.hostname, name, namespace: service.namespace };
}

function uniqueByHost(services: readonly Service[]): Service[] {
  const seen = new Set<string>();
  return services.filter((s) => !seen.has(s.hostname) && seen.add(s.hostname));
}

/** Istio: V4_ONLY when every proxy IP is IPv4 (and for dual stack, which Istio only resolves both ways when enabled), V6_ONLY when all are IPv6. */
export function dnsLookupFamily(ips: readonly string[]): 'V4_ONLY' | 'V6_ONLY' {
  return ips.length > 0 && ips.every((ip) => ip.includes(':')) ? 'V6_ONLY' : 'V4_ONLY';
}
