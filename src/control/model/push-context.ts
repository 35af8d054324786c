// The immutable snapshot a push reads (Istio's PushContext): services, instances, VirtualServices, DestinationRules, Sidecar scopes, gateways and policies, indexed.
import type {
  AuthorizationPolicy, DestinationRule, Gateway, Kind, PeerAuthentication, RequestAuthentication, Sidecar, Telemetry, TypedResource, VirtualService,
} from '../../api/index.js';
import type { ConfigStore } from '../config/store.js';
import type { ServiceRegistry } from '../registry/registry.js';
import { DestinationRuleIndex, subsetLabels } from './destination-rule-index.js';
import type { MeshConfig } from './mesh-config.js';
import { PeerAuthenticationIndex, type EffectivePeerAuthentication, type MutualTlsMode } from './peer-authentication-index.js';
import type { Proxy } from './proxy.js';
import { pushTypesFor } from './proxy-dependencies.js';
import type { PushRequest } from './push-request.js';
import { PushStatus } from './push-status.js';
import { clusterName } from './cluster-name.js';
import type { Service, ServiceInstance } from './service.js';
import { SidecarScope } from './sidecar-scope.js';
import { VirtualServiceIndex, virtualServiceForHost } from './virtual-service-index.js';
import { compareConfigs, compareStrings, isVisibleTo, selectorMatches } from './visibility.js';

export interface PushContextInput {
  store: ConfigStore;
  registry: ServiceRegistry;
  mesh: MeshConfig;
  /** Defaults to `<ISO time>/<counter>`, like Istio's push version. */
  version?: string;
}

let versionCounter = 0;

/** Reads the store and the registry once and indexes what generators need; the result never changes. */
export function buildPushContext(input: PushContextInput): PushContext {
  return new PushContext(input);
}

export class PushContext {
  readonly version: string;
  readonly mesh: MeshConfig;
  /** When the snapshot was built (ms since epoch). */
  readonly createdAt = Date.now();
  /** Conflicts and duplicates this snapshot's build and its proxies' generation resolved (istiod's pilot_conflict_* and co). */
  readonly status = new PushStatus();

  private readonly allServices: readonly Service[];
  private readonly servicesByHost = new Map<string, Service[]>();
  private readonly instancesByService = new Map<Service, ReadonlyMap<number, readonly ServiceInstance[]>>();
  private readonly allInstancesByService = new Map<Service, readonly ServiceInstance[]>();
  private readonly instancesByAddress = new Map<string, ServiceInstance[]>();
  private readonly visibleServices = new Map<string, readonly Service[]>();
  private readonly virtualServiceIndex: VirtualServiceIndex;
  private readonly destinationRuleIndex: DestinationRuleIndex;
  private readonly sidecars: readonly Sidecar[];
  private readonly gateways: readonly Gateway[];
  private readonly peerAuthns: readonly PeerAuthentication[];
  private readonly peerAuthnIndex: PeerAuthenticationIndex;
  private readonly authzPolicies: readonly AuthorizationPolicy[];
  private readonly requestAuthns: readonly RequestAuthentication[];
  private readonly telemetries: readonly Telemetry[];
  private readonly scopes = new Map<string, SidecarScope>();
  private readonly serviceAccountsByHost = new Map<string, readonly string[]>();

  constructor(input: PushContextInput) {
    const { store, registry, mesh } = input;
    this.mesh = mesh;
    this.version = input.version ?? `${new Date().toISOString()}/${++versionCounter}`;
    this.allServices = registry.services();
    for (const s of this.allServices) {
      let list = this.servicesByHost.get(s.hostname);
      if (!list) this.servicesByHost.set(s.hostname, (list = []));
      list.push(s);
      const instances = registry.instances(s.hostname, { namespace: s.namespace }).filter((i) => i.namespace === s.namespace);
      this.allInstancesByService.set(s, instances);
      const byPort = new Map<number, ServiceInstance[]>();
      for (const i of instances) {
        let l = byPort.get(i.servicePort.number);
        if (!l) byPort.set(i.servicePort.number, (l = []));
        l.push(i);
        let a = this.instancesByAddress.get(i.address);
        if (!a) this.instancesByAddress.set(i.address, (a = []));
        a.push(i);
      }
      this.instancesByService.set(s, byPort);
    }
    this.virtualServiceIndex = new VirtualServiceIndex(store.list('VirtualService'), mesh.domainSuffix);
    this.destinationRuleIndex = new DestinationRuleIndex(store.list('DestinationRule'), mesh.rootNamespace, mesh.domainSuffix, this.status.reporter(''));
    const sorted = <K extends Kind>(kind: K) => [...store.list(kind)].sort(compareConfigs) as TypedResource<K>[];
    this.sidecars = sorted('Sidecar');
    this.gateways = sorted('Gateway');
    this.peerAuthns = sorted('PeerAuthentication');
    this.peerAuthnIndex = new PeerAuthenticationIndex(this.peerAuthns, mesh.rootNamespace);
    this.authzPolicies = sorted('AuthorizationPolicy');
    this.requestAuthns = sorted('RequestAuthentication');
    this.telemetries = sorted('Telemetry');
  }

