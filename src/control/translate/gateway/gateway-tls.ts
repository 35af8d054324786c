// Gateway server TLS settings as Envoy's DownstreamTlsContext: certificate files, or SDS secrets for credentialName / ISTIO_MUTUAL.
import type { ServerTLSSettings } from '../../../api/index.js';
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import { DOWNSTREAM_TLS_CONTEXT_MESSAGE, TLS_TRANSPORT_SOCKET } from '../common/envoy-filter-names.js';
import { credentialResourceName, credentialSdsSecretConfig, SDS_CA_SUFFIX, SDS_DEFAULT_RESOURCE, SDS_ROOT_RESOURCE, workloadSdsSecretConfig } from '../common/sds-secret-config.js';

type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
type CommonTlsContext = envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
type TlsProtocol = envoy.extensions.transport_sockets.tls.v3.TlsParameters.TlsProtocol;

const PROTOCOL_VERSIONS: Readonly<Record<string, TlsProtocol>> = {
  TLS_AUTO: 'TLS_AUTO',
  TLSV1_0: 'TLSv1_0',
  TLSV1_1: 'TLSv1_1',
  TLSV1_2: 'TLSv1_2',
  TLSV1_3: 'TLSv1_3',
};

/** Istio's SDS resource names: `kubernetes://<credentialName>` (names with a scheme as given) and its CA `…-cacert`. */
export function credentialSecretName(credentialName: string): string {
  return credentialResourceName(credentialName);
}

/**
 * SIMPLE: the server certificate (files, or the credentialName's secret over SDS). MUTUAL/OPTIONAL_MUTUAL: plus the
 * client CA (caCertificates file or `<credentialName>-cacert`) and SAN checks; MUTUAL requires a client certificate.
 * ISTIO_MUTUAL: the gateway's mesh identity (`default`) and the mesh root (`ROOTCA`) from the node agent (sds-grpc).
 * credentialName secrets come from the control plane over ADS. TLS 1.2 minimum unless set, ALPN h2 and http/1.1, as
 * Istio's gateways do.
 */
export function downstreamTlsContext(tls: ServerTLSSettings): DownstreamTlsContext {
  const mode = tls.mode ?? 'SIMPLE';
  const common: CommonTlsContext = {
    tls_params: { tls_minimum_protocol_version: PROTOCOL_VERSIONS[tls.minProtocolVersion ?? 'TLSV1_2'] ?? 'TLSv1_2' },
    alpn_protocols: ['h2', 'http/1.1'],
  };
  if (tls.maxProtocolVersion) common.tls_params!.tls_maximum_protocol_version = PROTOCOL_VERSIONS[tls.maxProtocolVersion] ?? 'TLS_AUTO';
  if (tls.cipherSuites?.length) common.tls_params!.cipher_suites = [...tls.cipherSuites];

  const sans = (tls.subjectAltNames ?? []).map((san) => ({ exact: san }));
  const credential = tls.credentialName ?? tls.credentialNames?.[0];
  if (mode === 'ISTIO_MUTUAL') {
    common.tls_certificate_sds_secret_configs = [workloadSdsSecretConfig(SDS_DEFAULT_RESOURCE)];
    common.combined_validation_context = {
      default_validation_context: sans.length ? { match_subject_alt_names: sans } : {},
      validation_context_sds_secret_config: workloadSdsSecretConfig(SDS_ROOT_RESOURCE),
    };
  } else {
    if (credential) common.tls_certificate_sds_secret_configs = [credentialSdsSecretConfig(credential)];
    else common.tls_certificates = [{ certificate_chain: { filename: tls.serverCertificate ?? '' }, private_key: { filename: tls.privateKey ?? '' } }];
    if (mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
      if (credential) {
        common.combined_validation_context = {
          default_validation_context: sans.length ? { match_subject_alt_names: sans } : {},
          validation_context_sds_secret_config: credentialSdsSecretConfig(credential + SDS_CA_SUFFIX),
        };
      } else if (tls.caCertificates) {
        common.validation_context = { trusted_ca: { filename: tls.caCertificates } };
        if (sans.length) common.validation_context.match_subject_alt_names = sans;
        if (tls.caCrl) common.validation_context.crl = { filename: tls.caCrl };
      }
    }
  }
  return { common_tls_context: common, require_client_certificate: { value: mode === 'MUTUAL' || mode === 'ISTIO_MUTUAL' } };
}

export function tlsTransportSocket(tls: ServerTLSSettings): envoy.config.core.v3.TransportSocket {
  return { name: TLS_TRANSPORT_SOCKET, typed_config: packAny(DOWNSTREAM_TLS_CONTEXT_MESSAGE, downstreamTlsContext(tls)) };
}
