// A realistic sidecar Cluster as Istio generates it (EDS, circuit breakers, outlier detection, mTLS transport socket).
import type { envoy } from '../src/xds/generated/types.js';
import { packAny } from '../src/xds/codec.js';

type Cluster = envoy.config.cluster.v3.Cluster;

const TLS_CONTEXT = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

export function istioLikeCluster(i: number): Cluster {
  const host = `svc-${i}.ns-${i % 50}.svc.cluster.local`;
  return {
    name: `outbound|9080||${host}`,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, initial_fetch_timeout: { seconds: 0 }, resource_api_version: 'V3' }, service_name: `outbound|9080||${host}` },
    connect_timeout: { seconds: 10 },
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: {
      thresholds: [{ max_connections: { value: 4294967295 }, max_pending_requests: { value: 4294967295 }, max_requests: { value: 4294967295 }, max_retries: { value: 4294967295 }, track_remaining: true }],
    },
    outlier_detection: { consecutive_5xx: { value: 5 }, interval: { seconds: 10 }, base_ejection_time: { seconds: 30 }, max_ejection_percent: { value: 10 } },
    common_lb_config: { locality_weighted_lb_config: {} },
    metadata: { filter_metadata: { istio: { fields: { services: { list_value: { values: [{ struct_value: { fields: { host: { string_value: host }, name: { string_value: `svc-${i}` }, namespace: { string_value: `ns-${i % 50}` } } } }] } } } } } },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: packAny(TLS_CONTEXT, {
        common_tls_context: {
          alpn_protocols: ['istio-peer-exchange', 'istio'],
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }],
          combined_validation_context: {
            default_validation_context: { match_subject_alt_names: [{ exact: `spiffe://cluster.local/ns/ns-${i % 50}/sa/svc-${i}` }] },
            validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' } },
          },
        },
        sni: `outbound_.9080_._.${host}`,
      }),
    },
  };
}
