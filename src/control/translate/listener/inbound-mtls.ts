// What PeerAuthentication makes of an inbound port: the filter chain matches per mTLS mode and the DownstreamTlsContext (Istio's authn + filterchain_options.go).
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { MutualTlsMode } from '../../model/peer-authentication-index.js';
import { DOWNSTREAM_TLS_CONTEXT_MESSAGE, TLS_TRANSPORT_SOCKET } from '../common/envoy-filter-names.js';
import { SDS_DEFAULT_RESOURCE, SDS_ROOT_RESOURCE, workloadSdsSecretConfig } from '../common/sds-secret-config.js';

export type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
type FilterChainMatch = envoy.config.listener.v3.FilterChainMatch;

/** Transport protocols the TLS inspector reports (Envoy's names). */
export const TLS_TRANSPORT_PROTOCOL = 'tls';
export const RAW_BUFFER_TRANSPORT_PROTOCOL = 'raw_buffer';

/**
 * The ALPN values an Istio client sidecar offers over mTLS (Istio's allIstioMtlsALPNs): a PERMISSIVE port's TLS chain
 * matches on them, so mesh mTLS goes to the chain that terminates it and any other TLS passes through untouched.
 */
export const ISTIO_MTLS_ALPNS = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];

/**
 * ALPN the server offers (Istio's ALPNDownstream). Istio adds `istio-peer-exchange` on TCP chains for its metadata
 * exchange filter; Trellis has no such filter, and negotiating that protocol would make an Istio client start the
 * exchange on the application's byte stream — so it is left out on every chain (Istio's DISABLE_MX_ALPN behaviour).
 */
export const DOWNSTREAM_ALPNS = ['h2', 'http/1.1'];

/** Istio's SupportedCiphers for sidecar servers (TLS 1.2; TLS 1.3 suites are not configurable). */
export const SUPPORTED_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
];

/** One filter chain a port gets: how it is matched, whether it terminates mTLS, and what it runs. */
export interface InboundChainOption {
  readonly transportProtocol: typeof TLS_TRANSPORT_PROTOCOL | typeof RAW_BUFFER_TRANSPORT_PROTOCOL;
  readonly applicationProtocols?: readonly string[];
  /** Terminates mTLS with the workload certificate; false for plaintext, and for TLS passed through as opaque TCP. */
  readonly terminatesTls: boolean;
  /** A connection manager or tcp_proxy. */
  readonly protocol: 'http' | 'tcp';
}

/** ALPN a client sidecar sets for HTTP it sends over mTLS (Istio's mtlsHTTPALPNs). */
export const ISTIO_MTLS_HTTP_ALPNS = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
/** ALPN a client sidecar offers for TCP it sends over mTLS (Istio's mtlsTCPWithMxcALPNs). */
export const ISTIO_MTLS_TCP_ALPNS = ['istio-peer-exchange', 'istio'];
/** What the HTTP inspector reports for plaintext HTTP (Istio's plaintextHTTPALPNs, HTTP/1.0 not enabled). */
export const PLAINTEXT_HTTP_ALPNS = ['http/1.1', 'h2c'];

const tls = (protocol: 'http' | 'tcp', applicationProtocols?: readonly string[]): InboundChainOption =>
  ({ transportProtocol: TLS_TRANSPORT_PROTOCOL, terminatesTls: true, protocol, ...(applicationProtocols ? { applicationProtocols } : {}) });
const plain = (protocol: 'http' | 'tcp', applicationProtocols?: readonly string[]): InboundChainOption =>
  ({ transportProtocol: RAW_BUFFER_TRANSPORT_PROTOCOL, terminatesTls: false, protocol, ...(applicationProtocols ? { applicationProtocols } : {}) });
const tlsPassthrough: InboundChainOption = { transportProtocol: TLS_TRANSPORT_PROTOCOL, terminatesTls: false, protocol: 'tcp' };

