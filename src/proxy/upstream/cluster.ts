// compileCluster: an Envoy Cluster (STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST) validated and compiled into a live
// UpstreamClusterImpl with its hosts, load balancer, circuit breakers, transport sockets and per-host connection pools.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { CodecError, XdsValidationError } from '../../common/errors.js';
import { unpackAny } from '../../xds/codec.js';
import type { envoy, google } from '../../xds/generated/types.js';
import { structToJson } from '../../xds/struct.js';
import { durationMs } from '../../common/duration.js';
import { rejectUnsupported, wrapped } from './config-values.js';
import { compileLoadAssignment, type EndpointSpec, type LoadAssignment } from './endpoints.js';
import { compileHealthChecks, type HealthCheckConfig } from './health-check/health-check-config.js';
import { HealthChecker } from './health-check/health-checker.js';
import { probeConnector } from './health-check/health-probe.js';
import { HostImpl } from './host.js';
import { OutlierDetector, compileOutlierDetection, outlierResultOf, type OutlierDetectionConfig } from './outlier-detector.js';
import { loadBalancerPolicy, loadBalancerPolicyNames } from './lb/index.js';
import { policyConfigFields, type LbEnvironment, type LoadBalancerPolicy } from './lb/load-balancer-policy.js';
import { PriorityLoadBalancer } from './lb/priority-load-balancer.js';
import { connectUpstream, kConnectFailure, type UpstreamSocket } from './pool/connect.js';
import type { ClusterResources, ConnectionPool, PoolSettings } from './pool/connection-pool.js';
import { Http1LeanPool } from './pool/http1-lean-pool.js';
import { Http1Pool } from './pool/http1-pool.js';
import { Http2Pool } from './pool/http2-pool.js';
import { buildPrioritySet } from './priority-set.js';
import { compileProtocolOptions, type ProtocolOptions } from './protocol-options.js';
import { compileRetryBudget } from './retry-budget.js';
import type {
  CircuitBreakerState,
  ClusterStats,
  LoadBalancerContext,
  UpstreamCluster,
  UpstreamFailure,
  UpstreamHost,
  UpstreamRequest,
  UpstreamRequestOptions,
  UpstreamResponseHandler,
} from './types.js';
import type { HttpHeaders } from '../http/headers.js';
import { NO_UPSTREAM_SECRETS, RAW_BUFFER_TYPE_URL, UPSTREAM_TLS_CONTEXT_TYPE_URL, compileUpstreamTls, type UpstreamSecretProvider, type UpstreamTls } from './upstream-tls.js';

type Cluster = envoy.config.cluster.v3.Cluster;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
type TransportSocket = envoy.config.core.v3.TransportSocket;

export type DnsLookup = (hostname: string) => Promise<readonly { address: string; family: number }[]>;

export interface ClusterCompileContext {
  /** SDS secrets referenced by upstream TLS contexts, read when connections are made. */
  readonly secrets?: UpstreamSecretProvider;
  /** Randomness for load balancers (tests pass a deterministic one); a float in [0, 1). */
  readonly random?: () => number;
  /** Name resolution for DNS clusters; default getaddrinfo (node:dns/promises lookup, which also reads /etc/hosts). */
  readonly dnsLookup?: DnsLookup;
  /** Warnings about upstream health (failed health checks); default stderr. */
  readonly log?: (message: string) => void;
}

export type ClusterType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';
const CLUSTER_TYPES: readonly ClusterType[] = ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'];
const DISCOVERY_TYPE_NUMBERS: readonly ClusterType[] = ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'];

/** Cluster fields compileCluster understands; any other field that is set is refused with its path. */
const SUPPORTED_FIELDS = [
  'name', 'alt_stat_name', 'type', 'eds_cluster_config', 'connect_timeout', 'lb_policy', 'load_assignment',
  'max_requests_per_connection', 'circuit_breakers', 'common_http_protocol_options', 'http_protocol_options',
  'http2_protocol_options', 'typed_extension_protocol_options', 'dns_refresh_rate', 'dns_failure_refresh_rate',
  'respect_dns_ttl', 'dns_lookup_family', 'wait_for_warm_on_init', 'cleanup_interval', 'upstream_bind_config',
  'original_dst_lb_config', 'common_lb_config', 'transport_socket', 'transport_socket_matches', 'metadata',
  'protocol_selection', 'upstream_connection_options', 'outlier_detection', 'health_checks',
  'ignore_health_on_host_removal',
  // Upstream network filters: only Istio's istio.metadata_exchange (the TCP exchange tcp_proxy runs).
  'filters',
];

/** Istio's upstream network filter on outbound clusters (TCPClusterMx); tcp_proxy runs the exchange. */
const UPSTREAM_METADATA_EXCHANGE = 'istio.metadata_exchange';
const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';
const METADATA_EXCHANGE_TYPE_URL = 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange';

