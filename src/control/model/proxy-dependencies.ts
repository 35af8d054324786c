// Which xDS types a push request makes stale for one proxy (Istio's ProxyNeedsPush, checkProxyDependencies and the generators' pushTypes).
import type { Kind } from '../../api/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, NAME_TABLE, ROUTE_CONFIGURATION, SECRET } from '../../xds/type-urls.js';
import type { Proxy } from './proxy.js';
import type { PushContext } from './push-context.js';
import type { ConfigKey, PushRequest } from './push-request.js';
import type { SidecarScope } from './sidecar-scope.js';
import { selectorMatches } from './visibility.js';

/** Every type, for a push of everything (start-up, a new proxy, a forced resync). */
export const ALL_PUSH_TYPES: readonly string[] = [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET, NAME_TABLE];

/** The types a change of each kind can touch, given it concerns the proxy (as Istio's skipped{Cds,Lds,Rds}Configs leave them). */
export const TYPES_BY_KIND: Readonly<Record<Kind | 'Endpoints', readonly string[]>> = {
  Endpoints: [CLUSTER_LOAD_ASSIGNMENT],
  // The name table follows services (hosts, addresses, scope); a headless host's endpoints too (see pushTypesFor).
  WorkloadEntry: [CLUSTER_LOAD_ASSIGNMENT],
  ServiceEntry: [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, NAME_TABLE],
  Sidecar: [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, NAME_TABLE],
  // Subsets and consistent-hash policies also show in routes; subset label changes re-filter endpoints.
  // connectionPool.tcp.idleTimeout and maxConnectionDuration go into the outbound tcp_proxy filters (listeners).
  DestinationRule: [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION],
  VirtualService: [LISTENER, ROUTE_CONFIGURATION],
  Gateway: [LISTENER, ROUTE_CONFIGURATION],
  // Auto mTLS reads PeerAuthentication for the client side (clusters: the destination namespace's mode; endpoints: a
  // workload or port-level DISABLE drops tlsMode:istio) as well as the server side (inbound listeners).
  PeerAuthentication: [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER],
  AuthorizationPolicy: [LISTENER],
  RequestAuthentication: [LISTENER],
  Telemetry: [LISTENER],
};

