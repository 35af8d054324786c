// EDS: a ClusterLoadAssignment from service instances, grouped by locality the way istiod's EndpointBuilder does it.
import { isIP } from 'node:net';
import { parseClusterName } from '../../model/cluster-name.js';
import type { Locality, ServiceInstance } from '../../model/service.js';
import type { envoy } from '../../../xds/generated/types.js';
import { buildAddress } from '../common/address.js';
import { MAX_UINT32, toStruct, uint32, type Struct } from '../common/protobuf-values.js';
import { applyLocalityLoadBalancer, localityLbEndpoints, type LocalityLbInput } from './locality-lb.js';

export type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
export type LocalityLbEndpoints = envoy.config.endpoint.v3.LocalityLbEndpoints;
export type LbEndpoint = envoy.config.endpoint.v3.LbEndpoint;

/** Istio's label names for an endpoint's canonical service and the metadata keys its sidecars read. */
const CANONICAL_NAME_LABELS = ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app'];
const CANONICAL_REVISION_LABELS = ['service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version'];
export const TRANSPORT_SOCKET_MATCH_KEY = 'envoy.transport_socket_match';
export const ISTIO_METADATA_KEY = 'istio';

export interface LoadAssignmentOptions {
  /** Subset labels (DestinationRule `subsets[].labels`): only instances carrying all of them are kept. */
  subsetLabels?: Readonly<Record<string, string>>;
  /**
   * Locality-aware load balancing for the requesting proxy (its locality and labels, the effective
   * `localityLbSetting`, whether outlier detection enables failover): priorities or `distribute` weights, so the
   * assignment depends on the proxy. Absent: every locality at priority 0, weighted by its endpoints.
   */
  localityLb?: LocalityLbInput;
  /** Istio's PILOT_SEND_UNHEALTHY_ENDPOINTS (default false): send UNHEALTHY endpoints instead of dropping them. */
  sendUnhealthyEndpoints?: boolean;
  /** Keep DRAINING endpoints (Istio does for services with persistent sessions); dropped by default like Istio. */
  includeDraining?: boolean;
  /**
   * Whether mTLS to these endpoints is possible (Istio's mtlsChecker): false when the DestinationRule sets a TLS mode
   * other than ISTIO_MUTUAL or PeerAuthentication disables mTLS. When false no `tlsMode: istio` metadata is sent, so
   * auto-mTLS clusters talk plaintext. Default true.
   */
  mtlsEnabled?: boolean;
  /**
   * The mTLS mode the endpoint's own workload accepts on its port (its PeerAuthentication: workload, port-level,
   * namespace, mesh). DISABLE means no `tlsMode: istio` metadata, so auto mTLS talks plaintext to it (Istio's
   * mtlsChecker). Absent: PeerAuthentication is not consulted.
   */
  endpointMtlsMode?: (instance: ServiceInstance) => 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  /** Istio's cluster id in the compressed `istio.workload` metadata; empty by default (single cluster). */
  clusterId?: string;
}

interface BuildOptions extends LoadAssignmentOptions {
  /** CDS for DNS clusters keeps host names as addresses; EDS drops any address that is not an IP (like istiod). */
  allowHostnames?: boolean;
}

/**
 * The ClusterLoadAssignment EDS sends for `clusterName`. When the name is an Istio outbound cluster name, only the
 * instances of that host and service port are used. Localities are sorted by `region/zone/subzone`, endpoints by
 * address and port, so the same input always encodes to the same bytes (stable versions).
 */
export function buildClusterLoadAssignment(clusterName: string, instances: readonly ServiceInstance[], options: LoadAssignmentOptions = {}): ClusterLoadAssignment {
  const parsed = parseClusterName(clusterName);
  const own = parsed && parsed.direction === 'outbound'
    ? instances.filter((i) => i.servicePort.number === parsed.port && i.hostname === parsed.hostname)
    : instances;
  const endpoints = buildLocalityLbEndpoints(own, options);
  return endpoints.length === 0 ? { cluster_name: clusterName } : { cluster_name: clusterName, endpoints };
}

