// Proxy start-up and wiring, the only file that sees all of proxy: bootstrap → clusters, routes, listeners (static and over ADS) → admin.
//
// The applied config is one immutable snapshot (clusters, endpoints, route tables, listeners, secrets) replaced
// as a whole on every accepted change; route lookups and access logs read the current snapshot, so a request
// sees either the old config or the new one. Over ADS, each resource is compiled while it is decoded, so a
// compile failure refuses (NACKs) that resource with the compiler's message and the others still apply.
// Start-up follows Envoy's warming order: CDS, then EDS of those clusters, then LDS, then RDS of those listeners.
// SDS secrets come from ADS (`sds_config: { ads: {} }`) or from an SDS server behind a static cluster (Istio's
// sds-grpc), one stream per server; listeners warm until the secrets they reference arrive.
import { hostname } from 'node:os';
import { ConfigValidationError, describeError, XdsValidationError } from '../common/errors.js';
import { TRELLIS_VERSION } from '../common/version.js';
import { unpackAny, type Any } from '../xds/codec.js';
import type { envoy } from '../xds/generated/types.js';
import {
  WILDCARD,
  XdsClient,
  clusterLoadAssignmentResourceType,
  clusterResourceType,
  listenerResourceType,
  routeConfigurationResourceType,
  secretResourceType,
  type NackEvent,
  type ResourceUpdate,
  type XdsResourceType,
} from '../xds/client/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET } from '../xds/type-urls.js';
import { accessLogEntry, closeAccessLogFiles, compileAccessLogs, type AccessLogger } from './admin/access-log.js';
import { startAdminServer, type AdminServer, type AdminView, type ServerState } from './admin/admin-server.js';
import type { ClusterView } from './admin/clusters-page.js';
import type { AppliedResource, ConfigDumpInput, ResourceError } from './admin/config-dump.js';
import { ProxyLog, type LogLevel } from './admin/log-levels.js';
import { StatsBuilder, listenerStatScope, type StatSample } from './admin/stats.js';
import { loadBootstrap, type Cluster, type Listener, type ProxyBootstrap, type ProxyNode, type Secret } from './bootstrap.js';
import type { StreamInfo } from './http/stream-info.js';
import { createHttpFilterRegistry } from './filters/registry.js';
import { SpanExporterPool } from './filters/tracing/tracing-filter.js';
import { IstioMetrics } from './filters/istio-stats/metrics.js';
import { IstioTcpMetrics } from './filters/istio-stats/tcp-metrics.js';
import { TrellisListenerManager } from './listeners/listener-manager.js';
import { SdsClients } from './sds-clients.js';
import { clusterSecretReferences, listenerSecretReferences, type SecretReference } from './secret-references.js';
import { compileRouteConfiguration } from './router/compile-route-table.js';
import type { CompiledListener, HttpFilterRegistry, ListenerContext, ListenerManager, ListenerStatus } from './listeners/types.js';
import type { RouteTable } from './router/route-table.js';
import { NO_SECRETS, type SecretProvider } from './transport/secret-provider.js';
import { compileCluster } from './upstream/cluster.js';
import { ClusterManagerImpl } from './upstream/cluster-manager.js';
import { compileLoadAssignment } from './upstream/endpoints.js';
import type { ClusterManager, UpstreamHost } from './upstream/types.js';

type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;

const HCM_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

// --- what main needs from the data path (implemented in data-plane.ts over the listener, router and upstream modules) ---

/** The cluster manager as main drives it: compile (validate) one cluster, swap the whole set, feed EDS. */
export interface ClusterBackend {
  /** What listeners and the router look clusters up in; always reflects the last apply. */
  readonly manager: ClusterManager;
  /** Validates and compiles; throws XdsValidationError with every problem (→ NACK or start-up refusal). */
  compile(cluster: Cluster): unknown;
  /**
   * Makes the active set exactly `clusters` (compiled by compile()); `assignment(name)` gives an EDS cluster its
   * last known ClusterLoadAssignment (by service_name). Unchanged clusters keep their hosts, pools and stats.
   */
  apply(clusters: readonly { readonly config: Cluster; readonly compiled: unknown }[], assignment: (serviceName: string) => ClusterLoadAssignment | undefined): void | Promise<void>;
  /** A new ClusterLoadAssignment for the EDS clusters whose service_name (or name) is `serviceName`. */
  applyLoadAssignment(serviceName: string, assignment: ClusterLoadAssignment): void;
  /** The hosts of a cluster, for /clusters. */
  hosts(clusterName: string): readonly UpstreamHost[];
  close(): void | Promise<void>;
}

/** Everything main wires together; the default comes from data-plane.ts, tests may pass their own. */
export interface DataPlane {
  readonly clusters: ClusterBackend;
  /** Istio's standard metrics recorded by istio.stats filters, shown on /stats/prometheus. */
  readonly istioMetrics?: IstioMetrics;
  /** Istio's TCP metrics recorded for tcp_proxy connections by the istio.stats network filter. */
  readonly istioTcpMetrics?: IstioTcpMetrics;
  /** Span exporters of the tracing filter: flushed when the proxy stops. */
  readonly spanExporters?: SpanExporterPool;
  readonly httpFilters: HttpFilterRegistry;
  /** The router's compiler; throws XdsValidationError. */
  compileRouteConfiguration(config: RouteConfiguration): RouteTable;
  createListenerManager(context: ProxyListenerContext): ListenerManager;
}

/** The ListenerContext main gives the listener manager, plus what the HCM and TLS contexts also use. */
export interface ProxyListenerContext extends ListenerContext {
  readonly compileRouteConfiguration: (config: RouteConfiguration) => RouteTable;
  readonly secrets: SecretProvider;
}

// --- the applied snapshot ------------------------------------------------------------------------------------

interface AppliedCluster extends AppliedResource<Cluster> {
  readonly compiled: unknown;
  /** SDS secrets its transport sockets reference. */
  readonly secretRefs: readonly SecretReference[];
}

interface AppliedRoute extends AppliedResource<RouteConfiguration> {
  readonly table: RouteTable;
}

interface AppliedListener extends AppliedResource<Listener> {
  /** Undefined while the listener warms: an SDS secret it references has not arrived yet. */
  readonly compiled: CompiledListener | undefined;
  /** SDS secrets its filter chains reference. */
  readonly secretRefs: readonly SecretReference[];
  /** Route names its HCMs take from RDS. */
  readonly routeNames: readonly string[];
  /** Inline route_config of its HCMs (for config_dump's static route configs). */
  readonly inlineRoutes: readonly RouteConfiguration[];
  /** Access loggers by HCM stat_prefix. */
  readonly accessLogs: ReadonlyMap<string, readonly AccessLogger[]>;
}

type AppliedWithSecrets = Pick<AppliedListener, 'secretRefs'>;

/** The whole applied configuration; never mutated, replaced as a whole. */
interface ConfigSnapshot {
  readonly clusters: ReadonlyMap<string, AppliedCluster>;
  /** By service name (EDS resource name). */
  readonly endpoints: ReadonlyMap<string, AppliedResource<ClusterLoadAssignment>>;
  readonly routes: ReadonlyMap<string, AppliedRoute>;
  readonly listeners: ReadonlyMap<string, AppliedListener>;
  readonly secrets: ReadonlyMap<string, AppliedResource<Secret>>;
  readonly clustersVersion: string;
  readonly listenersVersion: string;
}