/** cluster.filters: true when it holds istio.metadata_exchange with protocol istio-peer-exchange; anything else is refused. */
function compileUpstreamFilters(filters: Cluster['filters'], path: string, problems: string[]): boolean {
  let exchange = false;
  (filters ?? []).forEach((f, i) => {
    const fp = `${path}[${i}]`;
    const url = f.typed_config?.type_url ?? '';
    if (f.name !== UPSTREAM_METADATA_EXCHANGE || (url !== STRUCT_TYPE_URL && url !== METADATA_EXCHANGE_TYPE_URL && url !== '')) {
      problems.push(`${fp}: unsupported upstream network filter ${f.name ?? ''}${url ? ` (${url})` : ''} (supported: ${UPSTREAM_METADATA_EXCHANGE} with a google.protobuf.Struct config)`);
      return;
    }
    if (url === METADATA_EXCHANGE_TYPE_URL) {
      problems.push(`${fp}.typed_config: Trellis has no codec for ${url}; send its fields as a google.protobuf.Struct`);
      return;
    }
    const config = url === STRUCT_TYPE_URL ? structToJson(unpackAny<google.protobuf.Struct>(f.typed_config!)) : {};
    for (const key of Object.keys(config)) if (key !== 'protocol') problems.push(`${fp}.typed_config.${key}: not supported by Trellis`);
    if (config['protocol'] !== 'istio-peer-exchange') problems.push(`${fp}.typed_config.protocol: expected "istio-peer-exchange", got ${JSON.stringify(config['protocol'])}`);
    else exchange = true;
  });
  return exchange;
}

export function emptyClusterStats(): ClusterStats {
  return {
    upstream_rq_total: 0, upstream_rq_active: 0, upstream_rq_pending_active: 0, upstream_rq_pending_overflow: 0,
    upstream_rq_timeout: 0, upstream_rq_retry: 0, upstream_rq_retry_success: 0, upstream_rq_retry_overflow: 0,
    upstream_rq_retry_limit_exceeded: 0, retry_or_shadow_abandoned: 0, upstream_rq_rx_reset: 0, upstream_rq_tx_reset: 0, upstream_cx_total: 0,
    upstream_cx_active: 0, upstream_cx_connect_fail: 0, upstream_cx_connect_timeout: 0, upstream_cx_overflow: 0,
    upstream_cx_destroy: 0, upstream_rq_1xx: 0, upstream_rq_2xx: 0, upstream_rq_3xx: 0, upstream_rq_4xx: 0,
    upstream_rq_5xx: 0, membership_healthy: 0, membership_total: 0,
  };
}

interface TransportOption {
  /** Struct fields a host's `envoy.transport_socket_match` metadata must equal; undefined for the default socket. */
  readonly match: Record<string, unknown> | undefined;
  readonly name: string;
  readonly settings: PoolSettings;
}

interface CompiledCluster {
  readonly name: string;
  readonly statName: string;
  readonly type: ClusterType;
  readonly edsServiceName: string;
  readonly policy: LoadBalancerPolicy | undefined;
  readonly policyConfig: unknown;
  readonly panicThreshold: number;
  readonly localityWeighted: boolean;
  readonly limits: CircuitBreakerState;
  readonly protocol: ProtocolOptions;
  readonly transports: readonly TransportOption[];
  readonly loadAssignment: LoadAssignment | undefined;
  readonly dnsRefreshMs: number;
  readonly dnsFailureRefreshMs: number;
  readonly dnsFamily: string;
  readonly originalDst: { useHeader: boolean; headerName: string; portOverride: number | undefined; cleanupMs: number } | undefined;
  readonly outlierDetection: OutlierDetectionConfig | undefined;
  readonly healthCheck: HealthCheckConfig | undefined;
  readonly ignoreHealthOnHostRemoval: boolean;
  readonly upstreamMetadataExchange: boolean;
}

function compileTransportSocket(ts: TransportSocket | undefined, path: string, secrets: UpstreamSecretProvider, problems: string[]): UpstreamTls | undefined {
  if (!ts) return undefined;
  rejectUnsupported(ts, ['name', 'typed_config'], path, problems);
  const url = ts.typed_config?.type_url ?? '';
  if (url === RAW_BUFFER_TYPE_URL || (!ts.typed_config && ts.name === 'envoy.transport_sockets.raw_buffer')) return undefined;
  if (url !== UPSTREAM_TLS_CONTEXT_TYPE_URL) {
    problems.push(`${path}.typed_config: expected ${UPSTREAM_TLS_CONTEXT_TYPE_URL} or ${RAW_BUFFER_TYPE_URL}, got ${url || '(none)'}`);
    return undefined;
  }
  try {
    const ctx = unpackAny<envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext>(ts.typed_config!);
    return compileUpstreamTls(ctx, `${path}.typed_config`, secrets, problems);
  } catch (err) {
    problems.push(`${path}.typed_config: ${err instanceof CodecError ? err.message : String(err)}`);
    return undefined;
  }
}

function clusterTypeOf(t: Cluster['type']): ClusterType | undefined {
  if (t === undefined) return 'STATIC';
  if (typeof t === 'number') return DISCOVERY_TYPE_NUMBERS[t];
  return CLUSTER_TYPES.includes(t as ClusterType) ? (t as ClusterType) : undefined;
}