  // ---- services and instances

  /** Every service of the registry, sorted by host then namespace. */
  services(): readonly Service[] {
    return this.allServices;
  }

  /** True when `service`'s exportTo lets `namespace` see it. */
  isServiceVisible(service: Service, namespace: string): boolean {
    return isVisibleTo(service.exportTo, service.namespace, namespace);
  }

  /** The services `namespace` may see (exportTo), one per host: where a host is defined in several namespaces, its own wins, else the first. */
  servicesVisibleTo(namespace: string): readonly Service[] {
    const cached = this.visibleServices.get(namespace);
    if (cached) return cached;
    const out: Service[] = [];
    for (const list of this.servicesByHost.values()) {
      const visible = list.filter((s) => this.isServiceVisible(s, namespace));
      const pick = visible.find((s) => s.namespace === namespace) ?? visible[0];
      if (pick) out.push(pick);
      if (pick && visible.length > 1) this.reportDuplicateClusters(pick, visible);
    }
    this.visibleServices.set(namespace, out);
    return out;
  }

  /** The ports of services left out for `pick` that `pick` has too: Istio's duplicate clusters (same name, one kept). */
  private reportDuplicateClusters(pick: Service, visible: readonly Service[]): void {
    const ports = new Set(pick.ports.map((p) => p.number));
    for (const other of visible) {
      if (other === pick) continue;
      for (const port of other.ports) {
        if (!ports.has(port.number)) continue;
        const name = clusterName('outbound', port.number, '', pick.hostname);
        this.status.add('pilot_duplicate_envoy_clusters', name, '', `Duplicate cluster ${name} found: ${pick.hostname} is defined in namespaces ${pick.namespace} (kept) and ${other.namespace}`);
      }
    }
  }

  /** The service named `hostname` as seen from `namespace` (visible ones only, its own first), or from anywhere without a namespace. */
  service(hostname: string, namespace?: string): Service | undefined {
    const list = this.servicesByHost.get(hostname);
    if (!list) return undefined;
    if (namespace === undefined) return list[0];
    const visible = list.filter((s) => this.isServiceVisible(s, namespace));
    return visible.find((s) => s.namespace === namespace) ?? visible[0];
  }

  /** The instances of `service`, of one port number when given. */
  instances(service: Service, port?: number): readonly ServiceInstance[] {
    if (port === undefined) return this.allInstancesByService.get(service) ?? [];
    return this.instancesByService.get(service)?.get(port) ?? [];
  }

  /** The instances of the service named `hostname` seen from `namespace`, of one port number when given. */
  instancesByHost(hostname: string, port?: number, namespace?: string): readonly ServiceInstance[] {
    const s = this.service(hostname, namespace);
    return s ? this.instances(s, port) : [];
  }

  /**
   * The service ports of a host that have an instance with a sidecar (`tlsMode: istio`), as `namespace/port` sorted:
   * auto mTLS builds a port's mTLS socket only when it has one, so a change of this set changes clusters.
   */
  sidecarPorts(hostname: string): string {
    const ports = new Set<string>();
    for (const s of this.servicesByHost.get(hostname) ?? []) {
      for (const i of this.instances(s)) if (i.tlsMode === 'istio') ports.add(`${s.namespace}/${i.servicePort.number}`);
    }
    return [...ports].sort(compareStrings).join(',');
  }

  /** The distinct service accounts of a host's instances (for the SANs mTLS checks), sorted. */
  serviceAccounts(hostname: string): readonly string[] {
    let out = this.serviceAccountsByHost.get(hostname);
    if (!out) {
      const accounts = new Set<string>();
      for (const s of this.servicesByHost.get(hostname) ?? []) for (const i of this.instances(s)) if (i.serviceAccount) accounts.add(i.serviceAccount);
      out = [...accounts].sort(compareStrings);
      this.serviceAccountsByHost.set(hostname, out);
    }
    return out;
  }