const EMPTY_SNAPSHOT: ConfigSnapshot = {
  clusters: new Map(),
  endpoints: new Map(),
  routes: new Map(),
  listeners: new Map(),
  secrets: new Map(),
  clustersVersion: '',
  listenersVersion: '',
};

// --- options and the running proxy --------------------------------------------------------------------------

export interface ProxyOptions {
  readonly bootstrapPath: string;
  readonly logLevel?: LogLevel;
  /** The command line, for /server_info. */
  readonly commandLine?: readonly string[];
  /** Envoy's initial_fetch_timeout: how long start-up waits for each xDS type before going on. Default 15 s. */
  readonly initialFetchTimeoutMs?: number;
  /** How long listeners drain on shutdown (Envoy's --drain-time-s). Default 5 s. */
  readonly drainTimeMs?: number;
  /** Called when /quitquitquit asks the proxy to exit (after it stopped). */
  readonly onQuit?: () => void;
  /** Node metadata added to the bootstrap's, as pilot-agent adds its ISTIO_META_* environment (DNS_CAPTURE, DNS_AUTO_ALLOCATE). */
  readonly nodeMetadata?: Readonly<Record<string, string>>;
  /** Replaces the data path (tests). */
  readonly dataPlane?: DataPlane;
  readonly log?: ProxyLog;
}

export interface RunningProxy {
  readonly bootstrap: ProxyBootstrap;
  /** The admin listener, when the bootstrap has one. */
  readonly admin?: AdminServer;
  readonly xds?: XdsClient;
  state(): ServerState;
  /** Stops accepting and waits (at most the drain time) for in-flight requests. */
  drain(): Promise<void>;
  /** Envoy's /drain_listeners (see ListenerManager.drainListeners); resolves when the chosen listeners stopped. */
  drainListeners(options: { readonly graceful: boolean; readonly inboundOnly: boolean; readonly skipExit?: boolean }): Promise<void>;
  /** Open downstream connections of the listeners with this traffic_direction (all listeners when omitted). */
  activeDownstreamConnections(direction?: 'INBOUND' | 'OUTBOUND'): number;
  /** Closes listeners, the xDS stream, clusters and admin now. */
  stop(): Promise<void>;
}

/** Static resources the data path refused at start-up (exit code 1), each problem with the bootstrap file and path. */
export class ProxyStartupError extends ConfigValidationError {}

/** Starts a proxy from a bootstrap file. Throws ConfigError / ConfigValidationError / ProxyStartupError when it cannot start. */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const loaded = loadBootstrap(options.bootstrapPath);
  const extra = Object.entries(options.nodeMetadata ?? {}).map(([k, v]) => [k, { string_value: v }] as const);
  const bootstrap: ProxyBootstrap = extra.length === 0
    ? loaded
    : { ...loaded, node: { ...loaded.node, metadata: { fields: { ...(loaded.node.metadata?.fields ?? {}), ...Object.fromEntries(extra) } } } };
  // Clusters read SDS secrets when they connect; the proxy that holds them exists only after the data plane.
  let proxyRef: ProxyServer | undefined;
  const secrets: SecretProvider = { get: (name) => proxyRef?.secret(name) };
  // One log for the proxy and its filters (jwt_authn logs its refusals and JWKS fetch failures through it).
  const log = options.log ?? new ProxyLog(options.logLevel ?? 'info');
  const dataPlane = options.dataPlane ?? (await createDataPlane({ drainGraceMs: options.drainTimeMs ?? 5000, secrets, log, node: bootstrap.node, ...(options.initialFetchTimeoutMs !== undefined ? { warmingTimeoutMs: options.initialFetchTimeoutMs } : {}) }));
  const proxy = new ProxyServer(bootstrap, { ...options, log }, dataPlane);
  proxyRef = proxy;
  try {
    await proxy.start();
  } catch (err) {
    await proxy.stop().catch(() => undefined);
    throw err;
  }
  return proxy;
}

class ProxyServer implements RunningProxy {
  readonly bootstrap: ProxyBootstrap;
  admin?: AdminServer;
  xds?: XdsClient;
  /** Streams to SDS servers named by api_config_source (Istio's sds-grpc), one per static cluster. */
  private sdsClients: SdsClients<Compiled<Secret, undefined>> | undefined;

  private readonly log: ProxyLog;
  private readonly options: ProxyOptions;
  private readonly dataPlane: DataPlane;
  private readonly listenerManager: ListenerManager;
  private readonly startedAt = Date.now();
  private readonly bootstrapLoaded = new Date();
  private config: ConfigSnapshot = EMPTY_SNAPSHOT;
  private serverState: ServerState = 'PRE_INITIALIZING';
  private stopping: Promise<void> | undefined;
  /** Serialises config changes: each builds its snapshot from the one before. */
  private changes: Promise<void> = Promise.resolve();
  /** The last refusal per resource, by type URL, for config_dump's error_state. */
  private readonly errors = new Map<string, Map<string, ResourceError>>();
  private readonly counters = new Map<string, number>();
  /** LDS listeners waiting for their RDS (Envoy's listener warming), applied together once all routes are held. */
  private warmingListeners: { listeners: Map<string, AppliedListener>; version: string; timer: NodeJS.Timeout } | undefined;
  private readonly firstUpdate = new Map<string, () => void>();
  /** Listeners whose secrets did not come within the initial fetch timeout, by name; activated when they do. */
  private readonly awaitingSecrets = new Map<string, AppliedListener>();
  /** CDS clusters waiting for their SDS secrets (Envoy's cluster warming), by name; not in the applied snapshot yet. */
  private readonly warmingClusters = new Map<string, AppliedCluster>();
  private clusterWarmingTimer: NodeJS.Timeout | undefined;
  /** Static listeners while start-up waits for their secrets (so their SDS subscriptions exist). */
  private staticWarming: readonly AppliedListener[] | undefined;

  constructor(bootstrap: ProxyBootstrap, options: ProxyOptions, dataPlane: DataPlane) {
    this.bootstrap = bootstrap;
    this.options = options;
    this.dataPlane = dataPlane;
    this.log = options.log ?? new ProxyLog(options.logLevel ?? 'info');
    const secrets: SecretProvider = { get: (name) => this.config.secrets.get(name)?.resource };
    const context: ProxyListenerContext = {
      clusters: dataPlane.clusters.manager,
      routes: { get: (name) => this.config.routes.get(name)?.table },
      httpFilters: dataPlane.httpFilters,
      onHttpStreamComplete: (info) => this.logStream(info),
      nodeId: bootstrap.node.id,
      compileRouteConfiguration: (config) => dataPlane.compileRouteConfiguration(config),
      secrets,
      networkFilterDeps: { node: bootstrap.node, ...(dataPlane.istioTcpMetrics ? { tcpMetrics: dataPlane.istioTcpMetrics } : {}) },
    };
    this.listenerManager = dataPlane.createListenerManager(context);
  }

  state(): ServerState {
    return this.serverState;
  }

  secret(name: string): Secret | undefined {
    return this.config.secrets.get(name)?.resource;
  }

