// The SDS secrets a listener or cluster references (DownstreamTlsContext / UpstreamTlsContext), and the config source each comes from: static, ADS, or an SDS server behind a static cluster.
import { durationMs } from '../common/duration.js';
import { unpackAny, type Any } from '../xds/codec.js';
import type { envoy } from '../xds/generated/types.js';

type ConfigSource = envoy.config.core.v3.ConfigSource;
type SdsSecretConfig = envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
type CommonTlsContext = envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
type TransportSocket = envoy.config.core.v3.TransportSocket;

const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/**
 * Where a secret comes from. `static`: no sds_config, the bootstrap's static_resources.secrets. `ads`: `sds_config: { ads: {} }`.
 * `grpc`: `sds_config.api_config_source` (GRPC or DELTA_GRPC) naming a static cluster, as Istio's `sds-grpc`.
 */
export type SecretSource = { readonly kind: 'static' } | { readonly kind: 'ads' } | { readonly kind: 'grpc'; readonly clusterName: string; readonly mode: 'sotw' | 'delta' };

export interface SecretReference {
  readonly name: string;
  readonly source: SecretSource;
  /** sds_config.initial_fetch_timeout in ms when set; 0 means wait without limit (Istio sets it for default/ROOTCA). */
  readonly initialFetchTimeoutMs?: number;
}

/** A key that is equal for equal sources: `static`, `ads`, `grpc:<cluster>`. */
export function sourceKey(source: SecretSource): string {
  return source.kind === 'grpc' ? `grpc:${source.clusterName}` : source.kind;
}

/** The secrets of a listener's filter chains; bad config sources are pushed to `problems` with their field path. */
export function listenerSecretReferences(listener: envoy.config.listener.v3.Listener, problems: string[]): SecretReference[] {
  const refs: SecretReference[] = [];
  (listener.filter_chains ?? []).forEach((chain, i) => transportSocketReferences(chain.transport_socket, `filter_chains[${i}].transport_socket`, DOWNSTREAM_TLS, refs, problems));
  if (listener.default_filter_chain) transportSocketReferences(listener.default_filter_chain.transport_socket, 'default_filter_chain.transport_socket', DOWNSTREAM_TLS, refs, problems);
  return refs;
}

/** The secrets of a cluster's transport sockets (transport_socket and transport_socket_matches). */
export function clusterSecretReferences(cluster: envoy.config.cluster.v3.Cluster, problems: string[]): SecretReference[] {
  const refs: SecretReference[] = [];
  transportSocketReferences(cluster.transport_socket, 'transport_socket', UPSTREAM_TLS, refs, problems);
  (cluster.transport_socket_matches ?? []).forEach((m, i) => transportSocketReferences(m.transport_socket, `transport_socket_matches[${i}].transport_socket`, UPSTREAM_TLS, refs, problems));
  return refs;
}

function transportSocketReferences(socket: TransportSocket | undefined, path: string, typeUrl: string, refs: SecretReference[], problems: string[]): void {
  const any: Any | undefined = socket?.typed_config;
  if (!any || any.type_url !== typeUrl) return;
  let common: CommonTlsContext | undefined;
  try {
    common = unpackAny<{ common_tls_context?: CommonTlsContext }>(any).common_tls_context;
  } catch {
    return; // The TLS context's own compiler reports bytes that do not decode.
  }
  if (!common) return;
  const cp = `${path}.typed_config.common_tls_context`;
  (common.tls_certificate_sds_secret_configs ?? []).forEach((s, i) => addReference(s, `${cp}.tls_certificate_sds_secret_configs[${i}]`, refs, problems));
  if (common.validation_context_sds_secret_config) addReference(common.validation_context_sds_secret_config, `${cp}.validation_context_sds_secret_config`, refs, problems);
  const combined = common.combined_validation_context?.validation_context_sds_secret_config;
  if (combined) addReference(combined, `${cp}.combined_validation_context.validation_context_sds_secret_config`, refs, problems);
}

function addReference(config: SdsSecretConfig, path: string, refs: SecretReference[], problems: string[]): void {
  if (!config.name) return; // The TLS context's compiler requires the name.
  const source = configSource(config.sds_config, `${path}.sds_config`, problems);
  if (!source) return;
  const timeout = config.sds_config?.initial_fetch_timeout;
  const initialFetchTimeoutMs = timeout ? durationMs(timeout, 0) : undefined;
  refs.push({ name: config.name, source, ...(initialFetchTimeoutMs !== undefined ? { initialFetchTimeoutMs } : {}) });
}

/** Reads an SDS ConfigSource; the subset Envoy and Istio use for secrets, anything else refused by field path. */
export function configSource(source: ConfigSource | undefined, path: string, problems: string[]): SecretSource | undefined {
  if (!source) return { kind: 'static' };
  if (source.resource_api_version !== undefined && source.resource_api_version !== 'V3') problems.push(`${path}.resource_api_version: only V3 is supported`);
  for (const field of ['path', 'path_config_source', 'self', 'authorities'] as const) {
    if (source[field] !== undefined && !(Array.isArray(source[field]) && (source[field] as unknown[]).length === 0)) {
      problems.push(`${path}.${field}: not supported by Trellis (secrets come from ads or an api_config_source of type GRPC/DELTA_GRPC)`);
      return undefined;
    }
  }
  if (source.ads) return { kind: 'ads' };
  const api = source.api_config_source;
  if (!api) {
    problems.push(`${path}: expected ads or api_config_source`);
    return undefined;
  }
  const p = `${path}.api_config_source`;
  if (api.api_type !== 'GRPC' && api.api_type !== 'DELTA_GRPC') {
    problems.push(`${p}.api_type: expected GRPC or DELTA_GRPC, got ${String(api.api_type ?? 'unset')}`);
    return undefined;
  }
  if (api.transport_api_version !== undefined && api.transport_api_version !== 'V3') problems.push(`${p}.transport_api_version: only V3 is supported`);
  const services = api.grpc_services ?? [];
  const clusterName = services[0]?.envoy_grpc?.cluster_name;
  if (services.length !== 1 || !clusterName) {
    problems.push(`${p}.grpc_services: expected exactly one gRPC service with envoy_grpc.cluster_name (Istio's sds-grpc)`);
    return undefined;
  }
  return { kind: 'grpc', clusterName, mode: api.api_type === 'DELTA_GRPC' ? 'delta' : 'sotw' };
}