  /**
   * The proxy's own service instances (its inbound): those at one of its IPs in its namespace (Istio's
   * GetProxyServiceTargets). Where several workloads share an address (a local mesh on 127.0.0.1), only the ones
   * that are this workload: its WorkloadEntry by name, or instances whose labels the proxy carries.
   */
  instancesForProxy(proxy: Proxy): readonly ServiceInstance[] {
    const candidates = proxy.ipAddresses.flatMap((ip) => this.instancesByAddress.get(ip) ?? []).filter((i) => i.namespace === proxy.namespace);
    const workloads = new Set(candidates.map((i) => `${i.source.kind ?? ''}/${i.source.name}`));
    if (workloads.size <= 1) return candidates;
    const own = candidates.filter((i) =>
      (i.source.kind === 'WorkloadEntry' && i.source.name === proxy.workloadName) ||
      (Object.keys(proxy.labels).length > 0 && Object.keys(i.labels).length > 0 && selectorMatches(i.labels, proxy.labels)));
    return own.length > 0 ? own : candidates;
  }

  // ---- scopes, routing and traffic policy

  /**
   * The proxy's SidecarScope: for a sidecar, the Sidecar in its namespace whose workloadSelector matches it (oldest
   * first), else its namespace's Sidecar without selector, else the root namespace's; else (and for gateways) the default.
   */
  sidecarScope(proxy: Proxy): SidecarScope {
    const sidecar = proxy.type === 'sidecar' ? this.sidecarFor(proxy) : undefined;
    const cacheKey = sidecar ? `${sidecar.metadata.namespace}/${sidecar.metadata.name}@${proxy.namespace}` : `@${proxy.namespace}`;
    let scope = this.scopes.get(cacheKey);
    if (!scope) {
      scope = new SidecarScope(this.scopeSource, proxy.namespace, sidecar, this.mesh.outboundTrafficPolicy);
      this.scopes.set(cacheKey, scope);
    }
    return scope;
  }

  private readonly scopeSource = {
    servicesVisibleTo: (ns: string) => this.servicesVisibleTo(ns),
    virtualServicesForGateway: (gw: string, ns: string) => this.virtualServicesForGateway(gw, ns),
    destinationRule: (ns: string, s: Service) => this.destinationRuleIndex.lookup(ns, s),
  };

  private sidecarFor(proxy: Proxy): Sidecar | undefined {
    const inNamespace = this.sidecars.filter((s) => s.metadata.namespace === proxy.namespace);
    const selected = inNamespace.find((s) => hasLabels(s.spec.workloadSelector?.labels) && selectorMatches(s.spec.workloadSelector?.labels, proxy.labels));
    return selected
      ?? inNamespace.find((s) => !hasLabels(s.spec.workloadSelector?.labels))
      ?? this.sidecars.find((s) => s.metadata.namespace === this.mesh.rootNamespace && !hasLabels(s.spec.workloadSelector?.labels));
  }

  /** VirtualServices (resolved: FQDN hosts, `ns/name` gateways) bound to `gateway` (`mesh` or `ns/name`) that `namespace` may see. */
  virtualServicesForGateway(gateway: string, namespace: string): readonly VirtualService[] {
    return this.virtualServiceIndex.forGateway(gateway, namespace);
  }

  /**
   * The VirtualService routing `hostname` for `proxy`: from its scope for `mesh`, else among those bound to `gateway`.
   * Several for one host are merged, oldest first.
   */
  virtualServiceFor(proxy: Proxy, hostname: string, gateway = 'mesh'): VirtualService | undefined {
    if (gateway === 'mesh') return this.sidecarScope(proxy).virtualServiceFor(hostname);
    return virtualServiceForHost(hostname, this.virtualServicesForGateway(gateway, proxy.namespace));
  }

  /** The DestinationRule for traffic from `proxy` to `service` (workloadSelector rules of the proxy's namespace first). */
  destinationRule(proxy: Proxy, service: Service): DestinationRule | undefined {
    return this.destinationRuleIndex.lookup(proxy.namespace, service, proxy.type === 'sidecar' ? proxy.labels : undefined)?.rule;
  }

  /** The labels of `subset` of `service` for `proxy`, or undefined when its DestinationRule has no such subset. */
  subsetLabels(proxy: Proxy, service: Service, subset: string): Readonly<Record<string, string>> | undefined {
    return subsetLabels(this.destinationRule(proxy, service), subset);
  }

  /** The Gateways whose selector matches a gateway proxy's labels (none for sidecars), oldest first. */
  gatewaysForProxy(proxy: Proxy): readonly Gateway[] {
    if (proxy.type !== 'router') return [];
    return this.gateways.filter((g) => selectorMatches(g.spec.selector, proxy.labels));
  }

