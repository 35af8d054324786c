// SDS secret references as Istio writes them: the workload's `default`/`ROOTCA` from the node agent (sds-grpc), credentialName secrets over ADS.
import type { envoy } from '../../../xds/generated/types.js';

export type SdsSecretConfig = envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;

/** The bootstrap cluster that reaches the node agent's SDS server (Istio's SDSClusterName). */
export const SDS_CLUSTER_NAME = 'sds-grpc';
/** Istio's SDS resource names for the workload certificate and the mesh root bundle. */
export const SDS_DEFAULT_RESOURCE = 'default';
export const SDS_ROOT_RESOURCE = 'ROOTCA';
/** Istio's suffix for a credential's CA bundle (`<credential>-cacert`). */
export const SDS_CA_SUFFIX = '-cacert';

/**
 * Istio's ConstructSdsSecretConfig (pkg/model): a secret fetched from the node agent over the `sds-grpc` cluster.
 * `default` and `ROOTCA` wait for their secret without limit (initial_fetch_timeout 0s): the agent always has them,
 * and a listener or cluster must not warm without its certificate.
 */
export function workloadSdsSecretConfig(name: string): SdsSecretConfig {
  const waitForever = name === SDS_DEFAULT_RESOURCE || name === SDS_ROOT_RESOURCE;
  return {
    name,
    sds_config: {
      api_config_source: {
        api_type: 'GRPC',
        set_node_on_first_message_only: true,
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER_NAME } }],
      },
      ...(waitForever ? { initial_fetch_timeout: { seconds: 0 } } : {}),
      resource_api_version: 'V3',
    },
  };
}

/**
 * Istio's ConstructSdsSecretConfigForCredential: a credentialName secret (`kubernetes://<name>`, or the name as given
 * when it has a scheme) served by the control plane over ADS. No initial_fetch_timeout: a missing secret must not
 * block the whole listener or cluster (Istio's SDSAdsConfig). `builtin://` names the workload's own certificate.
 */
export function credentialSdsSecretConfig(credentialName: string): SdsSecretConfig {
  if (credentialName === BUILTIN_CREDENTIAL) return workloadSdsSecretConfig(SDS_DEFAULT_RESOURCE);
  if (credentialName === BUILTIN_CREDENTIAL + SDS_CA_SUFFIX) return workloadSdsSecretConfig(SDS_ROOT_RESOURCE);
  return { name: credentialResourceName(credentialName), sds_config: { ads: {}, resource_api_version: 'V3' } };
}

/** Istio's credentials.ToResourceName: names without a scheme are Kubernetes secrets. */
export function credentialResourceName(name: string): string {
  return name.includes('://') ? name : `kubernetes://${name}`;
}

const BUILTIN_CREDENTIAL = 'builtin://';
