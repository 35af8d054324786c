// DestinationRule tls (and auto mTLS) → the upstream TLS transport socket, as Istio's cluster_tls.go builds it.
import type { ClientTLSSettings } from '../../../api/index.js';
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import { tcpMetadataExchangeFilter } from '../common/network-filters.js';
import { toStruct } from '../common/protobuf-values.js';
import { credentialSdsSecretConfig, SDS_CA_SUFFIX, SDS_DEFAULT_RESOURCE, SDS_ROOT_RESOURCE, workloadSdsSecretConfig } from '../common/sds-secret-config.js';
import { httpOptions, isHttp2Cluster, type ClusterWrapper } from './cluster-wrapper.js';
import type { MutualTlsMode } from './context.js';

export type UpstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
type TransportSocket = envoy.config.core.v3.TransportSocket;

export const UPSTREAM_TLS_CONTEXT_TYPE = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
export const RAW_BUFFER_TRANSPORT_SOCKET = 'envoy.transport_sockets.raw_buffer';
const RAW_BUFFER_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

export { SDS_DEFAULT_RESOURCE, SDS_ROOT_RESOURCE };
/** ALPN Istio offers to in-mesh peers (istio-peer-exchange lets the server's metadata-exchange filter recognise a sidecar). */
export const ALPN_IN_MESH = ['istio-peer-exchange', 'istio'];
export const ALPN_IN_MESH_H2 = ['istio-peer-exchange', 'istio', 'h2'];

type TlsContextKind = 'user' | 'auto';

export interface UpstreamTlsInput {
  /** The DestinationRule's tls for this cluster (after port/subset merge), if any. */
  tls: ClientTLSSettings | undefined;
  serviceAccounts: readonly string[];
  /** `outbound_.<port>_.<subset>_.<host>`. */
  sni: string;
  autoMtlsEnabled: boolean;
  meshExternal: boolean;
  serviceMtlsMode: MutualTlsMode | 'UNKNOWN';
  /** ServiceEntry services: SIMPLE/MUTUAL without subjectAltNames verify against the service accounts. */
  externalRegistry: boolean;
  isSidecar: boolean;
  /** The DestinationRule has a workloadSelector (credentialName on sidecars needs one, as in Istio). */
  isDrWithSelector: boolean;
}

/**
 * Istio's buildUpstreamTLSSettings + applyUpstreamTLSSettings. A DestinationRule's TLS is used as written (ISTIO_MUTUAL
 * gets the cluster SNI and service-account SANs when it names none); without one, auto mTLS (mesh-internal services
 * whose mTLS mode is not DISABLE) uses ISTIO_MUTUAL through a transport socket match on the endpoint's `tlsMode: istio`
 * metadata, and plaintext for the other endpoints. ORIGINAL_DST clusters get the mTLS socket directly.
 */
export function applyUpstreamTls(wrapper: ClusterWrapper, input: UpstreamTlsInput): void {
  const [tls, kind] = upstreamTlsSettings(input);
  if (!tls) return;
  const context = buildUpstreamTlsContext(wrapper, tls, input);
  if (context === undefined) return;
  const cluster = wrapper.cluster;
  const socket: TransportSocket = { name: TLS_TRANSPORT_SOCKET, typed_config: packAny(UPSTREAM_TLS_CONTEXT_TYPE, context) };
  // Istio's TCPClusterMx: over Istio mTLS (ALPN istio-peer-exchange) tcp_proxy exchanges peer metadata with the server.
  if (tls.mode === 'ISTIO_MUTUAL') cluster.filters = [tcpMetadataExchangeFilter()];
  if (tls.mode === 'ISTIO_MUTUAL' && kind === 'auto' && cluster.type !== 'ORIGINAL_DST') {
    cluster.transport_socket_matches = [
      { name: 'tlsMode-istio', match: toStruct({ tlsMode: 'istio' }), transport_socket: socket },
      defaultTransportSocketMatch(),
    ];
    delete cluster.transport_socket;
  } else {
    cluster.transport_socket = socket;
  }
}

/** Plaintext for endpoints without `tlsMode: istio` (Istio's `tlsMode-disabled` match). */
export function defaultTransportSocketMatch(): envoy.config.cluster.v3.Cluster.TransportSocketMatch {
  return { name: 'tlsMode-disabled', match: {}, transport_socket: rawBufferTransportSocket() };
}

/** The raw_buffer (plaintext) transport socket; RawBuffer is an empty message, so its Any carries no bytes. */
export function rawBufferTransportSocket(): TransportSocket {
  return { name: RAW_BUFFER_TRANSPORT_SOCKET, typed_config: { type_url: RAW_BUFFER_TYPE_URL, value: new Uint8Array(0) } };
}

function upstreamTlsSettings(input: UpstreamTlsInput): [ClientTLSSettings | undefined, TlsContextKind] {
  const tls = input.tls;
  if (tls) {
    if (tls.mode !== 'ISTIO_MUTUAL') return [tls, 'user'];
    return [{ ...tls, mode: 'ISTIO_MUTUAL', sni: tls.sni || input.sni, subjectAltNames: tls.subjectAltNames ?? [...input.serviceAccounts] }, 'user'];
  }
  if (input.meshExternal || !input.autoMtlsEnabled || input.serviceMtlsMode === 'UNKNOWN' || input.serviceMtlsMode === 'DISABLE') {
    return [undefined, 'user'];
  }
  return [{ mode: 'ISTIO_MUTUAL', sni: input.sni, subjectAltNames: [...input.serviceAccounts] }, 'auto'];
}