function compile(cluster: Cluster, context: ClusterCompileContext): CompiledCluster {
  const problems: string[] = [];
  const name = cluster.name ?? '';
  const path = `Cluster ${name || '(unnamed)'}`;
  if (!name) problems.push(`${path}.name: required`);
  // Each policy's own options are validated by the policy; the others must not be set.
  const policyFields = policyConfigFields();
  rejectUnsupported(cluster, [...SUPPORTED_FIELDS, ...policyFields.keys()], path, problems);
  if (cluster.cluster_type) problems.push(`${path}.cluster_type: custom cluster types are not supported`);
  const type = clusterTypeOf(cluster.type);
  if (!type) problems.push(`${path}.type: expected one of ${CLUSTER_TYPES.join(', ')}, got ${String(cluster.type)}`);

  // Load balancer.
  const lbName = typeof cluster.lb_policy === 'number' ? ['ROUND_ROBIN', 'LEAST_REQUEST', 'RING_HASH', 'RANDOM', 'MAGLEV', 'CLUSTER_PROVIDED'][cluster.lb_policy] : (cluster.lb_policy ?? 'ROUND_ROBIN');
  let policy: LoadBalancerPolicy | undefined;
  let policyConfig: unknown;
  if (type === 'ORIGINAL_DST') {
    if (lbName !== 'CLUSTER_PROVIDED') problems.push(`${path}.lb_policy: ORIGINAL_DST clusters require CLUSTER_PROVIDED, got ${lbName}`);
  } else {
    policy = lbName ? loadBalancerPolicy(lbName) : undefined;
    if (!policy) problems.push(`${path}.lb_policy: expected one of ${loadBalancerPolicyNames().join(', ')}, got ${String(cluster.lb_policy)}`);
    else policyConfig = policy.compile(cluster, path, problems);
  }
  for (const [field, owner] of policyFields) {
    if ((cluster as Record<string, unknown>)[field] !== undefined && owner !== lbName) problems.push(`${path}.${field}: only applies to lb_policy ${owner}, the cluster uses ${lbName}`);
  }
  const common = cluster.common_lb_config;
  rejectUnsupported(common, ['healthy_panic_threshold', 'locality_weighted_lb_config'], `${path}.common_lb_config`, problems);
  const panicThreshold = common?.healthy_panic_threshold ? (common.healthy_panic_threshold.value ?? 0) : 50;
  if (!(panicThreshold >= 0 && panicThreshold <= 100)) problems.push(`${path}.common_lb_config.healthy_panic_threshold.value: must be 0-100, got ${panicThreshold}`);
  const localityWeighted = common?.locality_weighted_lb_config !== undefined;

  // Circuit breakers: the DEFAULT priority's thresholds (Envoy defaults 1024/1024/1024/3).
  const cb = cluster.circuit_breakers;
  rejectUnsupported(cb, ['thresholds'], `${path}.circuit_breakers`, problems, 'is not supported (per-host thresholds are not)');
  let limits: CircuitBreakerState = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, retriesActive: 0 };
  // The cluster-wide usage the pools count and a retry budget is a share of.
  const resources: ClusterResources = { connections: 0, pendingRequests: 0, requests: 0 };
  const seen = new Set<string>();
  (cb?.thresholds ?? []).forEach((t, i) => {
    const tp = `${path}.circuit_breakers.thresholds[${i}]`;
    rejectUnsupported(t, ['priority', 'max_connections', 'max_pending_requests', 'max_requests', 'max_retries', 'retry_budget', 'track_remaining'], tp, problems);
    rejectUnsupported(t.retry_budget, ['budget_percent', 'min_retry_concurrency'], `${tp}.retry_budget`, problems);
    const retryBudget = compileRetryBudget(t.retry_budget, resources, `${tp}.retry_budget`, problems);
    const priority = t.priority === undefined || t.priority === 0 ? 'DEFAULT' : t.priority === 1 ? 'HIGH' : String(t.priority);
    if (seen.has(priority)) problems.push(`${tp}.priority: a second ${priority} threshold`);
    seen.add(priority);
    // HIGH thresholds apply to routes with priority HIGH; Trellis routes everything at DEFAULT, so only DEFAULT is used.
    if (priority === 'DEFAULT') {
      limits = {
        maxConnections: wrapped(t.max_connections, 1024),
        maxPendingRequests: wrapped(t.max_pending_requests, 1024),
        maxRequests: wrapped(t.max_requests, 1024),
        maxRetries: wrapped(t.max_retries, 3),
        ...(retryBudget ? { retryBudget } : {}),
        retriesActive: 0,
      };
    }
  });

  // Transport sockets and protocol.
  const secrets = context.secrets ?? NO_UPSTREAM_SECRETS;
  const defaultTls = compileTransportSocket(cluster.transport_socket, `${path}.transport_socket`, secrets, problems);
  const matchTls = (cluster.transport_socket_matches ?? []).map((m, i) => {
    const mp = `${path}.transport_socket_matches[${i}]`;
    rejectUnsupported(m, ['name', 'match', 'transport_socket'], mp, problems);
    return { name: m.name ?? `match-${i}`, match: structToJson(m.match), tls: compileTransportSocket(m.transport_socket, `${mp}.transport_socket`, secrets, problems) };
  });
  const anyTls = defaultTls !== undefined || matchTls.some((m) => m.tls !== undefined);
  const protocol = compileProtocolOptions(cluster, path, anyTls, problems);
  if (protocol.protocol === 'auto' && (!defaultTls || matchTls.some((m) => !m.tls))) {
    if (defaultTls || matchTls.length > 0) problems.push(`${path}.transport_socket: auto_config needs TLS on every transport socket`);
  }

  const connectTimeoutMs = durationMs(cluster.connect_timeout, 5000);
  if (connectTimeoutMs <= 0) problems.push(`${path}.connect_timeout: must be positive`);
  const uco = cluster.upstream_connection_options;
  rejectUnsupported(uco, ['tcp_keepalive'], `${path}.upstream_connection_options`, problems);
  rejectUnsupported(uco?.tcp_keepalive, ['keepalive_time'], `${path}.upstream_connection_options.tcp_keepalive`, problems, 'is not supported by Node sockets (only keepalive_time)');
  const tcpKeepaliveMs = uco?.tcp_keepalive ? wrapped(uco.tcp_keepalive.keepalive_time, 0) * 1000 : undefined;
  const bind = cluster.upstream_bind_config;
  rejectUnsupported(bind, ['source_address'], `${path}.upstream_bind_config`, problems);
  rejectUnsupported(bind?.source_address, ['address', 'port_value'], `${path}.upstream_bind_config.source_address`, problems);
  if (bind?.source_address?.port_value) problems.push(`${path}.upstream_bind_config.source_address.port_value: only 0 (any port) is supported`);
  const sourceAddress = bind?.source_address?.address || undefined;
  if (sourceAddress && isIP(sourceAddress) === 0) problems.push(`${path}.upstream_bind_config.source_address.address: "${sourceAddress}" is not an IP address`);

  const stats = emptyClusterStats();
  const settingsFor = (tls: UpstreamTls | undefined): PoolSettings => ({
    clusterName: name,
    stats,
    limits,
    resources,
    connectTimeoutMs,
    idleTimeoutMs: protocol.idleTimeoutMs,
    maxRequestsPerConnection: protocol.maxRequestsPerConnection,
    maxConcurrentStreams: protocol.maxConcurrentStreams,
    tls,
    tcpKeepaliveMs,
    sourceAddress,
  });
  const defaultSettings = settingsFor(defaultTls);
  const transports: TransportOption[] = [
    ...matchTls.map((m) => ({ match: m.match, name: m.name, settings: settingsFor(m.tls) })),
    { match: undefined, name: 'default', settings: defaultSettings },
  ];

  // Endpoints by cluster type.
  let loadAssignment: LoadAssignment | undefined;
  const eds = cluster.eds_cluster_config;
  if (eds && type !== 'EDS') problems.push(`${path}.eds_cluster_config: only applies to EDS clusters`);
  rejectUnsupported(eds, ['eds_config', 'service_name'], `${path}.eds_cluster_config`, problems);
  if (cluster.load_assignment && (type === 'EDS' || type === 'ORIGINAL_DST')) problems.push(`${path}.load_assignment: not allowed for ${type} clusters`);
  if (type === 'STATIC' || type === 'STRICT_DNS' || type === 'LOGICAL_DNS') {
    loadAssignment = compileLoadAssignment(cluster.load_assignment ?? {}, `${path}.load_assignment`, type === 'STATIC', problems);
    if (type === 'LOGICAL_DNS') {
      const eps = cluster.load_assignment?.endpoints ?? [];
      if (eps.length !== 1 || (eps[0]!.lb_endpoints ?? []).length !== 1) problems.push(`${path}.load_assignment: LOGICAL_DNS clusters need exactly one locality with one lb_endpoint`);
    }
  }
  const isDns = type === 'STRICT_DNS' || type === 'LOGICAL_DNS';
  for (const f of ['dns_refresh_rate', 'dns_failure_refresh_rate', 'respect_dns_ttl', 'dns_lookup_family'] as const) {
    // dns_lookup_family is set by Istio on every cluster; the others only make sense for DNS clusters.
    if (!isDns && f !== 'dns_lookup_family' && cluster[f] !== undefined && cluster[f] !== false) problems.push(`${path}.${f}: only applies to STRICT_DNS and LOGICAL_DNS clusters`);
  }
  rejectUnsupported(cluster.dns_failure_refresh_rate, ['base_interval'], `${path}.dns_failure_refresh_rate`, problems);
  const dnsRefreshMs = durationMs(cluster.dns_refresh_rate, 5000);
  if (isDns && dnsRefreshMs < 1) problems.push(`${path}.dns_refresh_rate: must be at least 1 ms`);
  const dnsFailureRefreshMs = durationMs(cluster.dns_failure_refresh_rate?.base_interval, dnsRefreshMs);
  const dnsFamily = typeof cluster.dns_lookup_family === 'number' ? ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'][cluster.dns_lookup_family] ?? 'AUTO' : (cluster.dns_lookup_family ?? 'AUTO');

  let originalDst: CompiledCluster['originalDst'];
  const od = cluster.original_dst_lb_config;
  if (od && type !== 'ORIGINAL_DST') problems.push(`${path}.original_dst_lb_config: only applies to ORIGINAL_DST clusters`);
  if (cluster.cleanup_interval && type !== 'ORIGINAL_DST') problems.push(`${path}.cleanup_interval: only applies to ORIGINAL_DST clusters`);
  if (type === 'ORIGINAL_DST') {
    rejectUnsupported(od, ['use_http_header', 'http_header_name', 'upstream_port_override'], `${path}.original_dst_lb_config`, problems);
    const portOverride = od?.upstream_port_override?.value;
    if (portOverride !== undefined && !(portOverride >= 1 && portOverride <= 65535)) problems.push(`${path}.original_dst_lb_config.upstream_port_override: must be 1-65535`);
    originalDst = {
      useHeader: od?.use_http_header === true,
      headerName: (od?.http_header_name || 'x-envoy-original-dst-host').toLowerCase(),
      portOverride,
      cleanupMs: durationMs(cluster.cleanup_interval, 5000),
    };
  }
  const outlierDetection = cluster.outlier_detection ? compileOutlierDetection(cluster.outlier_detection, `${path}.outlier_detection`, problems) : undefined;
  if (cluster.health_checks && cluster.health_checks.length > 0 && type === 'ORIGINAL_DST') problems.push(`${path}.health_checks: not supported on ORIGINAL_DST clusters (their hosts exist only while connections use them)`);
  const healthCheck = compileHealthChecks(cluster.health_checks, `${path}.health_checks`, name, problems);
  const upstreamMetadataExchange = compileUpstreamFilters(cluster.filters, `${path}.filters`, problems);
  if (problems.length > 0) throw new XdsValidationError(problems);
  return {
    name,
    statName: cluster.alt_stat_name || name,
    type: type!,
    edsServiceName: eds?.service_name || name,
    policy,
    policyConfig,
    panicThreshold,
    localityWeighted,
    limits,
    protocol,
    transports,
    loadAssignment,
    dnsRefreshMs,
    dnsFailureRefreshMs,
    dnsFamily,
    originalDst,
    outlierDetection,
    healthCheck,
    ignoreHealthOnHostRemoval: cluster.ignore_health_on_host_removal === true,
    upstreamMetadataExchange,
  };
}