  // ---- security policies (root namespace ones apply mesh-wide; then the proxy's namespace)

  peerAuthentications(proxy: Proxy): readonly PeerAuthentication[] {
    return this.policiesFor(this.peerAuthns, proxy);
  }

  /**
   * The namespace-wide mTLS mode (Istio's GetNamespaceMutualTLSMode, what clients infer a service's mode from): the
   * namespace's policy without selector, else the root namespace's; UNSET inherits. Undefined when none sets a mode
   * (Istio then means PERMISSIVE).
   */
  peerAuthenticationMode(namespace: string): MutualTlsMode | undefined {
    return this.peerAuthnIndex.namespaceMode(namespace);
  }

  /** The PeerAuthentication a workload (namespace, labels) is under, composed as Istio does: mode and per-port overrides. */
  effectivePeerAuthentication(namespace: string, labels: Readonly<Record<string, string>>): EffectivePeerAuthentication {
    return this.peerAuthnIndex.forWorkload(namespace, labels);
  }

  /** The mTLS mode a workload accepts on one of its endpoint ports (PERMISSIVE when no policy applies). */
  mtlsModeForPort(namespace: string, labels: Readonly<Record<string, string>>, port: number): MutualTlsMode {
    return this.peerAuthnIndex.modeForPort(namespace, labels, port);
  }

  authorizationPolicies(proxy: Proxy): readonly AuthorizationPolicy[] {
    return this.policiesFor(this.authzPolicies, proxy);
  }

  requestAuthentications(proxy: Proxy): readonly RequestAuthentication[] {
    return this.policiesFor(this.requestAuthns, proxy);
  }

  telemetry(proxy: Proxy): readonly Telemetry[] {
    return this.policiesFor(this.telemetries, proxy);
  }

  private policiesFor<T extends PeerAuthentication | AuthorizationPolicy | RequestAuthentication | Telemetry>(all: readonly T[], proxy: Proxy): T[] {
    // Policies with targetRef(s) bind to Gateway API resources or Services, not by label: left to the issue that adds them.
    const applies = (p: T) => {
      const spec = p.spec as { selector?: { matchLabels?: Record<string, string> }; targetRef?: unknown; targetRefs?: unknown[] };
      if (spec.targetRef || (spec.targetRefs && spec.targetRefs.length > 0)) return false;
      return selectorMatches(spec.selector?.matchLabels, proxy.labels);
    };
    const root = all.filter((p) => p.metadata.namespace === this.mesh.rootNamespace && applies(p));
    if (proxy.namespace === this.mesh.rootNamespace) return root;
    return [...root, ...all.filter((p) => p.metadata.namespace === proxy.namespace && applies(p))];
  }

  /** Finds a resource of this snapshot by kind and name (for change analysis). */
  resource(kind: Kind, namespace: string, name: string): TypedResource | undefined {
    const list: readonly TypedResource[] | undefined =
      kind === 'VirtualService' ? this.virtualServiceIndex.all
      : kind === 'Sidecar' ? this.sidecars
      : kind === 'Gateway' ? this.gateways
      : kind === 'PeerAuthentication' ? this.peerAuthns
      : kind === 'AuthorizationPolicy' ? this.authzPolicies
      : kind === 'RequestAuthentication' ? this.requestAuthns
      : kind === 'Telemetry' ? this.telemetries
      : undefined;
    return list?.find((r) => r.metadata.namespace === namespace && r.metadata.name === name);
  }

  // ---- what a change means for a proxy

  /**
   * The xDS type URLs `request` makes stale for `proxy` (Istio's ProxyNeedsPush + per-generator pushTypes): endpoint-only
   * → EDS; VirtualService → LDS/RDS; DestinationRule → CDS/EDS/LDS/RDS; ServiceEntry/Sidecar → CDS/EDS/LDS/RDS; Gateway only for
   * gateways; security policies → LDS (PeerAuthentication also CDS). Changes outside the proxy's scope give nothing.
   * `previous` is the snapshot the proxy was last pushed from, so deleted or moved resources are recognised too.
   */
  pushTypes(proxy: Proxy, request: PushRequest, previous?: PushContext): ReadonlySet<string> {
    return pushTypesFor(this, proxy, request, previous);
  }

  /** True when `request` needs any push to `proxy`. */
  affects(proxy: Proxy, request: PushRequest, previous?: PushContext): boolean {
    return this.pushTypes(proxy, request, previous).size > 0;
  }
}

function hasLabels(labels: Readonly<Record<string, string>> | undefined): boolean {
  return labels !== undefined && Object.keys(labels).length > 0;
}
