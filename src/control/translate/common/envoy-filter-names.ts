// Envoy's well-known extension names and the protobuf messages behind them, as Istio's `wellknown` package spells them.

export const HTTP_CONNECTION_MANAGER = 'envoy.filters.network.http_connection_manager';
export const HTTP_CONNECTION_MANAGER_MESSAGE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const TCP_PROXY = 'envoy.filters.network.tcp_proxy';
export const TCP_PROXY_MESSAGE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const FAULT_MESSAGE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
export const CORS_FILTER = 'envoy.filters.http.cors';
export const CORS_MESSAGE = 'envoy.extensions.filters.http.cors.v3.Cors';
export const CORS_POLICY_MESSAGE = 'envoy.extensions.filters.http.cors.v3.CorsPolicy';
export const ROUTER_FILTER = 'envoy.filters.http.router';
export const ROUTER_MESSAGE = 'envoy.extensions.filters.http.router.v3.Router';

export const TLS_INSPECTOR = 'envoy.filters.listener.tls_inspector';
export const TLS_INSPECTOR_MESSAGE = 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
export const HTTP_INSPECTOR = 'envoy.filters.listener.http_inspector';
export const HTTP_INSPECTOR_MESSAGE = 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';
export const ORIGINAL_DST = 'envoy.filters.listener.original_dst';
export const ORIGINAL_DST_MESSAGE = 'envoy.extensions.filters.listener.original_dst.v3.OriginalDst';

export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
export const DOWNSTREAM_TLS_CONTEXT_MESSAGE = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

export const PREVIOUS_HOSTS_PREDICATE = 'envoy.retry_host_predicates.previous_hosts';
export const PREVIOUS_HOSTS_PREDICATE_TYPE_URL = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';