  async start(): Promise<void> {
    const b = this.bootstrap;
    // The admin listener comes first, so /ready answers PRE_INITIALIZING while xDS warms up (as Envoy).
    if (b.admin) this.admin = await startAdminServer(this.adminView(), b.admin.address, b.admin.port);

    // Static resources: any refusal stops the start-up with the resource's bootstrap path.
    const problems: string[] = [];
    const now = new Date();
    const secrets = new Map(b.secrets.map((s) => [s.name!, { name: s.name!, resource: s, lastUpdated: now }]));
    this.config = { ...this.config, secrets };
    const clusters = new Map<string, AppliedCluster>();
    b.clusters.forEach((cluster, i) => {
      try {
        const secretRefs = this.clusterSecrets(cluster);
        clusters.set(cluster.name!, { name: cluster.name!, resource: cluster, lastUpdated: now, compiled: this.dataPlane.clusters.compile(cluster), secretRefs });
      } catch (err) {
        problems.push(...detailsOf(err).map((d) => `${b.source}: static_resources.clusters[${i}]: ${d}`));
      }
    });
    const listeners = new Map<string, AppliedListener>();
    b.listeners.forEach((listener, i) => {
      try {
        const applied = this.compileListener(listener, undefined, now);
        if (!b.ads && applied.routeNames.length > 0) {
          problems.push(`${b.source}: static_resources.listeners[${i}]: uses RDS (${applied.routeNames.join(', ')}) but the bootstrap has no dynamic_resources.ads_config`);
        }
        listeners.set(listener.name!, applied);
      } catch (err) {
        problems.push(...detailsOf(err).map((d) => `${b.source}: static_resources.listeners[${i}]: ${d}`));
      }
    });
    if (problems.length > 0) throw new ProxyStartupError(problems);

    await this.commit({ ...this.config, clusters });
    this.serverState = 'INITIALIZING';

    const timeout = this.options.initialFetchTimeoutMs ?? 15_000;
    if (b.ads) {
      this.startXds();
      if (b.ads.cds) {
        await this.waitFirst(CLUSTER, timeout);
        await this.waitFor(() => this.missingEndpoints().length === 0, timeout);
      }
      await this.warmStaticListeners(listeners, timeout);
      // Static listeners start once the clusters are there (Envoy's init order), with the routes they need.
      // Queued like every xDS change, so the snapshot it builds on is the one current when it runs.
      await this.enqueue(() => this.commit({ ...this.config, listeners: new Map([...this.config.listeners, ...listeners]) }, true));
      this.syncRouteSubscriptions([...listeners.values()]);
      if (b.ads.lds) {
        this.xds!.subscribe(LISTENER, WILDCARD);
        await this.waitFirst(LISTENER, timeout);
      }
      await this.waitFor(() => this.warmingListeners === undefined && this.missingRoutes([...this.config.listeners.values()]).length === 0, timeout);
    } else {
      await this.warmStaticListeners(listeners, timeout);
      await this.commit({ ...this.config, listeners }, true);
    }
    this.serverState = 'LIVE';
    this.log.info('main', `proxy live: ${this.config.listeners.size} listeners, ${this.config.clusters.size} clusters${b.ads ? `, xDS ${b.ads.server} (${b.ads.mode})` : ''}`);
  }

  /**
   * Envoy's init order for SDS: clusters and static listeners wait for the secrets they reference, at most the initial
   * fetch timeout, without limit when every missing secret's sds_config says `initial_fetch_timeout: 0s` (as Istio
   * writes for default/ROOTCA). Static listeners are compiled once theirs are held; one still without them waits
   * outside the active set (activated when they come); one that fails to compile otherwise stops the start-up.
   */
  private async warmStaticListeners(listeners: Map<string, AppliedListener>, timeoutMs: number): Promise<void> {
    const b = this.bootstrap;
    this.staticWarming = [...listeners.values()];
    this.syncSecretSubscriptions();
    const refs = (): readonly AppliedWithSecrets[] => [...this.config.clusters.values(), ...this.warmingClusters.values(), ...listeners.values()];
    if (this.missingSecrets(refs()).length > 0) {
      this.log.info('config', `waiting for SDS secrets ${this.missingSecrets(refs()).join(', ')}`);
      await this.waitFor(() => this.missingSecrets(refs()).length === 0, timeoutMs);
      while (this.missingSecrets(refs()).length > 0 && this.waitsWithoutLimit(refs()) && !this.stopping) {
        await this.waitFor(() => this.missingSecrets(refs()).length === 0, 1_000);
      }
    }
    this.staticWarming = undefined;
    const missing = this.missingSecrets(refs());
    if (missing.length > 0) this.log.warn('config', `SDS secrets ${missing.join(', ')} not delivered within the initial fetch timeout (${timeoutMs} ms)`);
    const problems: string[] = [];
    b.listeners.forEach((listener, i) => {
      const applied = listeners.get(listener.name!);
      if (!applied || applied.compiled) return;
      if (this.missingSecrets([applied]).length > 0) {
        this.awaitSecrets(applied);
        listeners.delete(listener.name!);
        return;
      }
      try {
        listeners.set(listener.name!, { ...applied, compiled: this.listenerManager.compile(listener) });
      } catch (err) {
        problems.push(...detailsOf(err).map((d) => `${b.source}: static_resources.listeners[${i}]: ${d}`));
      }
    });
    if (problems.length > 0) throw new ProxyStartupError(problems);
  }

  // --- SDS -----------------------------------------------------------------------------------------------------

  /** The secrets a cluster references, their config sources checked (throws XdsValidationError). */
  private clusterSecrets(cluster: Cluster): SecretReference[] {
    const problems: string[] = [];
    const refs = clusterSecretReferences(cluster, problems);
    this.checkSecretSources(refs, problems);
    if (problems.length > 0) throw new XdsValidationError(problems);
    return refs;
  }

  private checkSecretSources(refs: readonly SecretReference[], problems: string[]): void {
    for (const ref of refs) {
      if (ref.source.kind === 'ads' && !this.bootstrap.ads) problems.push(`SDS secret "${ref.name}": sds_config.ads needs dynamic_resources.ads_config in the bootstrap`);
      if (ref.source.kind === 'grpc' && !this.sdsServerOf(ref.source.clusterName)) {
        problems.push(`SDS secret "${ref.name}": sds_config.api_config_source names cluster "${ref.source.clusterName}", which is not a static cluster of the bootstrap with a socket_address endpoint`);
      }
      if (ref.source.kind === 'static' && !this.bootstrap.secrets.some((s) => s.name === ref.name)) {
        problems.push(`SDS secret "${ref.name}": no sds_config, and static_resources.secrets has no secret of that name`);
      }
    }
  }

  /** `host:port` of a static cluster's first endpoint: where an api_config_source's gRPC stream goes (as for ADS). */
  private sdsServerOf(clusterName: string): string | undefined {
    const cluster = this.bootstrap.clusters.find((c) => c.name === clusterName);
    const socket = cluster?.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address;
    if (!socket?.address || !socket.port_value) return undefined;
    return `${socket.address.includes(':') ? `[${socket.address}]` : socket.address}:${socket.port_value}`;
  }

