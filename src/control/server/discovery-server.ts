// istiod's DiscoveryServer: config and registry changes → debounce → new PushContext → per affected proxy, the affected xDS types into the SnapshotCache.
import type { Node } from '../../xds/ads-service.js';
import { AdsServer, SnapshotCache, type ConnectEvent, type DisconnectEvent, type ResourceInput } from '../../xds/server/index.js';
import { CLUSTER_LOAD_ASSIGNMENT, shortName } from '../../xds/type-urls.js';
import { describeError } from '../../common/errors.js';
import type { ConfigEvent, ConfigStore } from '../config/store.js';
import type { ServiceRegistry } from '../registry/registry.js';
import type { RegistryChange } from '../model/service.js';
import type { XdsGenerator } from '../model/generator.js';
import { proxyFromNode, type Proxy } from '../model/proxy.js';
import type { ConfigKey, PushRequest } from '../model/push-request.js';
import { PUSH_STATUS_METRICS, type PushStatus, type PushStatusMetric } from '../model/push-status.js';
import { systemClock, type Clock } from './clock.js';
import { Debouncer, type DebounceOptions } from './debounce.js';
import { createPilotMetrics, type PilotMetrics } from './pilot-metrics.js';
import { PushQueue } from './push-queue.js';
import { ResourceInterner, type ResourceInternerStats } from './resource-interner.js';
import { XdsCache } from './xds-cache.js';

/** What the server needs of a PushContext; the real one (model/push-context.ts) has more. */
export interface PushContextView {
  /** Changes with every snapshot; shown in debug output. */
  readonly version: string;
  /**
   * Whether `request` changes anything `proxy` sees (by host, namespace, Sidecar scope); absent means "yes". `previous`
   * is the snapshot the proxy was last pushed from, so a deleted or moved resource is recognised too.
   */
  affects?(proxy: Proxy, request: PushRequest, previous?: this): boolean;
  /** The xDS types `request` makes stale for `proxy`; absent: every type for a full request, EDS for an endpoint-only one. */
  pushTypes?(proxy: Proxy, request: PushRequest, previous?: this): Iterable<string>;
  /** The conflicts and duplicates found building this snapshot and generating from it (istiod's push status gauges). */
  readonly status?: Pick<PushStatus, 'count' | 'onChange'>;
}

export interface ControlLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface DiscoveryServerOptions<P extends PushContextView> {
  readonly store: ConfigStore;
  readonly registry: ServiceRegistry;
  /** Builds a new immutable snapshot from the store and registry as they are now. */
  readonly buildPushContext: () => P;
  /** One generator per type URL served. */
  readonly generators: ReadonlyMap<string, XdsGenerator<P>>;
  readonly debounce?: DebounceOptions;
  /** Concurrent proxy pushes (Istio PILOT_PUSH_THROTTLE, default 100). */
  readonly pushThrottle?: number;
  readonly metrics?: PilotMetrics;
  readonly logger?: ControlLogger;
  readonly clock?: Clock;
}

/** A proxy with at least one open ADS stream. */
export interface ConnectedProxy {
  readonly proxy: Proxy;
  readonly streams: ReadonlySet<string>;
  /** True once its first full config was generated. */
  readonly initialized: boolean;
}

interface ProxyEntry<P> {
  proxy: Proxy;
  streams: Set<string>;
  initialized: boolean;
  /** The snapshot its last push was generated from. */
  lastPush: P | undefined;
}

// ServiceEntry and WorkloadEntry reach pushes through the registry, which tells service changes from endpoint ones.
const REGISTRY_KINDS: ReadonlySet<string> = new Set(['ServiceEntry', 'WorkloadEntry']);