/** A request whose pool is not known yet (ALPN negotiation under auto_config): buffers until bound. */
class DeferredRequest implements UpstreamRequest {
  private real: UpstreamRequest | undefined;
  private chunks: Buffer[] = [];
  private ended: { trailers: HttpHeaders | undefined } | undefined;
  private aborted = false;
  private drain: (() => void) | undefined;
  constructor(
    readonly headers: HttpHeaders,
    readonly handler: UpstreamResponseHandler,
  ) {}
  bind(real: UpstreamRequest): void {
    if (this.aborted) return real.abort();
    this.real = real;
    if (this.drain) real.onDrain(this.drain);
    for (const c of this.chunks) real.write(c);
    this.chunks = [];
    if (this.ended) real.end(this.ended.trailers);
  }
  fail(failure: UpstreamFailure, detail: string): void {
    if (!this.aborted) {
      this.aborted = true;
      this.handler.onFailure(failure, detail);
    }
  }
  write(chunk: Buffer): boolean {
    if (this.real) return this.real.write(chunk);
    this.chunks.push(chunk);
    return false;
  }
  end(trailers?: HttpHeaders): void {
    if (this.real) this.real.end(trailers);
    else this.ended = { trailers };
  }
  abort(): void {
    if (this.real) this.real.abort();
    this.aborted = true;
  }
  onDrain(callback: () => void): void {
    this.drain = callback;
    if (this.real) this.real.onDrain(callback);
  }
  // No response arrives before bind(), so there is nothing to pause until then.
  pauseResponse(): void {
    this.real?.pauseResponse();
  }
  resumeResponse(): void {
    this.real?.resumeResponse();
  }
}