  /** Subscribes every secret the clusters and listeners (active, warming, static at start-up) reference from its source; drops the rest. */
  private syncSecretSubscriptions(): void {
    if (this.stopping) return;
    const all: AppliedWithSecrets[] = [...this.config.clusters.values(), ...this.warmingClusters.values(), ...this.config.listeners.values(), ...(this.warmingListeners?.listeners.values() ?? []), ...this.awaitingSecrets.values(), ...(this.staticWarming ?? [])];
    const ads = new Set<string>();
    const grpcSources = new Map<string, { clusterName: string; mode: 'sotw' | 'delta'; names: Set<string> }>();
    for (const item of all) {
      for (const { name, source } of item.secretRefs) {
        if (source.kind === 'ads') ads.add(name);
        if (source.kind !== 'grpc') continue;
        let entry = grpcSources.get(source.clusterName);
        if (!entry) grpcSources.set(source.clusterName, (entry = { clusterName: source.clusterName, mode: source.mode, names: new Set() }));
        entry.names.add(name);
      }
    }
    if (this.xds && !this.xds.status().closed) {
      const current = this.subscribedNames(SECRET);
      const added = [...ads].filter((n) => !current.has(n));
      const removed = [...current].filter((n) => !ads.has(n));
      if (added.length > 0) this.xds.subscribe(SECRET, added);
      if (removed.length > 0) this.xds.unsubscribe(SECRET, removed);
    }
    if (grpcSources.size === 0 && !this.sdsClients) return;
    this.sdsClients ??= new SdsClients({
      node: this.xdsNode(),
      resolveCluster: (name) => this.sdsServerOf(name),
      secretType: this.compiling(secretResourceType, () => undefined),
      apply: (u) => this.enqueue(() => this.applySecrets(u)),
      onClient: (client, clusterName) => {
        const server = this.sdsServerOf(clusterName);
        client.on('ack', (event) => this.count(`${statScopeOf(event.typeUrl)}.update_success`));
        client.on('nack', (event) => this.onNack(event));
        client.on('connected', () => this.log.info('config', `SDS connected to ${clusterName} (${server})`));
        client.on('disconnected', (event) =>
          this.log.warn('config', `SDS stream to ${clusterName} (${server}) ended (${event.code} ${event.details}); keeping the secrets held, retrying in ${event.retryInMs} ms`),
        );
      },
    });
    this.sdsClients.sync([...grpcSources.values()]);
  }

  /** Whether every missing secret of `items` has `initial_fetch_timeout: 0s` (wait without limit). */
  private waitsWithoutLimit(items: readonly AppliedWithSecrets[]): boolean {
    const missing = items.flatMap((i) => i.secretRefs).filter((r) => !this.config.secrets.has(r.name));
    return missing.length > 0 && missing.every((r) => r.initialFetchTimeoutMs === 0);
  }

  /** A listener that timed out warming without its secrets: kept aside, subscribed, and activated when they arrive. */
  private awaitSecrets(listener: AppliedListener): void {
    const message = `SDS secrets ${this.missingSecrets([listener]).join(', ')} not delivered within the initial fetch timeout; the listener activates when they arrive`;
    this.log.warn('config', `listener ${listener.name}: ${message}`);
    this.recordError(LISTENER, listener.name, message);
    this.awaitingSecrets.set(listener.name, listener);
  }

  /** Activates the listeners kept aside for secrets that have now arrived (unless a newer LDS version replaced them). */
  private async activateAwaitingListeners(): Promise<void> {
    const ready = [...this.awaitingSecrets.values()].filter((l) => this.missingSecrets([l]).length === 0);
    if (ready.length === 0) return;
    const listeners = new Map(this.config.listeners);
    for (const listener of ready) {
      this.awaitingSecrets.delete(listener.name);
      try {
        listeners.set(listener.name, { ...listener, compiled: this.listenerManager.compile(listener.resource) });
        this.clearError(LISTENER, listener.name);
        this.log.info('config', `listener ${listener.name}: its SDS secrets arrived; activated`);
      } catch (err) {
        this.log.warn('config', `listener ${listener.name}: refused once its SDS secrets arrived: ${describeError(err)}`);
        this.recordError(LISTENER, listener.name, describeError(err));
      }
    }
    await this.commit({ ...this.config, listeners }, true);
    this.syncRouteSubscriptions([...this.config.listeners.values()]);
  }

  private missingSecrets(items: readonly AppliedWithSecrets[]): string[] {
    const missing = new Set<string>();
    for (const item of items) for (const { name } of item.secretRefs) if (!this.config.secrets.has(name)) missing.add(name);
    return [...missing];
  }

  private xdsNode(): envoy.config.core.v3.Node {
    const node = this.bootstrap.node;
    return { id: node.id, cluster: node.cluster, ...(node.metadata ? { metadata: node.metadata } : {}), ...(node.locality ? { locality: node.locality } : {}) };
  }

  // --- xDS ---------------------------------------------------------------------------------------------------

  private startXds(): void {
    const ads = this.bootstrap.ads!;
    const node = this.bootstrap.node;
    const client = new XdsClient({
      server: ads.server,
      mode: ads.mode,
      node: { id: node.id, cluster: node.cluster, ...(node.metadata ? { metadata: node.metadata } : {}), ...(node.locality ? { locality: node.locality } : {}) },
      ...(ads.backoff ? { backoff: ads.backoff } : {}),
      resourceTypes: [],
    });
    this.xds = client;
    // Registered in Envoy's order (CDS, EDS, LDS, RDS, SDS); each type compiles while decoding (see compiling()).
    client.register(this.compiling(clusterResourceType, (cluster) => this.compileDynamicCluster(cluster)), (u) => this.enqueue(() => this.applyClusters(u)));
    client.register(this.compiling(clusterLoadAssignmentResourceType, (cla) => checkLoadAssignment(cla)), (u) => this.enqueue(() => this.applyEndpoints(u)));
    client.register(this.compiling(listenerResourceType, (listener) => this.compileListener(listener, '', new Date())), (u) => this.enqueue(() => this.applyListeners(u)));
    client.register(this.compiling(routeConfigurationResourceType, (route) => this.dataPlane.compileRouteConfiguration(route)), (u) => this.enqueue(() => this.applyRoutes(u)));
    client.register(this.compiling(secretResourceType, () => undefined), (u) => this.enqueue(() => this.applySecrets(u)));
    client.on('ack', (event) => {
      this.count(`${statScopeOf(event.typeUrl)}.update_success`);
      this.firstUpdate.get(event.typeUrl)?.();
    });
    client.on('nack', (event) => this.onNack(event));
    client.on('connected', () => this.log.info('config', `xDS connected to ${ads.server}`));
    client.on('disconnected', (event) =>
      this.log.warn('config', `xDS stream to ${ads.server} ended (${event.code} ${event.details}); keeping the last accepted config, retrying in ${event.retryInMs} ms`),
    );
    if (ads.cds) client.subscribe(CLUSTER, WILDCARD);
  }

  /** Wraps a resource type so decoding also compiles: a compile failure refuses (NACKs) that one resource. */
  private compiling<T extends object, C>(base: XdsResourceType<T>, compile: (resource: T) => C): XdsResourceType<Compiled<T, C>> {
    const typeUrl = base.typeUrl;
    return {
      typeUrl,
      allResourcesRequiredInSotW: base.allResourcesRequiredInSotW,
      nameOf: (any: Any) => base.nameOf(any),
      decode: (any: Any, name: string): Compiled<T, C> => {
        try {
          const resource = base.decode(any, name);
          return { resource, compiled: compile(resource) };
        } catch (err) {
          this.recordError(typeUrl, name, describeError(err));
          throw err;
        }
      },
    };
  }

  private compileDynamicCluster(cluster: Cluster): unknown {
    if (this.bootstrap.clusters.some((c) => c.name === cluster.name)) {
      throw new XdsValidationError([`name: "${cluster.name}" is a static cluster of the bootstrap; CDS cannot replace it`]);
    }
    this.clusterSecrets(cluster);
    return this.dataPlane.clusters.compile(cluster);
  }

  private recordError(typeUrl: string, name: string, details: string): void {
    let byName = this.errors.get(typeUrl);
    if (!byName) this.errors.set(typeUrl, (byName = new Map()));
    byName.set(name, { name, details, versionInfo: '', time: new Date() });
  }

  private clearError(typeUrl: string, name: string): void {
    this.errors.get(typeUrl)?.delete(name);
  }

