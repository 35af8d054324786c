// DestinationRule loadBalancer → lb_policy and its config (Istio's applyLoadBalancer and ApplyRingHashLoadBalancer).
import type { LoadBalancerSettings, LocalityLoadBalancerSetting } from '../../../api/index.js';
import { durationFromText, uint32 } from '../common/protobuf-values.js';
import type { Cluster } from './cluster-wrapper.js';

/** Envoy's default ring size when neither ringHash.minimumRingSize nor the deprecated minimumRingSize is given. */
const DEFAULT_MINIMUM_RING_SIZE = 1024;

/**
 * ROUND_ROBIN / LEAST_REQUEST (and deprecated LEAST_CONN) / RANDOM as named, PASSTHROUGH turns the cluster into
 * ORIGINAL_DST, nothing set means LEAST_REQUEST (Istio's default since 1.14). A consistentHash overrides the simple
 * policy: MAGLEV or RING_HASH. ORIGINAL_DST clusters always use CLUSTER_PROVIDED. localityLbSetting shapes EDS per proxy
 * (endpoint/locality-lb.ts); here it only turns on locality weights (applyLocalityWeightedLbConfig).
 */
export function applyLoadBalancer(cluster: Cluster, lb: LoadBalancerSettings | undefined, sendUnhealthyEndpoints: boolean): void {
  if (sendUnhealthyEndpoints) cluster.common_lb_config = { ...(cluster.common_lb_config ?? {}), healthy_panic_threshold: { value: 0 } };
  if (cluster.type === 'ORIGINAL_DST') {
    cluster.lb_policy = 'CLUSTER_PROVIDED';
    return;
  }
  const slowStart = durationFromText(lb?.warmupDurationSecs);
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      cluster.lb_policy = 'ROUND_ROBIN';
      if (slowStart) cluster.round_robin_lb_config = { slow_start_config: { slow_start_window: slowStart } };
      break;
    case 'RANDOM':
      cluster.lb_policy = 'RANDOM';
      break;
    case 'PASSTHROUGH':
      cluster.lb_policy = 'CLUSTER_PROVIDED';
      cluster.type = 'ORIGINAL_DST';
      delete cluster.load_assignment;
      break;
    default:
      // LEAST_REQUEST, LEAST_CONN, UNSPECIFIED, or nothing.
      cluster.lb_policy = 'LEAST_REQUEST';
      if (slowStart) cluster.least_request_lb_config = { slow_start_config: { slow_start_window: slowStart } };
  }
  applyConsistentHash(cluster, lb);
}

function applyConsistentHash(cluster: Cluster, lb: LoadBalancerSettings | undefined): void {
  const hash = lb?.consistentHash;
  if (!hash) return;
  // A consistent hash replaces whatever per-policy config the simple policy set (Envoy's lb_config oneof).
  delete cluster.round_robin_lb_config;
  delete cluster.least_request_lb_config;
  if (hash.maglev) {
    cluster.lb_policy = 'MAGLEV';
    if (hash.maglev.tableSize) cluster.maglev_lb_config = { table_size: uint32(hash.maglev.tableSize) };
  } else if (hash.ringHash) {
    cluster.lb_policy = 'RING_HASH';
    if (hash.ringHash.minimumRingSize) cluster.ring_hash_lb_config = { minimum_ring_size: uint32(hash.ringHash.minimumRingSize) };
  } else {
    cluster.lb_policy = 'RING_HASH';
    cluster.ring_hash_lb_config = { minimum_ring_size: uint32(hash.minimumRingSize || DEFAULT_MINIMUM_RING_SIZE) };
  }
}

/**
 * Istio's cluster side of localityLbSetting: with `distribute`, the locality weights EDS sends must count, which in
 * Envoy takes `common_lb_config.locality_weighted_lb_config`. Priorities (failover) need nothing on the cluster. Left
 * off otherwise, as in Istio: locality weights would override the policy's own choice (least request, say).
 */
export function applyLocalityWeightedLbConfig(cluster: Cluster, setting: LocalityLoadBalancerSetting | undefined): void {
  if (cluster.type === 'ORIGINAL_DST' || !setting?.distribute || setting.distribute.length === 0) return;
  cluster.common_lb_config = { ...(cluster.common_lb_config ?? {}), locality_weighted_lb_config: {} };
}
