// What the listener manager needs from the rest of the proxy, and what it exposes to main.ts and the admin API.
import type { envoy } from '../../xds/generated/types.js';
import type { ClusterManager } from '../upstream/types.js';
import type { RouteTable } from '../router/route-table.js';
import type { HttpFilterFactory } from '../http/filter.js';

/** Route tables by name: RDS resources, looked up per request so an RDS update applies to new requests at once. */
export interface RouteTableProvider {
  get(name: string): RouteTable | undefined;
}

/** HTTP filter factories by Envoy name and by typed_config type URL (src/proxy/filters registers them). */
export interface HttpFilterRegistry {
  byName(name: string): HttpFilterFactory | undefined;
  byTypeUrl(typeUrl: string): HttpFilterFactory | undefined;
}

/** Counters of one HttpConnectionManager, Envoy names under `http.<stat_prefix>.` (downstream_rq_total, downstream_rq_2xx, …). */
export type HttpConnectionManagerStats = Record<string, number>;

/** Counters of one listener, Envoy names under `listener.<address>.` (downstream_cx_total, downstream_cx_active, …). */
export type ListenerStats = Record<string, number>;

/** Everything a listener's filter chains are built with; stays valid across config swaps (lookups are live). */
export interface ListenerContext {
  readonly clusters: ClusterManager;
  readonly routes: RouteTableProvider;
  readonly httpFilters: HttpFilterRegistry;
  /** Called once per finished HTTP stream (access logs); absent → nothing logged. */
  readonly onHttpStreamComplete?: (info: import('../http/stream-info.js').StreamInfo) => void;
  /** Node identity, for x-envoy headers and logs. */
  readonly nodeId: string;
  /** Compiles an HCM's inline route_config (the router's compiler); without it inline route configs are refused. */
  readonly compileRouteConfiguration?: (config: envoy.config.route.v3.RouteConfiguration) => RouteTable;
  /** SDS secrets by name, for DownstreamTlsContext tls_certificate_sds_secret_configs; absent → SDS references are refused. */
  readonly secrets?: import('../transport/secret-provider.js').SecretProvider;
  /** The node and TCP metrics store network filters (metadata exchange, istio.stats) use; absent → they see an unknown node. */
  readonly networkFilterDeps?: import('../filters/network-filter.js').NetworkFilterDeps;
}

/** A Listener validated and compiled (filter chains, HCM and filters built); binding happens in apply(). */
export interface CompiledListener {
  readonly name: string;
  readonly config: envoy.config.listener.v3.Listener;
  /** Content version, so re-applying an identical listener changes nothing. */
  readonly version: string;
}

export interface ListenerStatus {
  readonly name: string;
  /** `ip:port` actually bound (port 0 resolved), or undefined for bind_to_port: false. */
  readonly boundAddress?: string;
  /** `ip:port` from the config: the stat scope of listeners that are not bound (bind_to_port: false, hand-off targets). */
  readonly configuredAddress?: string;
  readonly state: 'active' | 'draining';
  /** Listener.traffic_direction, when set. */
  readonly trafficDirection?: 'INBOUND' | 'OUTBOUND';
  readonly stats: ListenerStats;
  readonly httpStats: Readonly<Record<string, HttpConnectionManagerStats>>;
  /** Counters of each tcp_proxy by stat_prefix (Envoy: `tcp.<stat_prefix>.`). */
  readonly tcpStats?: Readonly<Record<string, Record<string, number>>>;
  /** Counters of network read filters (RBAC) by full Envoy stat name (`tcp.rbac.denied`): the stat_prefix is the filter's own. */
  readonly networkFilterStats?: Readonly<Record<string, number>>;
}

export interface DrainListenersOptions {
  readonly inboundOnly: boolean;
  readonly graceful: boolean;
  /** The graceful drain period. */
  readonly drainTimeMs: number;
  /** With graceful: the listeners keep accepting after the drain period (Envoy's skip_exit). */
  readonly skipExit?: boolean;
  /** How long in-flight requests may run once a listener stopped accepting (default: the manager's drain grace). */
  readonly graceMs?: number;
}

export interface ListenerManager {
  /**
   * Compiles a Listener; throws XdsValidationError naming every unsupported or invalid field (the proxy NACKs).
   * Pure with respect to sockets: nothing is bound.
   */
  compile(listener: envoy.config.listener.v3.Listener): CompiledListener;
  /**
   * Makes the active set equal `listeners` (LDS is state of the world): new ones bind, changed ones start a new
   * socket and the old one drains (in-flight requests finish), missing ones drain and close.
   */
  apply(listeners: readonly CompiledListener[]): Promise<void>;
  status(): readonly ListenerStatus[];
  /** Stops accepting on every listener and lets in-flight requests finish (graceMs at most). */
  drain(options?: { readonly graceMs?: number }): Promise<void>;
  /**
   * Envoy's admin /drain_listeners: the chosen listeners (all, or traffic_direction INBOUND only) stop accepting and
   * their in-flight requests get graceMs; with `graceful`, first a drain period of drainTimeMs (Envoy's --drain-time-s)
   * during which they keep accepting but every HTTP connection is told to close. Resolves once they are stopped.
   */
  drainListeners(options: DrainListenersOptions): Promise<void>;
  close(): Promise<void>;
}
