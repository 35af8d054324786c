// DestinationRule connectionPool → circuit breakers, HTTP protocol options, connect timeout and TCP keepalive (Istio's applyConnectionPool).
import type { ConnectionPoolSettings } from '../../../api/index.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { ServicePort } from '../../model/service.js';
import { durationFromMs, durationFromText, MAX_UINT32, secondsFromText, uint32, type Duration } from '../common/protobuf-values.js';
import { httpOptions, setH2Options, setUseDownstreamProtocol, type Cluster, type ClusterWrapper } from './cluster-wrapper.js';
import type { ClusterBuildContext } from './context.js';
import { isHttpProtocol } from './protocol.js';

export type Thresholds = envoy.config.cluster.v3.CircuitBreakers.Thresholds;

/**
 * Istio's defaults: every limit at 2^32-1 (Envoy's own defaults, 1024 and 3 retries, open the breaker during pod churn
 * before new endpoints arrive), with track_remaining so the remaining budget is visible in stats.
 */
export function defaultCircuitBreakerThresholds(): Thresholds {
  return {
    max_connections: uint32(MAX_UINT32),
    max_pending_requests: uint32(MAX_UINT32),
    max_requests: uint32(MAX_UINT32),
    max_retries: uint32(MAX_UINT32),
    track_remaining: true,
  };
}

/**
 * Applies a connection pool (an empty one gives the defaults): connect_timeout (mesh, or tcp.connectTimeout),
 * circuit_breakers, keepalive, and idle timeout / max requests per connection / max connection duration in the HTTP
 * protocol options. Zero means unset, as in Istio (proto3 cannot tell them apart).
 */
export function applyConnectionPool(wrapper: ClusterWrapper, settings: ConnectionPoolSettings, context: ClusterBuildContext): void {
  const cluster = wrapper.cluster;
  const threshold = defaultCircuitBreakerThresholds();
  let idleTimeout: Duration | undefined;
  let maxRequestsPerConnection = 0;
  let maxConcurrentStreams = 0;
  let maxConnectionDuration: Duration | undefined;

  const http = settings.http;
  if (http) {
    if ((http.http2MaxRequests ?? 0) > 0) threshold.max_requests = uint32(http.http2MaxRequests!);
    if ((http.http1MaxPendingRequests ?? 0) > 0) threshold.max_pending_requests = uint32(http.http1MaxPendingRequests!);
    if ((http.maxRetries ?? 0) > 0) threshold.max_retries = uint32(http.maxRetries!);
    idleTimeout = durationFromText(http.idleTimeout);
    maxRequestsPerConnection = http.maxRequestsPerConnection ?? 0;
    maxConcurrentStreams = http.maxConcurrentStreams ?? 0;
  }

  cluster.connect_timeout = durationFromMs(context.mesh.connectTimeoutMs);
  const tcp = settings.tcp;
  if (tcp) {
    const connectTimeout = durationFromText(tcp.connectTimeout);
    if (connectTimeout) cluster.connect_timeout = connectTimeout;
    if ((tcp.maxConnections ?? 0) > 0) threshold.max_connections = uint32(tcp.maxConnections!);
    maxConnectionDuration = durationFromText(tcp.maxConnectionDuration);
    idleTimeout ??= durationFromText(tcp.idleTimeout);
  }
  applyTcpKeepalive(cluster, context.mesh.tcpKeepalive);
  applyTcpKeepalive(cluster, tcp?.tcpKeepalive);

  cluster.circuit_breakers = { thresholds: [threshold] };

  if (maxConnectionDuration || idleTimeout || maxRequestsPerConnection > 0 || maxConcurrentStreams > 0) {
    const options = httpOptions(wrapper);
    const common = (options.common_http_protocol_options ??= {});
    if (idleTimeout) common.idle_timeout = idleTimeout;
    if (maxRequestsPerConnection > 0) common.max_requests_per_connection = uint32(maxRequestsPerConnection);
    if (maxConnectionDuration) common.max_connection_duration = maxConnectionDuration;
    const h2 = options.explicit_http_config?.http2_protocol_options;
    if (h2 && maxConcurrentStreams > 0) h2.max_concurrent_streams = uint32(maxConcurrentStreams);
  }
  if (http?.useClientProtocol) setUseDownstreamProtocol(wrapper);
}

/** Istio's setKeepAliveSettings: SO_KEEPALIVE with OS defaults, then each field given (time and interval in whole seconds). */
function applyTcpKeepalive(cluster: Cluster, keepalive: { probes?: number; time?: string; interval?: string } | undefined): void {
  if (!keepalive) return;
  cluster.upstream_connection_options ??= { tcp_keepalive: {} };
  const target = (cluster.upstream_connection_options.tcp_keepalive ??= {});
  if ((keepalive.probes ?? 0) > 0) target.keepalive_probes = uint32(keepalive.probes!);
  const time = secondsFromText(keepalive.time);
  if (time !== undefined) target.keepalive_time = uint32(time);
  const interval = secondsFromText(keepalive.interval);
  if (interval !== undefined) target.keepalive_interval = uint32(interval);
}

/**
 * Istio's shouldH2Upgrade: the DestinationRule's h2UpgradePolicy wins (UPGRADE even for ports not declared HTTP);
 * otherwise only HTTP ports upgrade, and only when the mesh says UPGRADE.
 */
export function applyH2Upgrade(wrapper: ClusterWrapper, port: ServicePort, settings: ConnectionPoolSettings, context: ClusterBuildContext): void {
  const override = settings.http?.h2UpgradePolicy;
  let upgrade: boolean;
  if (override === 'UPGRADE') upgrade = true;
  else if (override === 'DO_NOT_UPGRADE') upgrade = false;
  else upgrade = isHttpProtocol(port.protocol) && context.mesh.h2UpgradePolicy === 'UPGRADE';
  if (upgrade) setH2Options(wrapper);
}