/**
 * The HTTP/1.1 pool: the raw-socket pool (http1-lean-pool.ts) by default; TRELLIS_UPSTREAM_HTTP1_POOL=node selects the
 * node:http Agent pool, kept to compare the two in one benchmark run (docs/performance.md).
 */
const USE_NODE_HTTP1_POOL = process.env['TRELLIS_UPSTREAM_HTTP1_POOL'] === 'node';
function newHttp1Pool(host: HostImpl, settings: PoolSettings, adopt?: UpstreamSocket): ConnectionPool {
  return USE_NODE_HTTP1_POOL ? new Http1Pool(host, settings, adopt) : new Http1LeanPool(host, settings, adopt);
}

interface HostPools {
  h1?: ConnectionPool;
  h2?: Http2Pool;
  /** auto_config: the ALPN result for this host, once known. */
  negotiated?: 'h1' | 'h2';
  waiting?: DeferredRequest[];
  settings: PoolSettings;
}

interface DnsTarget {
  readonly spec: EndpointSpec;
  addresses: string[];
}

export class UpstreamClusterImpl implements UpstreamCluster {
  readonly name: string;
  readonly statName: string;
  readonly type: ClusterType;
  /** The service name EDS assignments arrive under (eds_cluster_config.service_name, else the cluster name). */
  readonly edsServiceName: string;
  readonly stats: ClusterStats;
  readonly circuitBreakers: CircuitBreakerState;
  /** Resolves when the cluster has its first hosts (EDS assignment, DNS answer) — Envoy's warming. */
  readonly ready: Promise<void>;
  warm = false;

  private readonly compiled: CompiledCluster;
  private readonly env: LbEnvironment;
  private readonly dnsLookup: DnsLookup;
  private hostList: HostImpl[] = [];
  private readonly byAddress = new Map<string, HostImpl>();
  private lb: PriorityLoadBalancer | undefined;
  private readonly pools = new Map<HostImpl, HostPools>();
  private readonly draining = new Set<Promise<void>>();
  private markReady!: () => void;
  private dnsTargets: DnsTarget[] = [];
  private dnsTimer: NodeJS.Timeout | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private readonly usedSinceCleanup = new Set<HostImpl>();
  private stopped = false;
  /** The last assignment's locality weights and overprovisioning, kept to rebuild the balancer when health changes. */
  private assignment: Pick<LoadAssignment, 'localityWeights' | 'overprovisioningFactor'> = { localityWeights: new Map(), overprovisioningFactor: 140 };
  readonly outlierDetector: OutlierDetector | undefined;
  readonly healthChecker: HealthChecker | undefined;
  /** Warming with active health checking: set once the first round of checks is being waited for. */
  private waitingForFirstChecks = false;

