// The clusters every sidecar has whatever the config: BlackHoleCluster, PassthroughCluster, InboundPassthroughClusterIpv4.
import { packAny } from '../../../xds/codec.js';
import { BLACKHOLE_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER } from '../../model/cluster-name.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import { DEFAULT_MESH_CONFIG } from '../../model/mesh-config.js';
import { durationFromMs } from '../common/protobuf-values.js';
import { HTTP_PROTOCOL_OPTIONS_TYPE, type Cluster } from './cluster-wrapper.js';
import { defaultCircuitBreakerThresholds } from './connection-pool.js';

/** Istio's source address for inbound passthrough: iptables skips traffic from it, so it is not captured again. */
export const INBOUND_PASSTHROUGH_BIND_IPV4 = '127.0.0.6';

/** Passthrough idle timeout (Istio: 5 minutes) and protocol: whatever the downstream spoke. */
const PASSTHROUGH_IDLE_TIMEOUT_MS = 5 * 60_000;

/** A STATIC cluster with no endpoints: routes to unknown destinations (REGISTRY_ONLY) fail fast with 503. */
export function buildBlackHoleCluster(mesh: MeshConfig = DEFAULT_MESH_CONFIG): Cluster {
  return {
    name: BLACKHOLE_CLUSTER,
    type: 'STATIC',
    connect_timeout: durationFromMs(mesh.connectTimeoutMs),
    lb_policy: 'ROUND_ROBIN',
    alt_stat_name: `${BLACKHOLE_CLUSTER};`,
  };
}

/**
 * ORIGINAL_DST to wherever the connection was going (ALLOW_ANY outbound traffic), with the default circuit breakers.
 * `byAuthority` (explicit HTTP_PROXY mode, where the connection went to the proxy itself): the destination is the
 * request's authority (`ip:port`), Envoy's `original_dst_lb_config.use_http_header` on `:authority`.
 */
export function buildPassthroughCluster(mesh: MeshConfig = DEFAULT_MESH_CONFIG, options: { byAuthority?: boolean } = {}): Cluster {
  return {
    name: PASSTHROUGH_CLUSTER,
    type: 'ORIGINAL_DST',
    connect_timeout: durationFromMs(mesh.connectTimeoutMs),
    lb_policy: 'CLUSTER_PROVIDED',
    ...(options.byAuthority ? { original_dst_lb_config: { use_http_header: true, http_header_name: ':authority' } } : {}),
    alt_stat_name: `${PASSTHROUGH_CLUSTER};`,
    circuit_breakers: { thresholds: [defaultCircuitBreakerThresholds()] },
    typed_extension_protocol_options: {
      [HTTP_PROTOCOL_OPTIONS_TYPE]: packAny(HTTP_PROTOCOL_OPTIONS_TYPE, {
        common_http_protocol_options: { idle_timeout: durationFromMs(PASSTHROUGH_IDLE_TIMEOUT_MS) },
        use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
      }),
    },
  };
}

/** The passthrough cluster for inbound ports no service declares, bound to 127.0.0.6 so the traffic is not captured again. */
export function buildInboundPassthroughCluster(mesh: MeshConfig = DEFAULT_MESH_CONFIG): Cluster {
  return {
    ...buildPassthroughCluster(mesh),
    name: INBOUND_PASSTHROUGH_CLUSTER,
    alt_stat_name: `${INBOUND_PASSTHROUGH_CLUSTER};`,
    upstream_bind_config: { source_address: { address: INBOUND_PASSTHROUGH_BIND_IPV4, port_value: 0 } },
  };
}
