// Network and listener filters every listener builder shares: tcp_proxy, the HTTP connection manager (RDS over ADS or inline), inspectors.
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import {
  CORS_FILTER,
  CORS_MESSAGE,
  FAULT_FILTER,
  FAULT_MESSAGE,
  HTTP_CONNECTION_MANAGER,
  HTTP_CONNECTION_MANAGER_MESSAGE,
  HTTP_INSPECTOR,
  HTTP_INSPECTOR_MESSAGE,
  ORIGINAL_DST,
  ORIGINAL_DST_MESSAGE,
  ROUTER_FILTER,
  ROUTER_MESSAGE,
  TCP_PROXY,
  TCP_PROXY_MESSAGE,
  TLS_INSPECTOR,
  TLS_INSPECTOR_MESSAGE,
} from './envoy-filter-names.js';
import type { MeshConfig, PathNormalizationMode } from '../../model/mesh-config.js';
import { toStruct } from './protobuf-values.js';

export type Address = envoy.config.core.v3.Address;
export type Filter = envoy.config.listener.v3.Filter;
export type ListenerFilter = envoy.config.listener.v3.ListenerFilter;
export type HttpConnectionManager = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
export type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
export type ConfigSource = envoy.config.core.v3.ConfigSource;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

export function socketAddress(address: string, port: number): Address {
  return { socket_address: { address, port_value: port } };
}

/** RDS/SDS over the ADS stream, as Istio configures it (`initial_fetch_timeout: 0s`: wait for the resource forever). */
export function adsConfigSource(): ConfigSource {
  return { ads: {}, initial_fetch_timeout: { seconds: 0 }, resource_api_version: 'V3' };
}

/** A tcp_proxy network filter to one cluster; Istio uses the cluster name as stat_prefix. */
export function tcpProxyFilter(cluster: string, statPrefix: string = cluster): Filter {
  const config: envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy = { stat_prefix: statPrefix, cluster };
  return { name: TCP_PROXY, typed_config: packAny(TCP_PROXY_MESSAGE, config) };
}

/**
 * The HTTP filters of Istio's sidecar and gateway connection managers that Trellis generates: `leading` ones first (the
 * security filters: jwt_authn, ext_authz, rbac, which must see a request before anything acts on it), fault and CORS
 * (both configured per route through typed_per_filter_config), then the router, which must be last.
 */
export function standardHttpFilters(leading: readonly HttpFilter[] = [], direction?: TrafficDirection): HttpFilter[] {
  return [
    ...(direction ? [metadataExchangeFilter(direction)] : []),
    ...leading,
    { name: FAULT_FILTER, typed_config: packAny(FAULT_MESSAGE, {}) },
    { name: CORS_FILTER, typed_config: packAny(CORS_MESSAGE, {}) },
    ...(direction ? [istioStatsFilter(direction)] : []),
    { name: ROUTER_FILTER, typed_config: packAny(ROUTER_MESSAGE, {}) },
  ];
}

export type TrafficDirection = 'INBOUND' | 'OUTBOUND';

/** Istio's HTTP filter names for telemetry; their config travels as a google.protobuf.Struct (see docs/observability.md). */
export const METADATA_EXCHANGE_FILTER = 'istio.metadata_exchange';
export const ISTIO_STATS_FILTER = 'istio.stats';
const STRUCT_MESSAGE = 'google.protobuf.Struct';

/**
 * istio.metadata_exchange with io.istio.http.peer_metadata.Config's fields: inbound learns the client from the request
 * headers and answers with its own; outbound and gateways send theirs upstream and learn the server from the response.
 */
export function metadataExchangeFilter(direction: TrafficDirection): HttpFilter {
  const headers = [{ istio_headers: {} }];
  const config = direction === 'INBOUND' ? { downstream_discovery: headers, downstream_propagation: headers } : { upstream_discovery: headers, upstream_propagation: headers };
  return { name: METADATA_EXCHANGE_FILTER, typed_config: packAny(STRUCT_MESSAGE, toStruct(config)) };
}

/** istio.stats: reporter=destination on inbound, source on outbound and gateways (Istio infers it from the listener direction). */
export function istioStatsFilter(direction: TrafficDirection): HttpFilter {
  return { name: ISTIO_STATS_FILTER, typed_config: packAny(STRUCT_MESSAGE, toStruct({ direction })) };
}

/** Istio's TCP metadata exchange (TCPListenerMx / TCPClusterMx): MetadataExchange's `protocol`, as a Struct. */
export function tcpMetadataExchangeFilter(): Filter {
  return { name: METADATA_EXCHANGE_FILTER, typed_config: packAny(STRUCT_MESSAGE, toStruct({ protocol: 'istio-peer-exchange' })) };
}

/** istio.stats as a network filter before tcp_proxy: Istio's TCP metrics, destination on inbound, source on outbound. */
export function tcpIstioStatsFilter(direction: TrafficDirection): Filter {
  return istioStatsFilter(direction);
}

/** The direction of an HCM from Istio's stat prefixes (`inbound_…`, `InboundPassthroughCluster…` vs `outbound_…`, gateways). */
function directionOfStatPrefix(statPrefix: string): TrafficDirection {
  return statPrefix.startsWith('inbound') || statPrefix.startsWith('InboundPassthrough') ? 'INBOUND' : 'OUTBOUND';
}