  constructor(
    readonly config: Cluster,
    compiled: CompiledCluster,
    context: ClusterCompileContext,
  ) {
    this.compiled = compiled;
    this.name = compiled.name;
    this.statName = compiled.statName;
    this.type = compiled.type;
    this.edsServiceName = compiled.edsServiceName;
    this.stats = compiled.transports[0]!.settings.stats;
    this.circuitBreakers = compiled.limits;
    const random = context.random ?? Math.random;
    this.env = { random };
    this.dnsLookup = context.dnsLookup ?? ((hostname) => lookup(hostname, { all: true }));
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    if (compiled.outlierDetection) this.outlierDetector = new OutlierDetector(compiled.outlierDetection, { random, onChange: () => this.rebuildLoadBalancer() });
    if (compiled.healthCheck) {
      const hc = compiled.healthCheck;
      this.healthChecker = new HealthChecker(hc, {
        connect: (host) => probeConnector(host.address, hc.altPort ?? host.port, this.transportFor(host).tls, hc.alpnProtocols),
        hasTraffic: () => this.stats.upstream_cx_total > 0,
        onChange: () => this.rebuildLoadBalancer(),
        onCheckComplete: (host, healthy) => {
          if (healthy) this.outlierDetector?.onActiveHealthCheckSuccess(host);
        },
        log: (message) => (context.log ?? ((m: string) => void process.stderr.write(`${m}\n`)))(`cluster ${this.name}: ${message}`),
        random,
      });
    }
    switch (compiled.type) {
      case 'STATIC':
        this.setHosts(compiled.loadAssignment!.endpoints, compiled.loadAssignment!);
        this.setWarm();
        break;
      case 'STRICT_DNS':
      case 'LOGICAL_DNS':
        this.dnsTargets = compiled.loadAssignment!.endpoints.map((spec) => ({ spec, addresses: [] }));
        void this.resolveDns();
        break;
      case 'ORIGINAL_DST':
        this.setWarm();
        this.cleanupTimer = setInterval(() => this.cleanupOriginalDst(), compiled.originalDst!.cleanupMs);
        this.cleanupTimer.unref();
        break;
      case 'EDS':
        this.setHosts([], { localityWeights: new Map(), overprovisioningFactor: 140 });
        break;
    }
  }

  /** Marks the cluster warm; with active health checking only after every host's first check (Envoy's initialisation). */
  private setWarm(): void {
    if (this.healthChecker && !this.warm) {
      if (this.waitingForFirstChecks) return;
      this.waitingForFirstChecks = true;
      void this.healthChecker.firstRound().then(() => {
        this.warm = true;
        this.markReady();
      });
      return;
    }
    if (!this.warm) {
      this.warm = true;
      this.markReady();
    }
  }

  /** The cluster's hosts, all priorities. */
  get hosts(): readonly HostImpl[] {
    return this.hostList;
  }

  get loadBalancer(): PriorityLoadBalancer | undefined {
    return this.lb;
  }

  /** Replaces the hosts, keeping the identity (pool, counters) of hosts whose address stays; drains removed hosts' pools. */
  private setHosts(specs: readonly EndpointSpec[], assignment: Pick<LoadAssignment, 'localityWeights' | 'overprovisioningFactor'>): void {
    const next: HostImpl[] = [];
    const keep = new Set<HostImpl>();
    for (const spec of specs) {
      const probe = new HostImpl(spec.address, spec.port);
      let host = this.byAddress.get(probe.addressText);
      if (host && keep.has(host)) continue; // the same address twice: the first wins, like Envoy's host map
      if (!host) {
        host = probe;
        this.byAddress.set(host.addressText, host);
      }
      host.weight = spec.weight;
      host.priority = spec.priority;
      host.locality = spec.locality;
      host.health = spec.health;
      host.metadata = spec.metadata;
      host.hostname = spec.hostname;
      host.healthFlags.pendingDynamicRemoval = false;
      keep.add(host);
      next.push(host);
    }
    for (const [address, host] of this.byAddress) {
      if (keep.has(host)) continue;
      // Envoy: with active health checking, a host discovery removed stays (and keeps serving) while it passes its
      // checks, unless ignore_health_on_host_removal; it leaves when a check fails.
      if (this.healthChecker && !this.compiled.ignoreHealthOnHostRemoval && !host.healthFlags.failedActiveHc) {
        host.healthFlags.pendingDynamicRemoval = true;
        next.push(host);
        continue;
      }
      this.byAddress.delete(address);
      this.drainHost(host);
    }
    this.hostList = next;
    this.assignment = assignment;
    // New hosts get their health-check session (starting FAILED_ACTIVE_HC) and outlier monitor before balancing sees them.
    this.healthChecker?.setHosts(next);
    this.outlierDetector?.setHosts(next);
    this.rebuildLoadBalancer();
  }

  /**
   * Rebuilds the priority set and balancer from the hosts' current health (EDS status, active health checking, outlier
   * ejection), as Envoy does on every host health change; requests already routed keep their host.
   */
  private rebuildLoadBalancer(): void {
    if (this.stopped && this.lb) return;
    const leaving = this.hostList.filter((h) => h.healthFlags.pendingDynamicRemoval && h.healthFlags.failedActiveHc);
    if (leaving.length > 0) {
      // Hosts kept after their removal from discovery only while healthy: a failed check takes them out for good.
      this.hostList = this.hostList.filter((h) => !leaving.includes(h));
      for (const h of leaving) {
        this.byAddress.delete(h.addressText);
        this.drainHost(h);
      }
      this.healthChecker?.setHosts(this.hostList);
      this.outlierDetector?.setHosts(this.hostList);
    }
    // The priority set classifies each host's health once; the membership gauges read its counts.
    const set = buildPrioritySet(this.hostList, this.assignment.localityWeights, this.assignment.overprovisioningFactor);
    this.stats.membership_total = set.totalHosts;
    this.stats.membership_healthy = set.healthyHosts;
    this.membershipDegraded = set.degradedHosts;
    if (this.compiled.policy) {
      this.lb = new PriorityLoadBalancer(set, this.compiled.policy, this.compiled.policyConfig, this.env, {
        panicThreshold: this.compiled.panicThreshold,
        localityWeighted: this.compiled.localityWeighted,
      });
    }
  }