export class DiscoveryServer<P extends PushContextView> {
  readonly cache: SnapshotCache;
  readonly ads: AdsServer;
  readonly metrics: PilotMetrics;
  private readonly options: DiscoveryServerOptions<P>;
  private readonly logger: ControlLogger;
  private readonly clock: Clock;
  private readonly debouncer: Debouncer;
  private readonly queue: PushQueue;
  private readonly xdsCache = new XdsCache();
  private readonly interner = new ResourceInterner();
  private readonly proxies = new Map<string, ProxyEntry<P>>();
  // The node of a stream's first request, between the cache's nodeKey() and the 'connect' event (both synchronous).
  private readonly arrivingNodes = new Map<string, Node>();
  private readonly unsubscribe: Array<() => void> = [];
  private current: P | undefined;
  private stopFollowingStatus: (() => void) | undefined;
  private generation = 0;
  private lastPushAt: Date | undefined;
  private closed = false;

  constructor(options: DiscoveryServerOptions<P>) {
    this.options = options;
    this.logger = options.logger ?? { info: (m) => console.log(m), warn: (m) => console.warn(m) };
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics ?? createPilotMetrics();
    this.cache = new SnapshotCache({
      nodeKey: (node) => {
        const id = node.id ?? '';
        this.arrivingNodes.set(id, node);
        return id;
      },
    });
    this.ads = new AdsServer({ source: this.cache, typeUrls: [...options.generators.keys()], logger: { warn: (m) => this.logger.warn(m), info: (m) => this.logger.info(m) } });
    this.debouncer = new Debouncer((request, merged) => this.pushAll(request, merged), { ...options.debounce, clock: this.clock });
    this.queue = new PushQueue((id, request) => this.pushProxy(id, request), {
      ...(options.pushThrottle !== undefined ? { concurrency: options.pushThrottle } : {}),
      onError: (id, err) => this.logger.warn(`push to ${id} failed: ${describeError(err)}`),
    });
  }

  /** Builds the first PushContext and starts following changes and streams. Throws when the first snapshot cannot be built. */
  start(): void {
    this.current = this.options.buildPushContext();
    this.generation++;
    this.updateGauges();
    this.unsubscribe.push(this.options.store.onChange((events) => this.configChanged(events)));
    this.unsubscribe.push(this.options.registry.onChange((change) => this.registryChanged(change)));
    const onConnect = (e: ConnectEvent) => this.connected(e);
    const onDisconnect = (e: DisconnectEvent) => this.disconnected(e);
    this.ads.on('connect', onConnect);
    this.ads.on('disconnect', onDisconnect);
    this.ads.on('sent', (e) => this.metrics.pushes.inc({ type: typeLabel(e.typeUrl) }));
    this.ads.on('expired-nonce', (e) => this.metrics.expiredNonce.inc({ type: typeLabel(e.typeUrl) }));
    this.ads.on('nack', (e) => {
      this.metrics.rejects.inc({ type: typeLabel(e.typeUrl) });
      this.logger.warn(`proxy ${e.nodeKey} rejected ${shortName(e.typeUrl)} (keeps version ${e.version || '(none)'}): ${e.message}`);
    });
  }

  /** The snapshot pushes are generated from now. */
  get pushContext(): P | undefined {
    return this.current;
  }

  /** Counts PushContexts built (1 after start). */
  get pushGeneration(): number {
    return this.generation;
  }

  get lastPushTime(): Date | undefined {
    return this.lastPushAt;
  }

  connectedProxies(): ConnectedProxy[] {
    return [...this.proxies.values()].map((p) => ({ proxy: p.proxy, streams: new Set(p.streams), initialized: p.initialized }));
  }

  proxy(id: string): Proxy | undefined {
    return this.proxies.get(id)?.proxy;
  }

  xdsCacheStats(): ReturnType<XdsCache['stats']> {
    return this.xdsCache.stats();
  }

  /** How many resources were encoded and how many distinct ones are alive (shared by every proxy holding them). */
  internerStats(): ResourceInternerStats {
    return this.interner.stats();
  }

  /** Queues a push (merged and debounced like every change); what a config or registry change does. */
  requestPush(request: PushRequest): void {
    if (!this.closed) this.debouncer.enqueue(request);
  }

