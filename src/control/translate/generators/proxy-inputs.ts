// What the generators of one proxy read from one PushContext (scope, services, inbound instances, mode), computed once per snapshot and proxy.
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import type { Service, ServiceInstance } from '../../model/service.js';
import type { SidecarScope } from '../../model/sidecar-scope.js';
import type { ClusterBuildContext } from '../cluster/index.js';

/** Node metadata that switches a sidecar to explicit (HTTP_PROXY) mode: one listener on 127.0.0.1:<port>, no iptables needed. */
export const EXPLICIT_PROXY_PORT_METADATA = 'TRELLIS_EXPLICIT_PROXY_PORT';

/**
 * Node metadata of a local sidecar (no iptables, one loopback shared by the mesh): `<endpoint port>=<application port>`
 * pairs, comma-separated. The endpoint port is the one the workload's WorkloadEntry names, where the sidecar binds its
 * inbound listener on 127.0.0.1; the inbound cluster forwards to 127.0.0.1:<application port>.
 */
export const LOCAL_INBOUND_PORTS_METADATA = 'TRELLIS_LOCAL_INBOUND_PORTS';

export interface ProxyInputs {
  readonly proxy: Proxy;
  readonly push: PushContext;
  readonly scope: SidecarScope;
  /** The services the proxy may send to (its Sidecar scope; for gateways, every visible service). */
  readonly outboundServices: readonly Service[];
  /** The proxy's own instances (its inbound); none for gateways. */
  readonly inboundInstances: readonly ServiceInstance[];
  /** Set in explicit (HTTP_PROXY) mode: the loopback port the application sends its proxied requests to. */
  readonly explicitPort: number | undefined;
  /** Set for a local sidecar: endpoint port → application port (TRELLIS_LOCAL_INBOUND_PORTS). */
  readonly localInboundPorts: ReadonlyMap<number, number> | undefined;
  /** What cluster translators need besides the service and its rule (instances for DNS/inline clusters, mTLS modes). */
  readonly clusterContext: ClusterBuildContext;
}

const cache = new WeakMap<PushContext, WeakMap<Proxy, ProxyInputs>>();

/** The inputs for `proxy` from `push`; the same object for the same pair, so CDS/EDS and LDS/RDS share the work. */
export function proxyInputs(proxy: Proxy, push: PushContext): ProxyInputs {
  let perPush = cache.get(push);
  if (!perPush) cache.set(push, (perPush = new WeakMap()));
  let inputs = perPush.get(proxy);
  if (!inputs) {
    const scope = push.sidecarScope(proxy);
    inputs = {
      proxy,
      push,
      scope,
      outboundServices: scope.services,
      inboundInstances: proxy.type === 'sidecar' ? push.instancesForProxy(proxy) : [],
      explicitPort: explicitProxyPort(proxy),
      localInboundPorts: proxy.type === 'sidecar' ? localInboundPorts(proxy) : undefined,
      // serviceAccounts is left to the cluster builder, which derives the SPIFFE ids from `instances`.
      clusterContext: {
        proxy,
        mesh: push.mesh,
        instances: (service, port) => push.instances(service, port.number),
        peerAuthenticationMode: (namespace) => push.peerAuthenticationMode(namespace),
        endpointMtlsMode: (instance) => push.mtlsModeForPort(instance.source.namespace, instance.labels, instance.port),
      },
    };
    perPush.set(proxy, inputs);
  }
  return inputs;
}

/** A per-snapshot, per-proxy memo for a generator's intermediate result (e.g. the clusters EDS follows). */
export function memoize<T>(slot: WeakMap<PushContext, WeakMap<Proxy, T>>, proxy: Proxy, push: PushContext, compute: () => T): T {
  let perPush = slot.get(push);
  if (!perPush) slot.set(push, (perPush = new WeakMap()));
  let value = perPush.get(proxy);
  if (value === undefined) {
    value = compute();
    perPush.set(proxy, value);
  }
  return value;
}

/** Parses TRELLIS_LOCAL_INBOUND_PORTS; malformed pairs are ignored (a proxy's metadata is not config to refuse). */
export function localInboundPorts(proxy: Proxy): ReadonlyMap<number, number> | undefined {
  const raw = proxy.metadata[LOCAL_INBOUND_PORTS_METADATA];
  if (raw === undefined || raw.trim() === '') return undefined;
  const out = new Map<number, number>();
  for (const pair of raw.split(',')) {
    const [inbound, app] = pair.split('=').map((s) => Number(s.trim()));
    if (isPort(inbound) && isPort(app)) out.set(inbound!, app!);
  }
  return out.size > 0 ? out : undefined;
}

function isPort(n: number | undefined): boolean {
  return n !== undefined && Number.isInteger(n) && n > 0 && n < 65536;
}

function explicitProxyPort(proxy: Proxy): number | undefined {
  const raw = proxy.metadata[EXPLICIT_PROXY_PORT_METADATA];
  if (raw === undefined || raw === '') return undefined;
  const port = Number(raw);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}