  private onNack(event: NackEvent): void {
    this.count(`${statScopeOf(event.typeUrl)}.update_rejected`);
    for (const error of this.errors.get(event.typeUrl)?.values() ?? []) {
      if (error.versionInfo === '') (error as { versionInfo: string }).versionInfo = event.rejectedVersion;
    }
    this.log.warn('config', `NACK ${event.rejectedVersion}: ${event.message.replace(/\n/g, '; ')}`);
    // A refused update still counts as the first answer: warming must not wait for a config that will not come.
    this.firstUpdate.get(event.typeUrl)?.();
  }

  private enqueue(change: () => Promise<void> | void): Promise<void> {
    const next = this.changes.then(change);
    this.changes = next.catch(() => undefined);
    return next;
  }

  private async applyClusters(update: ResourceUpdate<Compiled<Cluster, unknown>>): Promise<void> {
    const clusters = new Map(this.config.clusters);
    const now = new Date();
    for (const name of update.removed) {
      clusters.delete(name);
      this.warmingClusters.delete(name);
    }
    for (const [name, { resource, compiled }] of update.changed) {
      // Checked while decoding; a throw here cannot happen for an accepted cluster.
      const applied: AppliedCluster = { name, resource, compiled, versionInfo: update.versionInfo, lastUpdated: now, secretRefs: this.clusterSecrets(resource) };
      this.clearError(CLUSTER, name);
      // Envoy's cluster warming: a cluster whose SDS secrets are not held yet stays out (its previous version serves).
      if (this.missingSecrets([applied]).length > 0) this.warmingClusters.set(name, applied);
      else {
        clusters.set(name, applied);
        this.warmingClusters.delete(name);
      }
    }
    await this.commit({ ...this.config, clusters, clustersVersion: update.versionInfo });
    this.syncEndpointSubscriptions();
    this.syncSecretSubscriptions();
    this.scheduleClusterWarmingTimeout();
  }

  /** Clusters that waited for their secrets join the active set once the secrets are held ('ready'), or anyway ('timeout'). */
  private async activateWarmingClusters(reason: 'ready' | 'timeout'): Promise<void> {
    if (this.warmingClusters.size === 0) return;
    const ready = [...this.warmingClusters.values()].filter((c) => reason === 'timeout' || this.missingSecrets([c]).length === 0);
    if (ready.length === 0) return;
    const clusters = new Map(this.config.clusters);
    for (const cluster of ready) {
      if (reason === 'timeout' && this.missingSecrets([cluster]).length > 0) {
        // As Envoy after initial_fetch_timeout: the cluster is used; its TLS connections fail until the secret arrives.
        this.log.warn('config', `cluster ${cluster.name}: SDS secrets ${this.missingSecrets([cluster]).join(', ')} not delivered within the initial fetch timeout; activated without them`);
      }
      clusters.set(cluster.name, cluster);
      this.warmingClusters.delete(cluster.name);
    }
    if (this.warmingClusters.size === 0 && this.clusterWarmingTimer) {
      clearTimeout(this.clusterWarmingTimer);
      this.clusterWarmingTimer = undefined;
    }
    await this.commit({ ...this.config, clusters });
    this.syncEndpointSubscriptions();
  }

  private scheduleClusterWarmingTimeout(): void {
    if (this.warmingClusters.size === 0 || this.clusterWarmingTimer) return;
    this.log.info('config', `clusters ${[...this.warmingClusters.keys()].join(', ')} warming until SDS delivers ${this.missingSecrets([...this.warmingClusters.values()]).join(', ')}`);
    this.clusterWarmingTimer = setTimeout(() => {
      this.clusterWarmingTimer = undefined;
      void this.enqueue(() => this.activateWarmingClusters('timeout'));
    }, this.options.initialFetchTimeoutMs ?? 15_000);
    this.clusterWarmingTimer.unref();
  }

  private async applyEndpoints(update: ResourceUpdate<Compiled<ClusterLoadAssignment, undefined>>): Promise<void> {
    const endpoints = new Map(this.config.endpoints);
    const now = new Date();
    for (const name of update.removed) endpoints.delete(name);
    for (const [name, { resource }] of update.changed) endpoints.set(name, { name, resource, versionInfo: update.versionInfo, lastUpdated: now });
    this.config = { ...this.config, endpoints };
    for (const [name, { resource }] of update.changed) this.dataPlane.clusters.applyLoadAssignment(name, resource);
  }

  private async applyListeners(update: ResourceUpdate<Compiled<Listener, AppliedListener>>): Promise<void> {
    const staticNames = new Set(this.bootstrap.listeners.map((l) => l.name));
    const listeners = new Map(this.warmingListeners?.listeners ?? this.config.listeners);
    for (const name of update.removed) {
      if (staticNames.has(name)) continue;
      listeners.delete(name);
      this.awaitingSecrets.delete(name);
    }
    for (const [name, { compiled }] of update.changed) {
      if (staticNames.has(name)) continue;
      this.awaitingSecrets.delete(name);
      listeners.set(name, { ...compiled, versionInfo: update.versionInfo });
      this.clearError(LISTENER, name);
    }
    if (this.warmingListeners) clearTimeout(this.warmingListeners.timer);
    // Envoy warms a listener until its routes and secrets arrive (or initial_fetch_timeout), so it never serves 404s
    // or handshakes without a certificate meanwhile. A set with nothing missing activates at once.
    const timer = setTimeout(() => void this.enqueue(async () => void (await this.activateWarmingListeners('timeout'))), this.options.initialFetchTimeoutMs ?? 15_000);
    timer.unref();
    this.warmingListeners = { listeners, version: update.versionInfo, timer };
    this.syncRouteSubscriptions([...listeners.values()]);
    this.syncSecretSubscriptions();
    if (await this.activateWarmingListeners('ready')) return;
    const wanted = [...listeners.values()];
    const waitingFor = [...this.missingRoutes(wanted).map((n) => `RDS ${n}`), ...this.missingSecrets(wanted.filter((l) => !l.compiled)).map((n) => `SDS ${n}`)];
    this.log.info('config', `listeners warming until ${waitingFor.join(', ')} arrive`);
  }

  /** Activates the warming listener set when nothing is missing any more ('ready'), or as it is ('timeout'); true when it did. */
  private async activateWarmingListeners(reason: 'ready' | 'timeout'): Promise<boolean> {
    const warming = this.warmingListeners;
    if (!warming) return false;
    this.compileWarmed(warming.listeners);
    const values = [...warming.listeners.values()];
    const waiting = this.missingRoutes(values).length > 0 || values.some((l) => !l.compiled);
    if (reason === 'ready' && waiting) return false;
    clearTimeout(warming.timer);
    this.warmingListeners = undefined;
    if (reason === 'timeout') {
      const routes = this.missingRoutes(values);
      if (routes.length > 0) this.log.warn('config', `listeners activated without routes ${routes.join(', ')} (initial fetch timeout)`);
      for (const listener of values) {
        if (listener.compiled) continue;
        // Without its certificate a TLS listener cannot be built: it waits aside (its previous version, if any, keeps serving).
        this.awaitSecrets(listener);
        this.keepPrevious(warming.listeners, listener.name);
      }
    }
    await this.commit({ ...this.config, listeners: warming.listeners, listenersVersion: warming.version }, true);
    this.syncRouteSubscriptions([...this.config.listeners.values()]);
    this.syncSecretSubscriptions();
    return true;
  }