/**
 * Istio's getFilterChainMatchOptions for a sidecar's inbound port (no user TLS on the port). STRICT: TLS only —
 * plaintext matches nothing and is refused. PERMISSIVE: mesh mTLS (TLS with an Istio ALPN) terminated, plaintext in the
 * clear, and for TCP other TLS passed through to the application. DISABLE: plaintext only. `auto` (passthrough chains,
 * protocol unknown) splits each into an HTTP chain (recognised by ALPN: the client sidecar's `istio-http/*` over mTLS, the
 * HTTP inspector's `http/1.1`/`h2c` in plaintext) and a TCP chain for the rest.
 */
export function inboundChainOptions(mode: MutualTlsMode, protocol: 'http' | 'tcp' | 'auto'): readonly InboundChainOption[] {
  if (protocol === 'auto') {
    switch (mode) {
      case 'STRICT':
        return [tls('http', ISTIO_MTLS_HTTP_ALPNS), tls('tcp')];
      case 'PERMISSIVE':
        return [tls('http', ISTIO_MTLS_HTTP_ALPNS), plain('http', PLAINTEXT_HTTP_ALPNS), tls('tcp', ISTIO_MTLS_TCP_ALPNS), plain('tcp'), tlsPassthrough];
      default:
        return [plain('http', PLAINTEXT_HTTP_ALPNS), plain('tcp')];
    }
  }
  switch (mode) {
    case 'STRICT':
      return [tls(protocol)];
    case 'PERMISSIVE':
      return protocol === 'tcp' ? [tls('tcp', ISTIO_MTLS_ALPNS), plain('tcp'), tlsPassthrough] : [tls('http', ISTIO_MTLS_ALPNS), plain('http')];
    default:
      return [plain(protocol)];
  }
}

/**
 * A chain's name: `base` for a port's first chain of a protocol, then `base-plaintext` / `base-tls-passthrough` /
 * `base-mtls`. Istio names every chain of a port alike (Envoy tolerates duplicates for backward compatibility);
 * Trellis's LDS validation, like gRPC's, wants them distinct, and the suffix says in `proxy-config listener` output
 * which traffic a chain takes.
 */
export function inboundChainName(base: string, option: InboundChainOption, index: number): string {
  if (index === 0) return base;
  if (option.terminatesTls) return `${base}-mtls`;
  return option.transportProtocol === RAW_BUFFER_TRANSPORT_PROTOCOL ? `${base}-plaintext` : `${base}-tls-passthrough`;
}

/** The FilterChainMatch of one option on one workload port (`destinationPort` undefined: a listener bound to that port). */
export function inboundChainMatch(option: InboundChainOption, destinationPort: number | undefined): FilterChainMatch {
  const match: FilterChainMatch = {};
  if (destinationPort !== undefined) match.destination_port = { value: destinationPort };
  match.transport_protocol = option.transportProtocol;
  if (option.applicationProtocols) match.application_protocols = [...option.applicationProtocols];
  return match;
}

/**
 * Istio's BuildInboundTLS: the workload certificate (`default`) and the mesh root (`ROOTCA`) from the node agent over
 * SDS, a client certificate required, TLS 1.2 to 1.3 with Istio's server ciphers. The peer must present a SPIFFE
 * identity of this mesh's trust domain (a URI SAN prefix `spiffe://<trust domain>/`): a certificate from the same
 * root for another trust domain is refused.
 */
export function inboundDownstreamTlsContext(mesh: Pick<MeshConfig, 'trustDomain'>): DownstreamTlsContext {
  return {
    common_tls_context: {
      tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3', cipher_suites: [...SUPPORTED_CIPHERS] },
      alpn_protocols: [...DOWNSTREAM_ALPNS],
      tls_certificate_sds_secret_configs: [workloadSdsSecretConfig(SDS_DEFAULT_RESOURCE)],
      combined_validation_context: {
        default_validation_context: {
          match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${mesh.trustDomain}/` } }],
        },
        validation_context_sds_secret_config: workloadSdsSecretConfig(SDS_ROOT_RESOURCE),
      },
    },
    require_client_certificate: { value: true },
  };
}

export function inboundTlsTransportSocket(mesh: Pick<MeshConfig, 'trustDomain'>): envoy.config.core.v3.TransportSocket {
  return { name: TLS_TRANSPORT_SOCKET, typed_config: packAny(DOWNSTREAM_TLS_CONTEXT_MESSAGE, inboundDownstreamTlsContext(mesh)) };
}
