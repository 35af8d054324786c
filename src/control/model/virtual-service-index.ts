// VirtualServices as the push context holds them: short names resolved (Istio's resolveVirtualServiceShortnames), indexed by gateway, merged per host.
import type { Destination, HTTPRoute, VirtualService } from '../../api/index.js';
import { hostMatches, isWildcardHost, resolveHostname } from './hostname.js';
import { compareConfigs, isVisibleTo } from './visibility.js';

/** The gateway name a VirtualService without `gateways` is bound to: every sidecar. */
export const MESH_GATEWAY = 'mesh';

/**
 * `ns/name` for a gateway reference written in a resource of `namespace`: `name` → `namespace/name`,
 * `name.ns.svc.<suffix>` → `ns/name` (the legacy FQDN form), `ns/name` and `mesh` unchanged.
 */
export function resolveGatewayName(gateway: string, namespace: string): string {
  if (gateway === MESH_GATEWAY || gateway.includes('/')) return gateway;
  const [name, ns] = gateway.split('.');
  return name && ns ? `${ns}/${name}` : `${namespace}/${gateway}`;
}

/**
 * A copy of `vs` with every host FQDN (hosts and destinations, resolved in the VirtualService's namespace) and every
 * gateway `ns/name` (`mesh` when none is given), so translators and merges never resolve names again.
 */
export function resolveVirtualService(vs: VirtualService, domainSuffix: string): VirtualService {
  const ns = vs.metadata.namespace;
  const host = (h: string) => resolveHostname(h, ns, domainSuffix);
  const dest = (d: Destination): Destination => ({ ...d, host: host(d.host) });
  const gateways = (list: readonly string[] | undefined) => list?.map((g) => resolveGatewayName(g, ns));
  const spec = vs.spec;
  const http = spec.http?.map((r): HTTPRoute => ({
    ...r,
    match: r.match?.map((m) => (m.gateways ? { ...m, gateways: gateways(m.gateways) } : m)),
    route: r.route?.map((d) => ({ ...d, destination: dest(d.destination) })),
    mirror: r.mirror ? dest(r.mirror) : undefined,
    mirrors: r.mirrors?.map((m) => ({ ...m, destination: dest(m.destination) })),
  }));
  const l4 = <T extends { match?: { gateways?: string[] }[]; route?: { destination: Destination }[] }>(r: T): T => ({
    ...r,
    match: r.match?.map((m) => (m.gateways ? { ...m, gateways: gateways(m.gateways) } : m)),
    route: r.route?.map((d) => ({ ...d, destination: dest(d.destination) })),
  });
  return {
    ...vs,
    spec: {
      ...spec,
      hosts: (spec.hosts ?? []).map(host),
      gateways: spec.gateways && spec.gateways.length > 0 ? gateways(spec.gateways) : [MESH_GATEWAY],
      ...(http ? { http: http.map(dropUndefined) } : {}),
      ...(spec.tcp ? { tcp: spec.tcp.map(l4) } : {}),
      ...(spec.tls ? { tls: spec.tls.map(l4) } : {}),
    },
  };
}

/** Every host a (resolved) VirtualService sends traffic to: route, mirror and mirrors destinations. */
export function virtualServiceDestinations(vs: VirtualService): Set<string> {
  const out = new Set<string>();
  for (const r of vs.spec.http ?? []) {
    for (const d of r.route ?? []) out.add(d.destination.host);
    if (r.mirror) out.add(r.mirror.host);
    for (const m of r.mirrors ?? []) out.add(m.destination.host);
  }
  for (const r of [...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])]) for (const d of r.route ?? []) out.add(d.destination.host);
  return out;
}

/** Resolved VirtualServices keyed by the gateways they are bound to, each list in Istio's order (oldest first; here name, namespace). */
export class VirtualServiceIndex {
  private readonly byGateway = new Map<string, VirtualService[]>();
  readonly all: readonly VirtualService[];

  constructor(virtualServices: readonly VirtualService[], domainSuffix: string) {
    this.all = [...virtualServices].sort(compareConfigs).map((vs) => resolveVirtualService(vs, domainSuffix));
    for (const vs of this.all) {
      for (const gw of vs.spec.gateways ?? [MESH_GATEWAY]) {
        let list = this.byGateway.get(gw);
        if (!list) this.byGateway.set(gw, (list = []));
        list.push(vs);
      }
    }
  }

  /** The VirtualServices bound to `gateway` (`mesh` or `ns/name`) that `namespace` may see (exportTo). */
  forGateway(gateway: string, namespace: string): readonly VirtualService[] {
    return (this.byGateway.get(gateway) ?? []).filter((vs) => isVisibleTo(vs.spec.exportTo, vs.metadata.namespace, namespace));
  }
}

/**
 * The VirtualService for `hostname` among `candidates` (resolved, in order): those naming the host exactly, else those
 * whose most specific wildcard host covers it. Several are merged into one whose routes are theirs in order, so the
 * first (oldest) VirtualService's routes match first.
 */
export function virtualServiceForHost(hostname: string, candidates: readonly VirtualService[]): VirtualService | undefined {
  return new VirtualServiceHostIndex(candidates).forHost(hostname);
}

/** VirtualServices by exact host and by wildcard host, so finding one per service does not scan them all (1,000 services × 100 VS). */
export class VirtualServiceHostIndex {
  private readonly exact = new Map<string, VirtualService[]>();
  /** Wildcard hosts, most specific (longest) first. */
  private readonly wildcards: [string, VirtualService[]][] = [];

  constructor(candidates: readonly VirtualService[]) {
    const wild = new Map<string, VirtualService[]>();
    for (const vs of candidates) {
      for (const h of new Set(vs.spec.hosts ?? [])) {
        const map = isWildcardHost(h) ? wild : this.exact;
        let list = map.get(h);
        if (!list) map.set(h, (list = []));
        list.push(vs);
      }
    }
    this.wildcards = [...wild].sort(([a], [b]) => b.length - a.length);
  }

  forHost(hostname: string): VirtualService | undefined {
    const exact = this.exact.get(hostname);
    if (exact) return mergeVirtualServices(hostname, exact);
    for (const [pattern, list] of this.wildcards) if (hostMatches(pattern, hostname)) return mergeVirtualServices(hostname, list);
    return undefined;
  }
}

function mergeVirtualServices(hostname: string, list: readonly VirtualService[]): VirtualService {
  if (list.length === 1) return list[0]!;
  const [first] = list as [VirtualService, ...VirtualService[]];
  const concat = <T>(pick: (vs: VirtualService) => T[] | undefined): T[] | undefined => {
    const all = list.flatMap((vs) => pick(vs) ?? []);
    return all.length > 0 ? all : undefined;
  };
  const http = concat((vs) => vs.spec.http), tcp = concat((vs) => vs.spec.tcp), tls = concat((vs) => vs.spec.tls);
  return {
    ...first,
    metadata: { ...first.metadata, annotations: { ...first.metadata.annotations, 'trellis.io/merged-from': list.map((vs) => `${vs.metadata.namespace}/${vs.metadata.name}`).join(',') } },
    spec: { ...first.spec, hosts: [hostname], ...(http ? { http } : {}), ...(tcp ? { tcp } : {}), ...(tls ? { tls } : {}) },
  };
}

function dropUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}