  /** Compiles the warming listeners whose secrets have all arrived; one that fails keeps its previous version (or is left out). */
  private compileWarmed(listeners: Map<string, AppliedListener>): void {
    for (const [name, listener] of listeners) {
      if (listener.compiled || this.missingSecrets([listener]).length > 0) continue;
      try {
        listeners.set(name, { ...listener, compiled: this.listenerManager.compile(listener.resource) });
      } catch (err) {
        this.log.warn('config', `listener ${name}: refused once its SDS secrets arrived: ${describeError(err)}`);
        this.recordError(LISTENER, name, describeError(err));
        this.keepPrevious(listeners, name);
      }
    }
  }

  private keepPrevious(listeners: Map<string, AppliedListener>, name: string): void {
    const previous = this.config.listeners.get(name);
    if (previous?.compiled) listeners.set(name, previous);
    else listeners.delete(name);
  }

  private async applyRoutes(update: ResourceUpdate<Compiled<RouteConfiguration, RouteTable>>): Promise<void> {
    const routes = new Map(this.config.routes);
    const now = new Date();
    for (const name of update.removed) routes.delete(name);
    for (const [name, { resource, compiled }] of update.changed) {
      routes.set(name, { name, resource, table: compiled, versionInfo: update.versionInfo, lastUpdated: now });
      this.clearError(ROUTE_CONFIGURATION, name);
    }
    // Route tables are looked up per request: replacing the snapshot is the whole RDS apply.
    this.config = { ...this.config, routes };
    if (this.warmingListeners) await this.activateWarmingListeners('ready');
  }

  private async applySecrets(update: ResourceUpdate<Compiled<Secret, undefined>>): Promise<void> {
    const secrets = new Map(this.config.secrets);
    const now = new Date();
    for (const name of update.removed) secrets.delete(name);
    // A rotated secret is a new object: TLS contexts that read it through the SecretProvider rebuild for new connections.
    for (const [name, { resource }] of update.changed) secrets.set(name, { name, resource, versionInfo: update.versionInfo, lastUpdated: now });
    this.config = { ...this.config, secrets };
    await this.activateWarmingClusters('ready');
    if (this.warmingListeners) await this.activateWarmingListeners('ready');
    await this.activateAwaitingListeners();
  }

  /** Subscribes EDS for every EDS cluster's service name, and drops the ones no cluster uses any more. */
  private syncEndpointSubscriptions(): void {
    if (!this.xds || this.xds.status().closed) return;
    const wanted = new Set(this.edsServiceNames());
    const current = this.subscribedNames(CLUSTER_LOAD_ASSIGNMENT);
    const added = [...wanted].filter((n) => !current.has(n));
    const removed = [...current].filter((n) => !wanted.has(n));
    if (added.length > 0) this.xds.subscribe(CLUSTER_LOAD_ASSIGNMENT, added);
    if (removed.length > 0) this.xds.unsubscribe(CLUSTER_LOAD_ASSIGNMENT, removed);
  }

  /** Subscribes RDS for the route names `listeners` (plus the active ones) reference; unsubscribes the rest. */
  private syncRouteSubscriptions(listeners: readonly AppliedListener[]): void {
    if (!this.xds || this.xds.status().closed) return;
    const wanted = new Set<string>();
    for (const l of [...listeners, ...this.config.listeners.values(), ...(this.warmingListeners?.listeners.values() ?? []), ...this.awaitingSecrets.values()]) for (const n of l.routeNames) wanted.add(n);
    const current = this.subscribedNames(ROUTE_CONFIGURATION);
    const added = [...wanted].filter((n) => !current.has(n));
    const removed = [...current].filter((n) => !wanted.has(n) && !this.activeRouteNames().has(n));
    if (added.length > 0) this.xds.subscribe(ROUTE_CONFIGURATION, added);
    if (removed.length > 0) {
      this.xds.unsubscribe(ROUTE_CONFIGURATION, removed);
      const routes = new Map(this.config.routes);
      for (const name of removed) routes.delete(name);
      this.config = { ...this.config, routes };
    }
  }

  private activeRouteNames(): Set<string> {
    const names = new Set<string>();
    for (const l of this.config.listeners.values()) for (const n of l.routeNames) names.add(n);
    for (const l of [...(this.warmingListeners?.listeners.values() ?? []), ...this.awaitingSecrets.values()]) for (const n of l.routeNames) names.add(n);
    return names;
  }

  private subscribedNames(typeUrl: string): Set<string> {
    return new Set(this.xds?.status().types.find((t) => t.typeUrl === typeUrl)?.subscribedNames ?? []);
  }

  private edsServiceNames(): string[] {
    const names: string[] = [];
    // Warming clusters subscribe their endpoints too, so they are ready when their secrets arrive.
    for (const { resource } of [...this.config.clusters.values(), ...this.warmingClusters.values()]) {
      if (resource.type === 'EDS') names.push(resource.eds_cluster_config?.service_name || resource.name!);
    }
    return names;
  }

  private missingEndpoints(): string[] {
    return this.edsServiceNames().filter((n) => !this.config.endpoints.has(n));
  }

  private missingRoutes(listeners: readonly AppliedListener[]): string[] {
    const missing = new Set<string>();
    for (const l of listeners) for (const n of l.routeNames) if (!this.config.routes.has(n)) missing.add(n);
    return [...missing];
  }