  /** Resolves once no push is pending in the debounce or running in the queue (tests, graceful stop). */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && this.debouncer.pendingCount > 0; i++) await new Promise((r) => setTimeout(r, 5));
    await this.queue.idle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    this.stopFollowingStatus?.();
    this.debouncer.close();
    this.queue.close();
    await this.ads.close();
    this.ads.removeAllListeners();
  }

  private configChanged(events: readonly ConfigEvent[]): void {
    const keys: ConfigKey[] = [];
    for (const event of events) {
      this.metrics.configEvents.inc({ type: event.kind, event: event.type });
      if (!REGISTRY_KINDS.has(event.kind)) this.metrics.inboundUpdates.inc({ type: 'config' });
      if (!REGISTRY_KINDS.has(event.kind)) keys.push({ kind: event.kind, namespace: event.namespace, name: event.name });
      // Istio's ProxyUpdate on a WorkloadEntry added for a connected proxy (here: or changed): its own inbound listeners
      // and clusters come from it, which the registry's endpoint push does not carry (a sidecar started before its
      // WorkloadEntry, or scaled down and up again). Removal does not: the proxy keeps serving what is in flight.
      else if (event.kind === 'WorkloadEntry' && event.type !== 'delete' && this.hasProxyOf(event.namespace, event.name)) {
        keys.push({ kind: 'WorkloadEntry', namespace: event.namespace, name: event.name });
      }
    }
    if (keys.length > 0) this.requestPush({ full: true, configsUpdated: keys, reasons: ['config'], start: this.clock.now() });
  }

  private hasProxyOf(namespace: string, workloadName: string): boolean {
    for (const p of this.proxies.values()) if (p.proxy.namespace === namespace && p.proxy.workloadName === workloadName) return true;
    return false;
  }

  private registryChanged(change: RegistryChange): void {
    const key = (kind: 'ServiceEntry' | 'Endpoints', host: string): ConfigKey => ({
      kind,
      namespace: this.options.registry.getService(host)?.namespace ?? '',
      name: host,
    });
    const services = [...change.services].map((host) => key('ServiceEntry', host));
    for (const host of change.services) this.metrics.inboundUpdates.inc({ type: this.options.registry.getService(host) ? 'svc' : 'svcdelete' });
    for (const host of change.endpoints) if (!change.services.has(host)) this.metrics.inboundUpdates.inc({ type: 'eds' });
    const endpoints = [...change.endpoints].filter((host) => !change.services.has(host)).map((host) => key('Endpoints', host));
    if (services.length > 0) {
      this.requestPush({ full: true, configsUpdated: [...services, ...endpoints], reasons: ['service'], start: this.clock.now() });
    } else if (endpoints.length > 0) {
      this.requestPush({ full: false, configsUpdated: endpoints, reasons: ['endpoint'], start: this.clock.now() });
    }
  }

  // One debounced (merged) request: a new snapshot, then every proxy it affects into the push queue.
  private pushAll(request: PushRequest, merged: number): void {
    if (this.closed) return;
    for (const reason of request.reasons) this.metrics.pushTriggers.inc({ type: reason });
    this.metrics.debounceTime.observe(Math.max(0, this.clock.now() - request.start) / 1000);
    let push: P;
    const initStarted = performance.now();
    try {
      push = this.options.buildPushContext();
      this.metrics.pushContextInit.observe((performance.now() - initStarted) / 1000);
    } catch (err) {
      // The previous snapshot keeps serving; the next change tries again.
      this.metrics.pushContextErrors.inc();
      this.logger.warn(`building the push context failed (${merged} change(s) not pushed; the previous config keeps serving): ${describeError(err)}`);
      return;
    }
    this.current = push;
    this.generation++;
    this.lastPushAt = new Date();
    this.updateGauges();
    let queued = 0;
    for (const entry of this.proxies.values()) {
      // A proxy without its first config yet (queued, or its generation failed) gets everything from the new snapshot.
      if (entry.initialized && !this.affects(push, entry, request)) continue;
      this.queue.enqueue(entry.proxy.id, request);
      queued++;
    }
    this.metrics.proxiesQueued.set(this.queue.pendingCount);
    this.logger.info(
      `push ${this.generation} (version ${push.version}): ${request.full ? 'full' : 'endpoints only'}, ${merged} change(s) merged, ` +
        `${queued}/${this.proxies.size} proxies affected, reasons ${request.reasons.join(',')}`,
    );
  }

  private affects(push: P, entry: ProxyEntry<P>, request: PushRequest): boolean {
    if (!push.affects) return true;
    try {
      return push.affects(entry.proxy, request, entry.lastPush);
    } catch (err) {
      this.logger.warn(`push context affects() failed for ${entry.proxy.id}, pushing it anyway: ${describeError(err)}`);
      return true;
    }
  }

  private types(push: P, entry: ProxyEntry<P>, request: PushRequest): readonly string[] {
    const all = [...this.options.generators.keys()];
    if (!entry.initialized) return all;
    if (push.pushTypes) {
      try {
        const chosen = new Set(push.pushTypes(entry.proxy, request, entry.lastPush));
        return all.filter((t) => chosen.has(t));
      } catch (err) {
        this.logger.warn(`push context pushTypes() failed for ${entry.proxy.id}, pushing every type: ${describeError(err)}`);
        return all;
      }
    }
    return request.full ? all : all.filter((t) => t === CLUSTER_LOAD_ASSIGNMENT);
  }

  private async pushProxy(id: string, request: PushRequest): Promise<void> {
    // Yield between proxies so a large fan-out does not hold the event loop (and the ADS streams) for its whole length.
    await new Promise((resolve) => setImmediate(resolve));
    const entry = this.proxies.get(id);
    const push = this.current;
    if (!entry || !push || this.closed) return;
    const generated = new Map<string, readonly ResourceInput[]>();
    let failed = 0;
    for (const typeUrl of this.types(push, entry, request)) {
      const generator = this.options.generators.get(typeUrl)!;
      const started = this.clock.now();
      try {
        const { resources, hit } = this.xdsCache.getOrGenerate(typeUrl, this.generation, entry.proxy, () =>
          generator.generate(entry.proxy, push, request).map((r) => this.interner.encode(typeUrl, r)));
        this.metrics.cacheReads.inc({ type: hit ? 'hit' : 'miss' });
        generated.set(typeUrl, resources);
        this.metrics.configSize.observe(encodedSize(resources), { type: typeLabel(typeUrl) });
      } catch (err) {
        failed++;
        this.metrics.generateErrors.inc({ type: typeLabel(typeUrl) });
        this.logger.warn(`generating ${shortName(typeUrl)} for ${id} failed (it keeps its last ${shortName(typeUrl)}): ${describeError(err)}`);
      }
      this.metrics.pushTime.observe((this.clock.now() - started) / 1000, { type: typeLabel(typeUrl) });
    }
    this.metrics.cacheSize.set(this.xdsCache.stats().size);
    this.metrics.sharedResources.set(this.interner.stats().live);
    try {
      if (!entry.initialized) {
        // A partial first config would make the proxy drop what it runs (e.g. after a control-plane restart):
        // it waits instead, and the next push tries again.
        if (failed > 0) return;
        // All types at once: the cache answers a waiting stream as soon as anything is set for its node.
        this.cache.setSnapshot(id, Object.fromEntries(generated));
        entry.initialized = true;
      } else {
        for (const [typeUrl, resources] of generated) this.cache.setResources(id, typeUrl, resources);
      }
      entry.lastPush = push;
    } catch (err) {
      this.metrics.generateErrors.inc({ type: 'snapshot' });
      this.logger.warn(`the generated config for ${id} cannot be served: ${describeError(err)}`);
      return;
    }
    this.metrics.convergence.observe(Math.max(0, this.clock.now() - request.start) / 1000);
    this.metrics.proxiesQueued.set(this.queue.pendingCount);
  }

  private connected(event: ConnectEvent): void {
    const node = this.arrivingNodes.get(event.nodeKey) ?? { id: event.node.id, cluster: event.node.cluster };
    this.arrivingNodes.delete(event.nodeKey);
    this.metrics.connected.add(1);
    let proxy: Proxy;
    try {
      proxy = proxyFromNode(node);
    } catch (err) {
      this.logger.warn(
        `refusing xDS stream ${event.streamId} from ${event.peer}: ${describeError(err)}; Trellis serves Istio proxies only ` +
          `(e.g. sidecar~10.0.0.1~reviews-v1.default~default.svc.cluster.local); the stream gets no configuration`,
      );
      return;
    }
    let entry = this.proxies.get(proxy.id);
    if (entry) {
      // Another stream of a known proxy (e.g. Envoy reconnecting before the old stream timed out): same config.
      entry.streams.add(event.streamId);
      entry.proxy = proxy;
      return;
    }
    entry = { proxy, streams: new Set([event.streamId]), initialized: false, lastPush: undefined };
    this.proxies.set(proxy.id, entry);
    this.logger.info(`proxy ${proxy.id} connected (${event.mode}, ${event.peer}); generating its config`);
    this.queue.enqueue(proxy.id, { full: true, configsUpdated: [], reasons: ['proxy'], start: this.clock.now() });
  }

  private disconnected(event: DisconnectEvent): void {
    this.metrics.connected.add(-1);
    const entry = this.proxies.get(event.nodeKey);
    if (!entry || !entry.streams.delete(event.streamId)) return;
    if (entry.streams.size > 0) return;
    this.proxies.delete(event.nodeKey);
    this.queue.remove(event.nodeKey);
    this.cache.clearSnapshot(event.nodeKey);
    this.logger.info(`proxy ${event.nodeKey} disconnected (${event.reason})`);
  }

  /**
   * Istio's UpdateMetrics: each push status gauge is the number of distinct cases of the current snapshot, 0 when none
   * (a new snapshot starts from nothing). Generation adds cases after the snapshot is current, so the gauges follow it
   * until the next one replaces it.
   */
  private followPushStatus(push: P): void {
    this.stopFollowingStatus?.();
    this.stopFollowingStatus = undefined;
    const status = push.status;
    if (!status) return;
    const record = (): void => {
      for (const metric of Object.keys(PUSH_STATUS_METRICS) as PushStatusMetric[]) this.metrics.pushStatus[metric].set(status.count(metric));
    };
    record();
    this.stopFollowingStatus = status.onChange(record);
  }

  private updateGauges(): void {
    if (this.current) this.followPushStatus(this.current);
    this.metrics.services.set(this.options.registry.services().length);
    this.metrics.virtualServices.set(this.options.store.list('VirtualService').length);
    this.metrics.configProblems.set(this.options.store.problems().length);
    this.metrics.edsNoInstances.set(clustersWithoutInstances(this.options.registry));
  }
}

/** Istio's metric label for a type: cds, eds, lds, rds, sds. */
export function typeLabel(typeUrl: string): string {
  return shortName(typeUrl).toLowerCase();
}

/** Bytes of encoded resources (those the interner encoded; objects not yet encoded count 0). */
function encodedSize(resources: readonly ResourceInput[]): number {
  let bytes = 0;
  for (const r of resources) if ('any' in r) bytes += r.any.value?.byteLength ?? 0;
  return bytes;
}

/** Istio's pilot_eds_no_instances: service ports (each an outbound cluster) with no instance in the registry. */
function clustersWithoutInstances(registry: DiscoveryServerOptions<PushContextView>['registry']): number {
  let empty = 0;
  for (const service of registry.services()) {
    const ports = new Set(registry.instances(service.hostname).map((i) => i.servicePort.number));
    for (const port of service.ports) if (!ports.has(port.number)) empty++;
  }
  return empty;
}