  private membershipDegraded = 0;

  /** Envoy's outlier_detection.* and health_check.* stats, and membership_degraded. */
  healthStats(): Record<string, number> {
    const out: Record<string, number> = { membership_degraded: this.membershipDegraded };
    if (this.outlierDetector) for (const [k, v] of Object.entries(this.outlierDetector.stats)) out[`outlier_detection.${k}`] = v;
    if (this.healthChecker) for (const [k, v] of Object.entries(this.healthChecker.stats)) out[`health_check.${k}`] = v;
    return out;
  }

  reportResult(host: UpstreamHost, result: number | UpstreamFailure | 'tcp_connected'): void {
    if (!this.outlierDetector) return;
    const r = outlierResultOf(result);
    if (r) this.outlierDetector.putResult(host as HostImpl, r);
  }

  /** EDS: validates and applies a ClusterLoadAssignment; throws XdsValidationError (the NACK) and keeps the old hosts on error. */
  applyLoadAssignment(cla: ClusterLoadAssignment): void {
    if (this.type !== 'EDS') throw new XdsValidationError([`ClusterLoadAssignment ${cla.cluster_name ?? ''}: cluster ${this.name} is ${this.type}, not EDS`]);
    const problems: string[] = [];
    const assignment = compileLoadAssignment(cla, `ClusterLoadAssignment ${cla.cluster_name ?? this.edsServiceName}`, true, problems);
    if (problems.length > 0) throw new XdsValidationError(problems);
    this.setHosts(assignment.endpoints, assignment);
    this.setWarm();
  }

  private lookupFamily(addresses: readonly { address: string; family: number }[]): string[] {
    const v4 = addresses.filter((a) => a.family === 4).map((a) => a.address);
    const v6 = addresses.filter((a) => a.family === 6).map((a) => a.address);
    switch (this.compiled.dnsFamily) {
      case 'V4_ONLY':
        return v4;
      case 'V6_ONLY':
        return v6;
      case 'V4_PREFERRED':
        return v4.length > 0 ? v4 : v6;
      case 'ALL':
        return [...v4, ...v6];
      default: // AUTO: IPv6 when there is any, else IPv4
        return v6.length > 0 ? v6 : v4;
    }
  }

  /**
   * STRICT_DNS: every address of every endpoint becomes a host; LOGICAL_DNS: the first address of the single endpoint.
   * A failed name keeps its previous addresses and the next attempt comes after dns_failure_refresh_rate. respect_dns_ttl is
   * accepted but getaddrinfo reports no TTL, so refreshes follow dns_refresh_rate.
   */
  private async resolveDns(): Promise<void> {
    let failed = false;
    await Promise.all(
      this.dnsTargets.map(async (t) => {
        try {
          const literal = isIP(t.spec.address) !== 0;
          const found = literal ? [t.spec.address] : this.lookupFamily(await this.dnsLookup(t.spec.address));
          t.addresses = this.type === 'LOGICAL_DNS' ? found.slice(0, 1) : found;
        } catch {
          failed = true;
        }
      }),
    );
    if (this.stopped) return;
    const specs: EndpointSpec[] = [];
    for (const t of this.dnsTargets) for (const address of t.addresses) specs.push({ ...t.spec, address, hostname: t.spec.hostname || t.spec.address });
    this.setHosts(specs, this.compiled.loadAssignment!);
    this.setWarm();
    this.dnsTimer = setTimeout(() => void this.resolveDns(), failed ? this.compiled.dnsFailureRefreshMs : this.compiled.dnsRefreshMs);
    this.dnsTimer.unref();
  }

  get upstreamMetadataExchange(): boolean {
    return this.compiled.upstreamMetadataExchange;
  }

  /** One connection to `host` outside the pools (tcp_proxy), over the host's transport (TLS when configured), counted as pooled ones are. */
  connect(host: UpstreamHost, alpn?: readonly string[]): UpstreamSocket {
    return connectUpstream(host as HostImpl, this.transportFor(host as HostImpl), alpn);
  }

  /** upstream_bind_config.source_address: the address upstream connections leave from (the same for every transport). */
  get upstreamBindAddress(): string | undefined {
    return this.compiled.transports[0]!.settings.sourceAddress;
  }

  chooseHost(context: LoadBalancerContext): UpstreamHost | undefined {
    if (this.type === 'ORIGINAL_DST') return this.originalDstHost(context);
    return this.lb?.chooseHost(context);
  }