  private waitFirst(typeUrl: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.firstUpdate.set(typeUrl, () => {
        this.firstUpdate.delete(typeUrl);
        // The hook runs before the ACK event; the change queue holds the apply, so wait for it too.
        void this.changes.then(done);
      });
    });
  }

  private async waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition() && Date.now() < deadline && !this.stopping) await new Promise((r) => setTimeout(r, 20));
    await this.changes;
  }

  // --- compiling and committing ---------------------------------------------------------------------------------

  /** Compiles a listener and reads what main needs from its HCMs (RDS names, inline routes, access logs). */
  private compileListener(listener: Listener, versionInfo: string | undefined, now: Date): AppliedListener {
    const problems: string[] = [];
    const secretRefs = listenerSecretReferences(listener, problems);
    this.checkSecretSources(secretRefs, problems);
    if (problems.length > 0) throw new XdsValidationError(problems);
    // A listener whose secrets are not all held yet warms uncompiled (its TLS contexts need them); see applyListeners.
    const compiled = this.missingSecrets([{ secretRefs }]).length === 0 ? this.listenerManager.compile(listener) : undefined;
    const routeNames = new Set<string>();
    const inlineRoutes: RouteConfiguration[] = [];
    const accessLogs = new Map<string, AccessLogger[]>();
    const chains: [envoy.config.listener.v3.FilterChain, string][] = (listener.filter_chains ?? []).map((c, i) => [c, `filter_chains[${i}]`]);
    if (listener.default_filter_chain) chains.push([listener.default_filter_chain, 'default_filter_chain']);
    for (const [chain, chainPath] of chains) {
      (chain.filters ?? []).forEach((filter, j) => {
        if (filter.typed_config?.type_url !== HCM_TYPE_URL) return;
        const hcm = unpackAny<Hcm>(filter.typed_config);
        if (hcm.rds?.route_config_name) routeNames.add(hcm.rds.route_config_name);
        if (hcm.route_config) inlineRoutes.push(hcm.route_config);
        if ((hcm.access_log ?? []).length > 0) {
          try {
            const loggers = compileAccessLogs(hcm.access_log!, `${chainPath}.filters[${j}].typed_config.access_log`);
            accessLogs.set(hcm.stat_prefix ?? '', [...(accessLogs.get(hcm.stat_prefix ?? '') ?? []), ...loggers]);
          } catch (err) {
            problems.push(...detailsOf(err));
          }
        }
      });
    }
    if (problems.length > 0) throw new XdsValidationError(problems);
    return {
      name: listener.name!,
      resource: listener,
      ...(versionInfo !== undefined ? { versionInfo } : {}),
      lastUpdated: now,
      compiled,
      secretRefs,
      routeNames: [...routeNames],
      inlineRoutes,
      accessLogs,
    };
  }

  /**
   * Makes `next` the applied config: clusters first (so a new listener never routes to a cluster not there yet),
   * then listeners when asked. Throws when the data path refuses, leaving the previous snapshot in place.
   */
  private async commit(next: ConfigSnapshot, applyListeners = false): Promise<void> {
    if (next.clusters !== this.config.clusters) {
      const endpoints = next.endpoints;
      await this.dataPlane.clusters.apply(
        [...next.clusters.values()].map((c) => ({ config: c.resource, compiled: c.compiled })),
        (serviceName) => endpoints.get(serviceName)?.resource,
      );
    }
    if (applyListeners) await this.listenerManager.apply([...next.listeners.values()].flatMap((l) => (l.compiled ? [l.compiled] : [])));
    this.config = next;
  }

  // --- access logs, stats and admin ------------------------------------------------------------------------------

  private logStream(info: StreamInfo): void {
    const loggers = this.config.listeners.get(info.listenerName)?.accessLogs.get(info.statPrefix);
    if (!loggers || loggers.length === 0) return;
    const entry = accessLogEntry(info);
    for (const logger of loggers) logger.log(entry);
  }

  private count(name: string): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1);
  }

  private stats(): StatSample[] {
    const stats = new StatsBuilder();
    for (const name of this.config.clusters.keys()) {
      const cluster = this.dataPlane.clusters.manager.get(name);
      if (cluster) {
        stats.cluster(name, cluster.stats);
        if (cluster.healthStats) stats.cluster(name, cluster.healthStats());
      }
    }
    const listeners = this.listenerManager.status();
    // Envoy keeps one scope per listener address and per HCM stat_prefix: listeners sharing them add up.
    const byAddress = new Map<string, Record<string, number>>();
    const byPrefix = new Map<string, Record<string, number>>();
    const addInto = (map: Map<string, Record<string, number>>, key: string, values: Readonly<Record<string, number>>): void => {
      const sum = map.get(key) ?? {};
      for (const [stat, value] of Object.entries(values)) sum[stat] = (sum[stat] ?? 0) + value;
      map.set(key, sum);
    };
    for (const status of listeners) {
      // Unbound listeners (bind_to_port: false) count the connections handed to them under their configured address.
      const address = status.boundAddress ?? status.configuredAddress;
      if (address) addInto(byAddress, listenerStatScope(address), status.stats);
      for (const [prefix, http] of Object.entries(status.httpStats)) addInto(byPrefix, prefix, http);
    }
    for (const [scope, values] of byAddress) stats.listener(scope, values);
    for (const [prefix, values] of byPrefix) stats.http(prefix, values);
    // Network filters' own scopes (`<stat_prefix>.rbac.denied`, `tcp.rbac.allowed`…), summed across listeners as Envoy's shared scopes do.
    const network: Record<string, number> = {};
    for (const status of listeners) for (const [name, value] of Object.entries(status.networkFilterStats ?? {})) network[name] = (network[name] ?? 0) + value;
    for (const [name, value] of Object.entries(network)) stats.plain(name, value, 'counter');
    for (const counter of ['cluster_manager.cds.update_success', 'cluster_manager.cds.update_rejected', 'listener_manager.lds.update_success', 'listener_manager.lds.update_rejected', 'rds.update_success', 'rds.update_rejected', 'cluster_manager.eds.update_success', 'cluster_manager.eds.update_rejected', 'sds.update_success', 'sds.update_rejected']) {
      stats.plain(counter, this.counters.get(counter) ?? 0, 'counter');
    }
    stats.plain('cluster_manager.active_clusters', this.config.clusters.size, 'gauge');
    stats.plain('listener_manager.total_listeners_active', listeners.filter((l) => l.state === 'active').length, 'gauge');
    stats.plain('listener_manager.total_listeners_draining', listeners.filter((l) => l.state === 'draining').length, 'gauge');
    if (this.xds) stats.plain('control_plane.connected_state', this.xds.connected ? 1 : 0, 'gauge');
    stats.plain('server.live', this.serverState === 'LIVE' ? 1 : 0, 'gauge');
    stats.plain('server.state', { LIVE: 0, DRAINING: 1, PRE_INITIALIZING: 2, INITIALIZING: 3 }[this.serverState], 'gauge');
    stats.plain('server.uptime', Math.floor((Date.now() - this.startedAt) / 1000), 'gauge');
    stats.plain('server.memory_allocated', process.memoryUsage().heapUsed, 'gauge');
    stats.plain('server.memory_heap_size', process.memoryUsage().heapTotal, 'gauge');
    if (this.dataPlane.istioMetrics) stats.families(this.dataPlane.istioMetrics.samples());
    if (this.dataPlane.istioTcpMetrics) stats.families(this.dataPlane.istioTcpMetrics.samples());
    return stats.build();
  }

  private configDump(): ConfigDumpInput {
    const c = this.config;
    const errors = (typeUrl: string): ResourceError[] => [...(this.errors.get(typeUrl)?.values() ?? [])];
    const staticEndpoints: AppliedResource<ClusterLoadAssignment>[] = [];
    for (const cluster of c.clusters.values()) {
      if (cluster.resource.load_assignment && cluster.versionInfo === undefined) {
        staticEndpoints.push({ name: cluster.name, resource: cluster.resource.load_assignment, lastUpdated: cluster.lastUpdated });
      }
    }
    const inlineRoutes: AppliedResource<RouteConfiguration>[] = [];
    for (const listener of c.listeners.values()) {
      for (const route of listener.inlineRoutes) inlineRoutes.push({ name: route.name ?? '', resource: route, lastUpdated: listener.lastUpdated });
    }
    return {
      bootstrap: this.bootstrap.bootstrap,
      bootstrapLoaded: this.bootstrapLoaded,
      clusters: [...c.clusters.values()],
      clustersVersion: c.clustersVersion,
      clusterErrors: errors(CLUSTER),
      listeners: [...c.listeners.values()],
      listenersVersion: c.listenersVersion,
      listenerErrors: errors(LISTENER),
      routes: [...inlineRoutes, ...c.routes.values()],
      routeErrors: errors(ROUTE_CONFIGURATION),
      endpoints: [...staticEndpoints, ...c.endpoints.values()],
      secrets: [...c.secrets.values()],
    };
  }

  private clusterViews(): ClusterView[] {
    return [...this.config.clusters.values()].map((c) => {
      const cluster = this.dataPlane.clusters.manager.get(c.name);
      return { name: c.name, addedViaApi: c.versionInfo !== undefined, ...(cluster ? { cluster } : {}), hosts: this.dataPlane.clusters.hosts(c.name) };
    });
  }

  private adminView(): AdminView {
    return {
      state: () => this.serverState,
      serverInfo: () => ({
        version: `trellis/${TRELLIS_VERSION}`,
        state: this.serverState,
        hot_restart_version: 'disabled',
        uptime_current_epoch: `${Math.floor((Date.now() - this.startedAt) / 1000)}s`,
        uptime_all_epochs: `${Math.floor((Date.now() - this.startedAt) / 1000)}s`,
        command_line_options: {
          config_path: this.bootstrap.source,
          log_level: this.options.logLevel ?? 'info',
          drain_time: `${Math.round((this.options.drainTimeMs ?? 5000) / 1000)}s`,
          service_node: this.bootstrap.node.id,
          service_cluster: this.bootstrap.node.cluster,
          argv: this.options.commandLine ?? process.argv.slice(2),
        },
        node: { id: this.bootstrap.node.id, cluster: this.bootstrap.node.cluster, user_agent_name: 'trellis', user_agent_version: TRELLIS_VERSION, hostname: hostname() },
        ...(this.xds ? { xds: { server: this.bootstrap.ads!.server, mode: this.bootstrap.ads!.mode, connected: this.xds.connected } } : {}),
      }),
      configDump: () => this.configDump(),
      clusters: () => this.clusterViews(),
      listeners: (): readonly ListenerStatus[] => this.listenerManager.status(),
      stats: () => this.stats(),
      drainListeners: (options) => {
        void this.drainListeners(options).catch((err: unknown) => this.log.error('main', `draining listeners: ${describeError(err)}`));
      },
      quit: () => {
        void this.stop().finally(() => this.options.onQuit?.());
      },
      log: this.log,
    };
  }

  async drain(): Promise<void> {
    this.serverState = 'DRAINING';
    await this.listenerManager.drain({ graceMs: this.options.drainTimeMs ?? 5000 });
  }

  /**
   * Envoy's /drain_listeners. The graceful period and the in-flight grace are both the drain time (--drain-time-s); the
   * server reports DRAINING (/ready 503) from the start, as Envoy's drain manager does.
   */
  drainListeners(options: { readonly graceful: boolean; readonly inboundOnly: boolean; readonly skipExit?: boolean }): Promise<void> {
    this.serverState = 'DRAINING';
    const drainTimeMs = this.options.drainTimeMs ?? 5000;
    return this.listenerManager.drainListeners({ ...options, drainTimeMs, graceMs: drainTimeMs });
  }

  activeDownstreamConnections(direction?: 'INBOUND' | 'OUTBOUND'): number {
    let n = 0;
    for (const l of this.listenerManager.status()) if (direction === undefined || l.trafficDirection === direction) n += l.stats.downstream_cx_active;
    return n;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.serverState = 'DRAINING';
      if (this.warmingListeners) clearTimeout(this.warmingListeners.timer);
      if (this.clusterWarmingTimer) clearTimeout(this.clusterWarmingTimer);
      this.xds?.close();
      this.sdsClients?.close();
      await this.listenerManager.close().catch((err: unknown) => this.log.error('main', `closing listeners: ${describeError(err)}`));
      await Promise.resolve(this.dataPlane.clusters.close()).catch((err: unknown) => this.log.error('main', `closing clusters: ${describeError(err)}`));
      await this.dataPlane.spanExporters?.close().catch((err: unknown) => this.log.error('main', `flushing spans: ${describeError(err)}`));
      await this.admin?.close();
      await closeAccessLogFiles();
    })();
    return this.stopping;
  }
}