export interface HttpConnectionManagerOptions {
  statPrefix: string;
  /** Route configuration fetched over RDS (ADS) by this name… */
  rdsRouteName?: string;
  /** …or given inline. */
  routeConfig?: RouteConfiguration;
  /** Gateways trust the peer address (`true`); sidecars do not (Istio: `use_remote_address: false`). */
  useRemoteAddress: boolean;
  /** Inbound sidecars and gateways set Istio's XFCC handling; outbound leaves Envoy's default. */
  forwardClientCertDetails?: HttpConnectionManager['forward_client_cert_details'];
  /** HTTP filters placed before fault, CORS and the router (the inbound and gateway security filters). */
  leadingHttpFilters?: readonly HttpFilter[];
  /** MeshConfig `pathNormalization.normalization`; absent means Istio's DEFAULT (BASE). */
  pathNormalization?: PathNormalizationMode;
  /** Which side the telemetry filters (metadata exchange, stats) report as; absent: from the stat prefix; `false`: none. */
  trafficDirection?: TrafficDirection | false;
  /** Access logs (Telemetry accessLogging or MeshConfig accessLogFile: translate/telemetry/access-log.ts). */
  accessLog?: readonly envoy.config.accesslog.v3.AccessLog[];
  /** trellis.filters.http.tracing (Telemetry tracing: translate/telemetry/tracing.ts), placed first so it sees the request as it came. */
  tracingHttpFilter?: HttpFilter;
}

/** The HttpConnectionManager Istio builds (tracing left out), wrapped as a network filter. */
export function httpConnectionManager(options: HttpConnectionManagerOptions): HttpConnectionManager {
  const hcm: HttpConnectionManager = { stat_prefix: options.statPrefix };
  if (options.rdsRouteName !== undefined) hcm.rds = { config_source: adsConfigSource(), route_config_name: options.rdsRouteName };
  else if (options.routeConfig !== undefined) hcm.route_config = options.routeConfig;
  const direction = options.trafficDirection === false ? undefined : (options.trafficDirection ?? directionOfStatPrefix(options.statPrefix));
  hcm.http_filters = [...(options.tracingHttpFilter ? [options.tracingHttpFilter] : []), ...standardHttpFilters(options.leadingHttpFilters, direction)];
  if (options.accessLog && options.accessLog.length > 0) hcm.access_log = [...options.accessLog];
  hcm.use_remote_address = { value: options.useRemoteAddress };
  if (options.forwardClientCertDetails !== undefined) {
    hcm.forward_client_cert_details = options.forwardClientCertDetails;
    hcm.set_current_client_cert_details = { subject: { value: true }, dns: true, uri: true };
  }
  hcm.upgrade_configs = [{ upgrade_type: 'websocket' }];
  hcm.stream_idle_timeout = { seconds: 0 };
  applyPathNormalization(hcm, options.pathNormalization);
  return hcm;
}

/** `{ pathNormalization }` from the mesh config when it sets one, to spread into HttpConnectionManagerOptions. */
export function pathNormalizationOption(mesh: Pick<MeshConfig, 'pathNormalization'> | undefined): { pathNormalization?: PathNormalizationMode } {
  const mode = mesh?.pathNormalization?.normalization;
  return mode ? { pathNormalization: mode } : {};
}

/**
 * Istio's buildHTTPConnectionManager normalization: NONE leaves the path alone; DEFAULT and BASE apply RFC 3986
 * normalization (percent-decoding of unreserved characters, dot segments); MERGE_SLASHES also collapses `//`;
 * DECODE_AND_MERGE_SLASHES also decodes `%2F`/`%5C` so an escaped slash cannot hide a path from routes and policies.
 */
export function applyPathNormalization(hcm: HttpConnectionManager, mode: PathNormalizationMode = 'DEFAULT'): void {
  hcm.path_with_escaped_slashes_action = 'KEEP_UNCHANGED';
  switch (mode) {
    case 'NONE':
      hcm.normalize_path = { value: false };
      break;
    case 'MERGE_SLASHES':
      hcm.normalize_path = { value: true };
      hcm.merge_slashes = true;
      break;
    case 'DECODE_AND_MERGE_SLASHES':
      hcm.normalize_path = { value: true };
      hcm.merge_slashes = true;
      hcm.path_with_escaped_slashes_action = 'UNESCAPE_AND_FORWARD';
      break;
    default:
      hcm.normalize_path = { value: true };
  }
}

export function httpConnectionManagerFilter(options: HttpConnectionManagerOptions): Filter {
  return { name: HTTP_CONNECTION_MANAGER, typed_config: packAny(HTTP_CONNECTION_MANAGER_MESSAGE, httpConnectionManager(options)) };
}

export function tlsInspector(): ListenerFilter {
  return { name: TLS_INSPECTOR, typed_config: packAny(TLS_INSPECTOR_MESSAGE, {}) };
}

export function httpInspector(): ListenerFilter {
  return { name: HTTP_INSPECTOR, typed_config: packAny(HTTP_INSPECTOR_MESSAGE, {}) };
}

export function originalDst(): ListenerFilter {
  return { name: ORIGINAL_DST, typed_config: packAny(ORIGINAL_DST_MESSAGE, {}) };
}