  private originalDstHost(context: LoadBalancerContext): HostImpl | undefined {
    const od = this.compiled.originalDst!;
    let target: string | undefined;
    if (od.useHeader && context.requestHeaders) {
      const v = context.requestHeaders[od.headerName];
      target = Array.isArray(v) ? v[0] : v;
    }
    target ??= context.originalDestination;
    if (!target) return undefined;
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:]+):(\d+)$/.exec(target);
    if (!m || isIP(m[1]!) === 0) return undefined;
    const port = od.portOverride ?? Number(m[2]);
    if (!(port >= 1 && port <= 65535)) return undefined;
    const probe = new HostImpl(m[1]!, port);
    let host = this.byAddress.get(probe.addressText);
    if (!host) {
      host = probe;
      this.byAddress.set(host.addressText, host);
      this.hostList = [...this.hostList, host];
      this.stats.membership_total = this.stats.membership_healthy = this.hostList.length;
      this.outlierDetector?.setHosts(this.hostList);
    }
    this.usedSinceCleanup.add(host);
    return host;
  }

  /** Envoy's cleanup_interval: original-destination hosts unused for a whole interval are removed. */
  private cleanupOriginalDst(): void {
    const keep = this.hostList.filter((h) => this.usedSinceCleanup.has(h) || h.stats.rqActive > 0);
    for (const h of this.hostList) {
      if (!keep.includes(h)) {
        this.byAddress.delete(h.addressText);
        this.drainHost(h);
      }
    }
    this.hostList = keep;
    this.stats.membership_total = this.stats.membership_healthy = keep.length;
    this.outlierDetector?.setHosts(keep);
    this.usedSinceCleanup.clear();
  }

  private transportFor(host: HostImpl): PoolSettings {
    const matchMeta = host.metadata['envoy.transport_socket_match'] ?? {};
    for (const t of this.compiled.transports) {
      if (!t.match) return t.settings;
      if (Object.entries(t.match).every(([k, v]) => JSON.stringify(matchMeta[k]) === JSON.stringify(v))) return t.settings;
    }
    return this.compiled.transports[this.compiled.transports.length - 1]!.settings;
  }

  private poolsFor(host: HostImpl): HostPools {
    let p = this.pools.get(host);
    if (!p) {
      p = { settings: this.transportFor(host) };
      this.pools.set(host, p);
    }
    return p;
  }

  request(host: UpstreamHost, headers: HttpHeaders, handler: UpstreamResponseHandler, options?: UpstreamRequestOptions): UpstreamRequest {
    const h = host as HostImpl;
    const current = this.byAddress.get(h.addressText) === h;
    const pools = this.poolsFor(h);
    let pool: ConnectionPool;
    switch (this.compiled.protocol.protocol) {
      case 'http1':
        pool = pools.h1 ??= newHttp1Pool(h, pools.settings);
        break;
      case 'http2':
        pool = pools.h2 ??= new Http2Pool(h, pools.settings);
        break;
      case 'downstream':
        pool = options?.downstreamProtocol === 'HTTP/2' ? (pools.h2 ??= new Http2Pool(h, pools.settings)) : (pools.h1 ??= newHttp1Pool(h, pools.settings));
        break;
      case 'auto':
        if (pools.negotiated === 'h2') pool = pools.h2!;
        else if (pools.negotiated === 'h1') pool = pools.h1!;
        else return this.negotiate(h, pools, headers, handler);
        break;
    }
    const stream = pool.newStream(headers, handler);
    // A host removed while this request was being routed: its pool closes once the request is done.
    if (!current) this.drainHost(h);
    return stream;
  }

  /** auto_config: the first connection offers h2 and http/1.1 by ALPN; its answer picks the host's pool, which adopts the socket. */
  private negotiate(host: HostImpl, pools: HostPools, headers: HttpHeaders, handler: UpstreamResponseHandler): UpstreamRequest {
    const deferred = new DeferredRequest(headers, handler);
    const waiting = (pools.waiting ??= []);
    waiting.push(deferred);
    if (waiting.length > 1) return deferred;
    const socket = connectUpstream(host, pools.settings, ['h2', 'http/1.1']);
    socket.once('secureConnect', () => {
      if ((socket as TLSSocket).alpnProtocol === 'h2') {
        pools.negotiated = 'h2';
        pools.h2 = new Http2Pool(host, pools.settings, socket);
      } else {
        pools.negotiated = 'h1';
        pools.h1 = newHttp1Pool(host, pools.settings, socket);
      }
      const pool: ConnectionPool = pools.h2 ?? pools.h1!;
      const list = pools.waiting ?? [];
      pools.waiting = undefined;
      for (const d of list) d.bind(pool.newStream(d.headers, d.handler));
    });
    socket.once('close', () => {
      if (pools.negotiated) return;
      const list = pools.waiting ?? [];
      pools.waiting = undefined;
      for (const d of list) d.fail(socket[kConnectFailure] ?? 'connect_failure', `connection to ${host.addressText} failed during ALPN negotiation`);
    });
    return deferred;
  }

  private drainHost(host: HostImpl): void {
    const p = this.pools.get(host);
    if (!p) return;
    this.pools.delete(host);
    for (const pool of [p.h1, p.h2]) {
      if (!pool) continue;
      const done = pool.drain().finally(() => this.draining.delete(done));
      this.draining.add(done);
    }
  }

  /** Open connections of every pool (for leak checks and the admin page). */
  get connectionCount(): number {
    let n = 0;
    for (const p of this.pools.values()) n += (p.h1?.connectionCount ?? 0) + (p.h2?.connectionCount ?? 0);
    return n;
  }

  /** Stops DNS refresh and cleanup; lets in-flight requests finish, then closes every connection. */
  drain(): Promise<void> {
    this.stopped = true;
    this.healthChecker?.stop();
    this.outlierDetector?.stop();
    if (this.dnsTimer) clearTimeout(this.dnsTimer);
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    for (const host of [...this.pools.keys()]) this.drainHost(host);
    return Promise.all([...this.draining]).then(() => undefined);
  }

  /** Closes everything now. */
  destroy(): void {
    this.stopped = true;
    this.healthChecker?.stop();
    this.outlierDetector?.stop();
    if (this.dnsTimer) clearTimeout(this.dnsTimer);
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    for (const p of this.pools.values()) {
      p.h1?.destroy();
      p.h2?.destroy();
    }
    this.pools.clear();
  }
}

/** Validates `cluster` (every unsupported field → XdsValidationError with its path) and builds the live cluster. */
export function compileCluster(cluster: Cluster, context: ClusterCompileContext = {}): UpstreamClusterImpl {
  return new UpstreamClusterImpl(cluster, compile(cluster, context), context);
}