/** Endpoints grouped by locality, each locality weighted by the sum of its endpoints' weights. */
export function buildLocalityLbEndpoints(instances: readonly ServiceInstance[], options: BuildOptions = {}): LocalityLbEndpoints[] {
  const byLocality = new Map<string, { locality: Locality; endpoints: { instance: ServiceInstance; lb: LbEndpoint }[] }>();
  for (const instance of instances) {
    if (!keep(instance, options)) continue;
    const label = localityLabel(instance.locality);
    let group = byLocality.get(label);
    if (!group) {
      group = { locality: instance.locality, endpoints: [] };
      byLocality.set(label, group);
    }
    group.endpoints.push({ instance, lb: lbEndpoint(instance, options) });
  }
  const groups = [...byLocality.keys()].sort().map((label) => {
    const group = byLocality.get(label)!;
    group.endpoints.sort((a, b) => compareInstances(a.instance, b.instance));
    return { locality: group.locality, endpoints: group.endpoints.map(({ instance, lb }) => ({ labels: instance.labels, lb, weight: endpointWeight(instance) })) };
  });
  return options.localityLb ? applyLocalityLoadBalancer(groups, options.localityLb) : groups.map(localityLbEndpoints);
}

/** Istio's locality label `region/zone/subzone`. */
export function localityLabel(locality: Locality): string {
  return `${locality.region}/${locality.zone}/${locality.subzone}`;
}

function keep(instance: ServiceInstance, options: BuildOptions): boolean {
  const subset = options.subsetLabels;
  if (subset) {
    for (const [key, value] of Object.entries(subset)) if (instance.labels[key] !== value) return false;
  }
  if (instance.healthStatus === 'UNHEALTHY' && !options.sendUnhealthyEndpoints) return false;
  if (instance.healthStatus === 'DRAINING' && !options.includeDraining) return false;
  if (!instance.address) return false;
  // Like istiod's EDS: a DNS name cannot be an EDS endpoint; unix sockets (port 0) can.
  const unix = instance.address.startsWith('unix://');
  if (!options.allowHostnames && !unix && isIP(instance.address) === 0) return false;
  return true;
}

function endpointWeight(instance: ServiceInstance): number {
  return instance.weight > 0 ? Math.min(instance.weight, MAX_UINT32) : 1;
}

function lbEndpoint(instance: ServiceInstance, options: BuildOptions): LbEndpoint {
  const out: LbEndpoint = {
    endpoint: { address: buildAddress(instance.address, instance.port) },
    load_balancing_weight: uint32(endpointWeight(instance)),
    metadata: endpointMetadata(instance, options),
  };
  if (instance.healthStatus !== 'UNKNOWN') out.health_status = instance.healthStatus;
  return out;
}

/**
 * Istio's AppendLbEndpointMetadata: `envoy.transport_socket_match: {tlsMode: istio}` for endpoints with a sidecar whose
 * PeerAuthentication does not disable mTLS on that port (the auto-mTLS transport socket match keys on it), and `istio.workload`, the compressed telemetry string
 * `workload;namespace;canonical-service;canonical-revision;cluster`.
 */
function endpointMetadata(instance: ServiceInstance, options: BuildOptions): envoy.config.core.v3.Metadata {
  const filter: Record<string, Struct> = {};
  if (instance.tlsMode === 'istio' && options.mtlsEnabled !== false && options.endpointMtlsMode?.(instance) !== 'DISABLE') {
    filter[TRANSPORT_SOCKET_MATCH_KEY] = toStruct({ tlsMode: 'istio' });
  }
  const workloadName = instance.source.name;
  const canonicalName = firstLabel(instance.labels, CANONICAL_NAME_LABELS) ?? workloadName;
  let revision = firstLabel(instance.labels, CANONICAL_REVISION_LABELS) ?? 'latest';
  if (revision === 'latest') revision = '';
  const workload = [workloadName, instance.source.namespace, canonicalName, revision, options.clusterId ?? ''].join(';');
  filter[ISTIO_METADATA_KEY] = toStruct({ workload });
  return { filter_metadata: filter };
}

function firstLabel(labels: Readonly<Record<string, string>>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = labels[name];
    if (value) return value;
  }
  return undefined;
}


function compareInstances(a: ServiceInstance, b: ServiceInstance): number {
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  return a.port - b.port;
}