/** undefined: no TLS (DISABLE, or settings Istio refuses to apply, which leave the cluster without a transport socket). */
function buildUpstreamTlsContext(wrapper: ClusterWrapper, tls: ClientTLSSettings, input: UpstreamTlsInput): UpstreamTlsContext | undefined {
  // Istio does not hand credentialName secrets to every sidecar a DestinationRule reaches: only with a workloadSelector.
  const privilegedCredential = !!tls.credentialName && !tls.credentialName.startsWith('configmap://');
  if (privilegedCredential && input.isSidecar && !input.isDrWithSelector && (tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL')) return undefined;
  switch (tls.mode) {
    case 'ISTIO_MUTUAL': {
      const common = defaultCommonTlsContext();
      // The workload certificate and mesh root come from the node agent over sds-grpc, as in Istio.
      common.tls_certificate_sds_secret_configs = [workloadSdsSecretConfig(SDS_DEFAULT_RESOURCE)];
      common.combined_validation_context = {
        default_validation_context: sanMatch(tls.subjectAltNames),
        validation_context_sds_secret_config: workloadSdsSecretConfig(SDS_ROOT_RESOURCE),
      };
      common.alpn_protocols = isHttp2Cluster(wrapper) ? [...ALPN_IN_MESH_H2] : [...ALPN_IN_MESH];
      return { common_tls_context: common, sni: tls.sni || wrapper.cluster.name || '' };
    }
    case 'SIMPLE':
    case 'MUTUAL':
      return buildUserTlsContext(wrapper, tls, input);
    default:
      // DISABLE (or no mode): plaintext.
      return undefined;
  }
}

/**
 * SIMPLE/MUTUAL (Istio's constructUpstreamTLS). Certificates named by credentialName come over SDS (ADS), as
 * `kubernetes://<name>` and `kubernetes://<name>-cacert` (no validation at all with insecureSkipVerify). File paths are given to the proxy as file data sources: Istio
 * serves them through its node agent's SDS (`file-cert:`/`file-root:` names), but Trellis's SDS is the control plane,
 * which cannot read files on the proxy's host.
 */
function buildUserTlsContext(wrapper: ClusterWrapper, original: ClientTLSSettings, input: UpstreamTlsInput): UpstreamTlsContext | undefined {
  const mutual = original.mode === 'MUTUAL';
  const common = defaultCommonTlsContext();
  const out: UpstreamTlsContext = { common_tls_context: common };
  if (original.sni) out.sni = original.sni;
  setAutoSniAndSanValidation(wrapper, original);
  let tls = original;
  if (input.externalRegistry && (tls.subjectAltNames ?? []).length === 0 && input.serviceAccounts.length > 0) {
    tls = { ...tls, subjectAltNames: [...input.serviceAccounts] };
  }
  const sans = sanMatch(tls.subjectAltNames);
  if (tls.credentialName) {
    if (mutual) common.tls_certificate_sds_secret_configs = [credentialSdsSecretConfig(tls.credentialName)];
    if (!tls.insecureSkipVerify) {
      common.combined_validation_context = {
        default_validation_context: sans,
        validation_context_sds_secret_config: credentialSdsSecretConfig(tls.credentialName + SDS_CA_SUFFIX),
      };
    }
  } else {
    if (mutual) {
      // Istio refuses MUTUAL without both files (validation reports it); the cluster then has no TLS at all.
      if (!tls.clientCertificate || !tls.privateKey) return undefined;
      common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
    }
    if (tls.insecureSkipVerify) {
      common.validation_context = {};
    } else {
      const validation: envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext = { ...sans };
      const ca = tls.caCertificates || 'system';
      if (ca === 'system') validation.system_root_certs = {};
      else validation.trusted_ca = { filename: ca };
      if (tls.caCrl) validation.crl = { filename: tls.caCrl };
      common.validation_context = validation;
    }
  }
  if (isHttp2Cluster(wrapper)) common.alpn_protocols = ['h2'];
  return out;
}

/** Istio sets auto_sni without an explicit SNI, and auto_san_validation when it has neither SNI nor SANs (and verifies). */
function setAutoSniAndSanValidation(wrapper: ClusterWrapper, tls: ClientTLSSettings): void {
  const autoSni = !tls.sni;
  const autoSan = autoSni && (tls.subjectAltNames ?? []).length === 0 && !tls.insecureSkipVerify;
  if (!autoSni && !autoSan) return;
  const options = httpOptions(wrapper);
  const upstream = (options.upstream_http_protocol_options ??= {});
  if (autoSni) upstream.auto_sni = true;
  if (autoSan) upstream.auto_san_validation = true;
}

function defaultCommonTlsContext(): envoy.extensions.transport_sockets.tls.v3.CommonTlsContext {
  return { tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' } };
}

function sanMatch(sans: readonly string[] | undefined): envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext {
  return sans && sans.length > 0 ? { match_subject_alt_names: sans.map((exact) => ({ exact })) } : {};
}