const SECURITY_KINDS: ReadonlySet<string> = new Set(['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'Telemetry']);

export function pushTypesFor(push: PushContext, proxy: Proxy, request: PushRequest, previous?: PushContext): ReadonlySet<string> {
  const out = new Set<string>();
  if (request.configsUpdated.length === 0) {
    // Nothing named: a full push is of everything, an endpoint push of every endpoint.
    for (const t of request.full ? ALL_PUSH_TYPES : [CLUSTER_LOAD_ASSIGNMENT]) out.add(t);
    return out;
  }
  const scopes = previous ? [push.sidecarScope(proxy), previous.sidecarScope(proxy)] : [push.sidecarScope(proxy)];
  const snapshots = previous ? [push, previous] : [push];
  for (const key of request.configsUpdated) {
    if (!request.full && key.kind !== 'Endpoints') continue;
    if (!concerns(key, proxy, push.mesh.rootNamespace, scopes, snapshots)) continue;
    for (const t of TYPES_BY_KIND[key.kind]) out.add(t);
    // A headless (resolution NONE) host answers DNS with its endpoint IPs: its endpoints are in the name table (Istio pushes NDS for them).
    if (key.kind === 'Endpoints' && push.service(key.name)?.resolution === 'NONE') out.add(NAME_TABLE);
    // Auto mTLS builds a port's mTLS socket only while it has a sidecar endpoint: endpoints that change that change CDS.
    if (key.kind === 'Endpoints' && previous && push.sidecarPorts(key.name) !== previous.sidecarPorts(key.name)) out.add(CLUSTER);
    if (key.kind === 'WorkloadEntry' && key.namespace === proxy.namespace && key.name === proxy.workloadName) {
      // The proxy's own WorkloadEntry: its inbound listeners and clusters follow its ports.
      out.add(CLUSTER).add(LISTENER).add(ROUTE_CONFIGURATION);
    }
  }
  // A change that moves services in or out of scope (a VirtualService destination under a Sidecar, a new exportTo) changes clusters.
  if (previous && request.full && !out.has(CLUSTER) && out.size > 0 && !sameHosts(scopes[0]!, scopes[1]!)) {
    out.add(CLUSTER).add(CLUSTER_LOAD_ASSIGNMENT);
  }
  return out;
}

function concerns(key: ConfigKey, proxy: Proxy, rootNamespace: string, scopes: readonly SidecarScope[], snapshots: readonly PushContext[]): boolean {
  switch (key.kind) {
    case 'Gateway':
      if (proxy.type !== 'router') return false;
      return anyFound(snapshots, key, (gw) => selectorMatches((gw.spec as { selector?: Record<string, string> }).selector, proxy.labels));
    case 'Sidecar':
      if (proxy.type !== 'sidecar') return false;
      return scopes.some((s) => s.dependsOn(key.kind, key.namespace, key.name));
    case 'Endpoints':
    case 'ServiceEntry':
      // ServiceEntry keys name either the resource or (from a registry) the host; a scope depends on both. A host the
      // registry just deleted comes without a namespace (nothing is left to ask): the scopes that had the host decide.
      if (key.namespace === '') return scopes.some((s) => s.hostSet().has(key.name));
      return scopes.some((s) => s.dependsOn(key.kind, key.namespace, key.name) || s.dependsOn('ServiceEntry', key.namespace, key.name));
    case 'WorkloadEntry':
      // Its instances belong to services of its own namespace.
      return (key.namespace === proxy.namespace && key.name === proxy.workloadName) || scopes.some((s) => s.services.some((svc) => svc.namespace === key.namespace));
    case 'VirtualService':
      if (proxy.type === 'router') {
        const gateways = new Set(snapshots.flatMap((p) => p.gatewaysForProxy(proxy)).map((g) => `${g.metadata.namespace}/${g.metadata.name}`));
        return snapshots.some((p) => {
          const vs = p.resource('VirtualService', key.namespace, key.name);
          return vs !== undefined && ((vs.spec as { gateways?: string[] }).gateways ?? []).some((g) => gateways.has(g));
        });
      }
      return scopes.some((s) => s.dependsOn(key.kind, key.namespace, key.name));
    case 'DestinationRule':
      return scopes.some((s) => s.dependsOn(key.kind, key.namespace, key.name));
    case 'PeerAuthentication':
      // Clients too: a policy decides how they reach the workloads of its namespace (mesh-wide ones reach everyone).
      if (key.namespace === rootNamespace || scopes.some((s) => s.services.some((svc) => svc.namespace === key.namespace))) return true;
      if (key.namespace !== proxy.namespace) return false;
      return anyFound(snapshots, key, (p) => selectorMatches((p.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels, proxy.labels), true);
    default:
      if (SECURITY_KINDS.has(key.kind)) {
        if (key.namespace !== rootNamespace && key.namespace !== proxy.namespace) return false;
        return anyFound(snapshots, key, (p) => selectorMatches((p.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels, proxy.labels), true);
      }
      return true;
  }
}

/** True when the keyed resource, in any snapshot that has it, passes `test`; `whenMissing` when none has it. */
function anyFound(snapshots: readonly PushContext[], key: ConfigKey, test: (r: { spec: unknown }) => boolean, whenMissing = false): boolean {
  let found = false;
  for (const p of snapshots) {
    const r = key.kind === 'Endpoints' ? undefined : p.resource(key.kind, key.namespace, key.name);
    if (!r) continue;
    found = true;
    if (test(r)) return true;
  }
  return found ? false : whenMissing;
}

function sameHosts(a: SidecarScope, b: SidecarScope): boolean {
  if (a === b) return true;
  const ha = a.hostSet(), hb = b.hostSet();
  if (ha.size !== hb.size) return false;
  for (const h of ha) if (!hb.has(h)) return false;
  return true;
}