/** A decoded resource with what compiling it produced. */
interface Compiled<T, C = unknown> {
  readonly resource: T;
  readonly compiled: C;
}

function statScopeOf(typeUrl: string): string {
  switch (typeUrl) {
    case CLUSTER:
      return 'cluster_manager.cds';
    case CLUSTER_LOAD_ASSIGNMENT:
      return 'cluster_manager.eds';
    case LISTENER:
      return 'listener_manager.lds';
    case ROUTE_CONFIGURATION:
      return 'rds';
    default:
      return 'sds';
  }
}

/** EDS resources are checked like the cluster manager will read them (endpoint addresses must be IPs). */
function checkLoadAssignment(cla: ClusterLoadAssignment): undefined {
  const problems: string[] = [];
  compileLoadAssignment(cla, 'ClusterLoadAssignment', true, problems);
  if (problems.length > 0) throw new XdsValidationError(problems.map((p) => p.replace(/^ClusterLoadAssignment\./, '')));
  return undefined;
}

function detailsOf(err: unknown): readonly string[] {
  if (err instanceof XdsValidationError) return err.details;
  return [describeError(err)];
}

// --- the data path as Trellis builds it ------------------------------------------------------------------------

/** The real data path: the listener manager, the router's compiler, the cluster manager and the HTTP filters. */
export async function createDataPlane(
  options: { readonly drainGraceMs?: number; readonly secrets?: SecretProvider; readonly warmingTimeoutMs?: number; readonly log?: ProxyLog; readonly node?: ProxyNode } = {},
): Promise<DataPlane> {
  const clusters = createClusterBackend(options.secrets ?? NO_SECRETS, options.warmingTimeoutMs, options.log);
  const istioMetrics = new IstioMetrics();
  const istioTcpMetrics = new IstioTcpMetrics();
  const spanExporters = new SpanExporterPool();
  const httpFilters = createHttpFilterRegistry({ clusters: clusters.manager, istioMetrics, spanExporters, ...(options.log ? { log: options.log } : {}), ...(options.node ? { node: options.node } : {}) });
  // typed_per_filter_config entries are compiled by the factory of the filter they name (or whose config type they carry).
  const perFilterConfig = (filterName: string, any: Any): unknown => {
    const factory = httpFilters.byName(filterName) ?? httpFilters.byTypeUrl(any.type_url ?? '');
    if (!factory?.createRouteConfig) return undefined;
    const expected = factory.routeConfigTypeUrl ?? factory.typeUrl;
    if (any.type_url !== expected) throw new XdsValidationError([`expected ${expected} for ${factory.name}, got ${any.type_url || '(empty type_url)'}`]);
    return factory.createRouteConfig(unpackAny(any));
  };
  return {
    clusters,
    istioMetrics,
    istioTcpMetrics,
    spanExporters,
    httpFilters,
    compileRouteConfiguration: (config) => compileRouteConfiguration(config, { perFilterConfig, clusterExists: (name) => clusters.manager.get(name) !== undefined }),
    createListenerManager: (context) => new TrellisListenerManager(context, options.drainGraceMs !== undefined ? { drainGraceMs: options.drainGraceMs } : {}),
  };
}

/**
 * The cluster manager as main drives it. compile() only validates (the manager builds its own instance on apply);
 * apply() hands the manager what changed since the last apply, so unchanged clusters keep their pools and stats.
 */
function createClusterBackend(secrets: SecretProvider, warmingTimeoutMs: number | undefined, log: ProxyLog | undefined): ClusterBackend {
  const context = { secrets, ...(warmingTimeoutMs !== undefined ? { warmingTimeoutMs } : {}), ...(log ? { log: (message: string) => log.warn('upstream', message) } : {}) };
  const manager = new ClusterManagerImpl(context);
  let applied = new Map<string, Cluster>();
  return {
    manager,
    compile: (cluster) => {
      compileCluster(cluster, { secrets }).destroy();
      return undefined;
    },
    apply: (clusters) => {
      const next = new Map(clusters.map(({ config }) => [config.name!, config]));
      const changed = [...next].filter(([name, config]) => applied.get(name) !== config).map(([, config]) => config);
      const removed = [...applied.keys()].filter((name) => !next.has(name));
      if (changed.length > 0) manager.addOrUpdate(changed);
      if (removed.length > 0) manager.remove(removed);
      applied = next;
    },
    applyLoadAssignment: (serviceName, cla) => manager.applyLoadAssignment(serviceName, cla),
    hosts: (name) => manager.get(name)?.hosts ?? [],
    close: () => manager.close(),
  };
}
