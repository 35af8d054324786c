// What one sidecar sees (Istio's SidecarScope): the services, VirtualServices and DestinationRules its Sidecar resource (or the default) lets in.
import type { DestinationRule, IstioEgressListener, IstioIngressListener, Sidecar, VirtualService } from '../../api/index.js';
import { resourceKey } from '../../api/index.js';
import type { ConsolidatedDestinationRule } from './destination-rule-index.js';
import type { Service } from './service.js';
import { MESH_GATEWAY, virtualServiceDestinations, VirtualServiceHostIndex } from './virtual-service-index.js';
import { hostsOverlap } from './visibility.js';

/** One `namespace/host` of a Sidecar egress listener, with `.` already replaced by the proxy's namespace. */
export interface EgressHost {
  /** A namespace, `*` (any) or `~` (none). */
  readonly namespace: string;
  /** A host, `*` or `*.suffix`. */
  readonly host: string;
}

/** A Sidecar egress listener with its hosts parsed. */
export interface SidecarEgressListener {
  readonly spec: IstioEgressListener;
  readonly hosts: readonly EgressHost[];
}

/** What the push context offers a scope while it is built. */
export interface SidecarScopeSource {
  /** Services visible to `namespace` (exportTo), one per host (the namespace's own first). */
  servicesVisibleTo(namespace: string): readonly Service[];
  /** VirtualServices bound to `gateway` visible to `namespace`, oldest first. */
  virtualServicesForGateway(gateway: string, namespace: string): readonly VirtualService[];
  /** The DestinationRule for `service` from `namespace`, by Istio's precedence (without workloadSelector rules). */
  destinationRule(namespace: string, service: Service): ConsolidatedDestinationRule | undefined;
}

/** `ns/host` parsed; `.` is `namespace`; a host without namespace (invalid in Istio, kept lenient) means any namespace. */
export function parseEgressHost(value: string, namespace: string): EgressHost {
  const slash = value.indexOf('/');
  if (slash < 0) return { namespace: '*', host: value };
  const ns = value.slice(0, slash);
  return { namespace: ns === '.' ? namespace : ns, host: value.slice(slash + 1) };
}

function admits(hosts: readonly EgressHost[], namespace: string, hostname: string): boolean {
  return hosts.some((h) => h.namespace !== '~' && (h.namespace === '*' || h.namespace === namespace) && hostsOverlap(h.host, hostname));
}

/** Config keys (`Kind/namespace/name`) are how `dependsOn` recognises a change. */
function key(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export class SidecarScope {
  /** `default` or the Sidecar's `namespace/name`. */
  readonly name: string;
  /** The namespace whose view this is (the proxy's). */
  readonly namespace: string;
  /** The Sidecar resource, or undefined for the default scope (everything visible). */
  readonly sidecar: Sidecar | undefined;
  readonly services: readonly Service[];
  /** The `mesh` VirtualServices in scope (resolved), oldest first. */
  readonly virtualServices: readonly VirtualService[];
  readonly egressListeners: readonly SidecarEgressListener[];
  readonly ingressListeners: readonly IstioIngressListener[];
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** `Kind/namespace/name` of every resource this scope was built from, and `Endpoints/<ns>/<host>`+`ServiceEntry/<ns>/<host>` per service. */
  readonly configDependencies: ReadonlySet<string>;
  private readonly serviceByHost: ReadonlyMap<string, Service>;
  private readonly vsByHost = new Map<string, VirtualService | null>();
  private vsIndex: VirtualServiceHostIndex | undefined;
  private readonly drByHost: ReadonlyMap<string, ConsolidatedDestinationRule>;

  constructor(source: SidecarScopeSource, namespace: string, sidecar: Sidecar | undefined, meshOutboundPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY') {
    this.namespace = namespace;
    this.sidecar = sidecar;
    this.name = sidecar ? `${sidecar.metadata.namespace}/${sidecar.metadata.name}` : 'default';
    this.ingressListeners = sidecar?.spec.ingress ?? [];
    this.outboundTrafficPolicy = sidecar?.spec.outboundTrafficPolicy?.mode ?? meshOutboundPolicy;
    const visible = source.servicesVisibleTo(namespace);
    const meshVirtualServices = source.virtualServicesForGateway(MESH_GATEWAY, namespace);
    const deps = new Set<string>();

    if (!sidecar || !sidecar.spec.egress || sidecar.spec.egress.length === 0) {
      // Istio's DefaultSidecarScopeForNamespace: all visible services and VirtualServices (a Sidecar without egress means the same).
      this.egressListeners = [{ spec: { hosts: ['*/*'] }, hosts: [{ namespace: '*', host: '*' }] }];
      this.services = visible;
      this.virtualServices = meshVirtualServices;
    } else {
      this.egressListeners = sidecar.spec.egress.map((spec) => ({ spec, hosts: (spec.hosts ?? []).map((h) => parseEgressHost(h, namespace)) }));
      const hosts = this.egressListeners.flatMap((l) => l.hosts);
      this.virtualServices = meshVirtualServices.filter((vs) => (vs.spec.hosts ?? []).some((h) => admits(hosts, vs.metadata.namespace, h)));
      // Istio adds the destinations of selected VirtualServices too, so a route never points at a cluster the proxy lacks.
      const destinations = new Set<string>();
      for (const vs of this.virtualServices) for (const d of virtualServiceDestinations(vs)) destinations.add(d);
      this.services = visible.filter((s) => admits(hosts, s.namespace, s.hostname) || destinations.has(s.hostname));
    }
    this.serviceByHost = new Map(this.services.map((s) => [s.hostname, s]));

    const drs = new Map<string, ConsolidatedDestinationRule>();
    for (const s of this.services) {
      const dr = source.destinationRule(namespace, s);
      if (dr) {
        drs.set(s.hostname, dr);
        for (const r of dr.sources) deps.add(resourceKey(r));
      }
      deps.add(key('ServiceEntry', s.namespace, s.hostname));
      deps.add(key('Endpoints', s.namespace, s.hostname));
      if (s.source.kind) deps.add(key(s.source.kind, s.source.namespace, s.source.name));
    }
    this.drByHost = drs;
    for (const vs of this.virtualServices) deps.add(resourceKey(vs));
    if (sidecar) deps.add(resourceKey(sidecar));
    this.configDependencies = deps;
  }

  service(hostname: string): Service | undefined {
    return this.serviceByHost.get(hostname);
  }

  hasService(hostname: string): boolean {
    return this.serviceByHost.has(hostname);
  }

  /** The (merged) VirtualService routing `hostname` for this scope, if any. */
  virtualServiceFor(hostname: string): VirtualService | undefined {
    let vs = this.vsByHost.get(hostname);
    if (vs === undefined) {
      this.vsIndex ??= new VirtualServiceHostIndex(this.virtualServices);
      vs = this.vsIndex.forHost(hostname) ?? null;
      this.vsByHost.set(hostname, vs);
    }
    return vs ?? undefined;
  }

  /** The DestinationRule (without workloadSelector rules; see PushContext.destinationRule) for a service in scope. */
  destinationRule(hostname: string): DestinationRule | undefined {
    return this.drByHost.get(hostname)?.rule;
  }

  /** True when a change to `kind namespace/name` can change what this scope yields (Istio's DependsOnConfig). */
  dependsOn(kind: string, namespace: string, name: string): boolean {
    return this.configDependencies.has(key(kind, namespace, name));
  }

  /** Hosts in scope, for comparing two scopes. */
  hostSet(): ReadonlySet<string> {
    return new Set(this.serviceByHost.keys());
  }
}
