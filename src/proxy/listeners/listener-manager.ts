// The listener manager: compiles Listeners, binds them, picks filter chains per connection and drains on update or removal.
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { XdsValidationError } from '../../common/errors.js';
import { unpackAny } from '../../xds/codec.js';
import type { envoy } from '../../xds/generated/types.js';
import {
  compileHttpConnectionManager,
  HTTP_CONNECTION_MANAGER_NAME,
  HTTP_CONNECTION_MANAGER_TYPE_URL,
  type CompiledHttpConnectionManager,
  type HttpConnectionManager,
} from '../http/connection-manager.js';
import type { DownstreamConnectionInfo } from '../http/server-stream.js';
import { compileTcpProxy, TCP_PROXY_NAME, TCP_PROXY_TYPE_URL, type TcpProxy } from '../filters/tcp-proxy.js';
import { NETWORK_READ_FILTER_NAMES, networkReadFilterFactory, type DownstreamConnection, type NetworkReadFilter } from '../filters/network-filter.js';
import { DownstreamTlsAcceptor } from '../transport/downstream-tls-acceptor.js';
import type { TlsConnectionInfo } from '../transport/peer-certificate.js';
import { compileDownstreamTls, DOWNSTREAM_TLS_CONTEXT_TYPE_URL, RAW_BUFFER_TYPE_URL, type CompiledDownstreamTls } from '../transport/downstream-tls.js';
import { NO_SECRETS } from '../transport/secret-provider.js';
import { detectHttp2Preface, peekSocket } from '../transport/tls-inspector.js';
import { compileInspectors, HTTP_INSPECTOR_NAMES, inspectConnection, TLS_INSPECTOR_NAMES, type InspectorConfig } from './protocol-detection.js';
import { loadOriginalDestinationSupport, type OriginalDestination, type OriginalDestinationSupport } from '../transport/original-destination.js';
import { compileChainMatch, matchKey, needsInspection, selectFilterChain, type CompiledChainMatch } from './filter-chain-match.js';
import type { CompiledListener, DrainListenersOptions, ListenerContext, ListenerManager, ListenerStatus } from './types.js';

type Listener = envoy.config.listener.v3.Listener;
type FilterChain = envoy.config.listener.v3.FilterChain;

const SUPPORTED_LISTENER_FIELDS = new Set([
  'name', 'address', 'stat_prefix', 'filter_chains', 'default_filter_chain', 'use_original_dst', 'per_connection_buffer_limit_bytes',
  'metadata', 'drain_type', 'listener_filters', 'listener_filters_timeout', 'continue_on_listener_filters_timeout', 'traffic_direction',
  'bind_to_port', 'access_log', 'reuse_port', 'enable_reuse_port', 'tcp_backlog_size', 'ignore_global_conn_limit', 'bypass_overload_manager',
]);
/** Listener filters accepted besides original_dst: the inspectors (listeners/protocol-detection.ts), honouring filter_disabled. */
const KNOWN_LISTENER_FILTERS: ReadonlySet<string> = new Set([...TLS_INSPECTOR_NAMES, ...HTTP_INSPECTOR_NAMES]);
/**
 * Traffic capture needs the redirected connection's original destination (SO_ORIGINAL_DST), which only the native addon
 * reads: without it such listeners are refused rather than accepted and silently routed by the capture port.
 */
const ORIGINAL_DST_FILTERS = new Set(['envoy.filters.listener.original_dst', 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst']);
const DEFAULT_BUFFER_LIMIT = 1024 * 1024;
const DEFAULT_LISTENER_FILTERS_TIMEOUT_MS = 15_000;

interface ChainTemplate {
  readonly name: string;
  readonly match: CompiledChainMatch;
  readonly tls?: CompiledDownstreamTls;
  readonly hcm?: CompiledHttpConnectionManager;
  readonly tcpConfig?: envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
  /** Network read filters (RBAC) that see each connection, in order, before the terminal filter. */
  readonly readFilters: readonly NetworkReadFilter[];
  readonly path: string;
}

class CompiledListenerImpl implements CompiledListener {
  constructor(
    readonly name: string,
    readonly config: Listener,
    readonly version: string,
    readonly address: { host: string; port: number },
    readonly bindToPort: boolean,
    readonly chains: readonly ChainTemplate[],
    readonly defaultChain: ChainTemplate | undefined,
    /** tls_inspector / http_inspector with their filter_disabled and listener_filters_timeout; undefined: nothing read before the chain is chosen. */
    readonly inspectors: InspectorConfig | undefined,
    readonly bufferLimitBytes: number,
    /** The original_dst listener filter (or use_original_dst): the connection's local address becomes its original destination. */
    readonly restoreOriginalDst: boolean,
    /** use_original_dst: a restored connection goes to the listener of its original destination, if there is one. */
    readonly useOriginalDst: boolean,
  ) {}
}

/**
 * bind_to_port (a BoolValue, default true). Over the wire `{ value: false }` arrives as an empty wrapper, since proto3
 * leaves the default out: a present wrapper without `value` is false.
 */
function bindsToPort(listener: Listener): boolean {
  const w = listener.bind_to_port;
  return w === undefined || w === null || w.value === true;
}

function versionOf(listener: Listener): string {
  const json = JSON.stringify(listener, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

/** A running chain: the HCM instance or TCP proxy its connections use. */
interface ChainRuntime {
  readonly template: ChainTemplate;
  readonly hcm?: HttpConnectionManager;
  readonly tcp?: TcpProxy;
}

/** One version of a listener's config with its connections; an update starts a new generation and drains the old. */
class Generation {
  readonly chains: ChainRuntime[];
  readonly defaultChain: ChainRuntime | undefined;
  readonly sockets = new Set<Duplex>();
  draining = false;
  private drainWaiters: (() => void)[] = [];

  constructor(readonly compiled: CompiledListenerImpl, context: ListenerContext, readonly stats: Record<string, number>) {
    const instantiate = (t: ChainTemplate): ChainRuntime => ({
      template: t,
      ...(t.hcm ? { hcm: t.hcm.createConnectionManager({ listenerName: compiled.name, bufferLimitBytes: compiled.bufferLimitBytes }) } : {}),
      ...(t.tcpConfig ? { tcp: compileTcpProxy(t.tcpConfig, t.path, context.clusters, context.networkFilterDeps ?? {}) } : {}),
    });
    this.chains = compiled.chains.map(instantiate);
    this.defaultChain = compiled.defaultChain ? instantiate(compiled.defaultChain) : undefined;
  }

  track(socket: Duplex): void {
    this.sockets.add(socket);
    this.stats['downstream_cx_total']!++;
    this.stats['downstream_cx_active']!++;
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.stats['downstream_cx_active']!--;
      this.stats['downstream_cx_destroy']!++;
      if (this.draining && this.sockets.size === 0) this.notifyDrained();
    });
  }

  allChains(): ChainRuntime[] {
    return this.defaultChain ? [...this.chains, this.defaultChain] : this.chains;
  }

  /** Stops taking new streams: HTTP/1.1 keep-alive gets `connection: close`, HTTP/2 GOAWAY; resolves when all connections closed. */
  drain(): Promise<void> {
    this.draining = true;
    for (const c of this.allChains()) c.hcm?.drain();
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private notifyDrained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  destroy(): void {
    for (const c of this.allChains()) {
      c.hcm?.destroy();
      c.tcp?.destroy();
    }
    for (const s of this.sockets) s.destroy();
    for (const c of this.compiled.chains) c.hcm?.close();
    if (this.compiled.defaultChain?.hcm) this.compiled.defaultChain.hcm.close();
    this.notifyDrained();
  }

  httpStats(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const c of this.allChains()) if (c.template.hcm) out[c.template.hcm.statPrefix] = c.template.hcm.stats;
    return out;
  }
  tcpStats(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const c of this.allChains()) if (c.tcp) out[c.tcp.statPrefix] = c.tcp.stats;
    return out;
  }
  /** Network read filter counters by full stat name; chains sharing a stat prefix add up, as Envoy's shared scopes do. */
  networkFilterStats(into: Record<string, number>): void {
    for (const c of this.allChains()) {
      for (const f of c.template.readFilters) for (const [k, v] of Object.entries(f.stats)) into[k] = (into[k] ?? 0) + v;
    }
  }
}

function listenerStats(): Record<string, number> {
  return {
    downstream_cx_total: 0,
    downstream_cx_active: 0,
    downstream_cx_destroy: 0,
    no_filter_chain_match: 0,
    downstream_listener_filter_error: 0,
    downstream_pre_cx_timeout: 0,
    downstream_cx_transport_socket_connect_timeout: 0,
  };
}

/** Finds the listener a use_original_dst listener hands a restored connection to (Envoy's lookup by address). */
type HandOffLookup = (destination: OriginalDestination, from: ActiveListener) => ActiveListener | undefined;

/** The destination a connection was restored to, by its raw socket (a TLS socket finds it through its parent). */
const restoredDestinations = new WeakMap<object, OriginalDestination>();

function localOf(socket: Duplex): OriginalDestination {
  const parent = (socket as unknown as { _parent?: object })._parent;
  const restored = restoredDestinations.get(socket) ?? (parent ? restoredDestinations.get(parent) : undefined);
  if (restored) return restored;
  const s = socket as Socket;
  return { address: s.localAddress ?? '', port: s.localPort ?? 0 };
}

/** Listener.traffic_direction (enum name or number); /drain_listeners?inboundonly selects INBOUND. */
function trafficDirection(config: Listener): 'INBOUND' | 'OUTBOUND' | undefined {
  const d = config.traffic_direction as unknown;
  return d === 'INBOUND' || d === 1 ? 'INBOUND' : d === 'OUTBOUND' || d === 2 ? 'OUTBOUND' : undefined;
}

function isInbound(config: Listener): boolean {
  return trafficDirection(config) === 'INBOUND';
}

/** A bound listener: the socket stays across config versions with the same address; generations swap under it. */
class ActiveListener {
  server: Server | undefined;
  boundAddress: string | undefined;
  current: Generation;
  readonly old = new Set<Generation>();
  readonly stats = listenerStats();
  state: 'active' | 'draining' = 'active';
  /** A graceful drain (/drain_listeners?graceful) is discouraging requests: generations swapped in meanwhile drain too. */
  discouraging = false;

  constructor(
    private readonly context: ListenerContext,
    compiled: CompiledListenerImpl,
    private readonly originalDst: OriginalDestinationSupport,
    private readonly handOff: HandOffLookup,
  ) {
    this.current = new Generation(compiled, context, this.stats);
  }

  async bind(): Promise<void> {
    const c = this.current.compiled;
    if (!c.bindToPort) return;
    const server = createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: c.address.host, port: c.address.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => {});
    const a = server.address();
    if (a && typeof a === 'object') this.boundAddress = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    this.server = server;
  }

  /** Swaps in a new version; the old generation drains (in-flight requests finish) and is then closed. */
  update(compiled: CompiledListenerImpl, graceMs: number): void {
    const old = this.current;
    this.current = new Generation(compiled, this.context, this.stats);
    if (this.discouraging) this.discourage();
    this.retire(old, graceMs);
  }

  /**
   * The graceful drain period: the listener keeps accepting, but every HTTP connection of its current generation is
   * told to close (HTTP/1.1 `connection: close` on each response and idle keep-alive connections closed, HTTP/2
   * GOAWAY), new ones included: Envoy's drain with the immediate strategy, which Istio's pilot-agent asks for.
   */
  discourage(): void {
    this.discouraging = true;
    for (const c of this.current.allChains()) c.hcm?.drain();
  }

  retire(generation: Generation, graceMs: number): Promise<void> {
    this.old.add(generation);
    const timer = setTimeout(() => generation.destroy(), graceMs);
    timer.unref();
    return generation.drain().then(() => {
      clearTimeout(timer);
      generation.destroy();
      this.old.delete(generation);
      const live = new Set<ChainRuntime>();
      for (const g of [this.current, ...this.old]) for (const c of g.allChains()) live.add(c);
      this.pruneTlsAcceptors(live);
    });
  }

  /**
   * Closes the listening socket. Resolves at once: server.close()'s callback waits for every accepted connection to end,
   * and the connections are what the drain that follows closes.
   */
  stopAccepting(): Promise<void> {
    this.state = 'draining';
    this.server?.close();
    return Promise.resolve();
  }

  /** `handedOff`: the original destination a use_original_dst listener restored before handing the connection here. */
  async onConnection(socket: Socket, handedOff?: OriginalDestination): Promise<void> {
    const gen = this.current;
    const c = gen.compiled;
    if (!handedOff) socket.on('error', () => socket.destroy());
    if (gen.draining || this.state === 'draining') {
      socket.destroy();
      return;
    }
    // Envoy's original_dst listener filter: the local address becomes the destination the client dialled.
    if (!handedOff && c.restoreOriginalDst && this.originalDst.available) {
      const restored = this.originalDst.read(socket);
      if (restored) {
        restoredDestinations.set(socket, restored);
        // use_original_dst: the listener for that address (exact, else the wildcard one on its port) takes the
        // connection and runs its own listener filters and chains; without one it stays here.
        const target = c.useOriginalDst ? this.handOff(restored, this) : undefined;
        if (target) {
          void target.onConnection(socket, restored);
          return;
        }
      }
    }
    gen.track(socket);
    const local = localOf(socket);
    // The inspectors run on the (restored) destination port, so filter_disabled can spare server-first ports.
    let initial: Buffer | undefined;
    let sni: string | undefined;
    let transport = 'raw_buffer';
    let alpn: readonly string[] = [];
    if (c.inspectors) {
      const outcome = await inspectConnection(socket, c.inspectors, local.port, this.stats);
      if (outcome.kind === 'closed') {
        socket.destroy();
        return;
      }
      if (outcome.kind === 'timeout') {
        this.stats['downstream_pre_cx_timeout']!++;
        socket.destroy();
        return;
      }
      ({ initial, serverName: sni, transportProtocol: transport, applicationProtocols: alpn } = outcome.detection);
    }
    const idx = selectFilterChain(
      gen.chains.map((ch) => ch.template.match),
      {
        destinationPort: local.port,
        destinationAddress: local.address,
        sourceAddress: socket.remoteAddress ?? '',
        sourcePort: socket.remotePort ?? 0,
        ...(sni !== undefined ? { serverName: sni } : {}),
        transportProtocol: transport,
        applicationProtocols: alpn,
      },
    );
    const chain = idx >= 0 ? gen.chains[idx] : gen.defaultChain;
    if (!chain) {
      this.stats['no_filter_chain_match']!++;
      socket.destroy();
      return;
    }
    const baseInfo = {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: local.address,
      localPort: local.port,
    };
    const tls = chain.template.tls;
    if (!tls) {
      this.runNetworkFilter(chain, socket, baseInfo, undefined, initial, sni);
      return;
    }
    if (initial && initial.length > 0) socket.unshift(initial);
    // A ClientHello the tls_inspector parsed gives the acceptor its ALPN list, so it is not peeked and parsed again;
    // without one (no inspector, disabled for this port, or a hello cut off by the timeout) the acceptor reads it.
    this.tlsAcceptorFor(chain, tls).accept(socket, transport === 'tls' ? alpn : undefined);
  }

  private readonly tlsAcceptors = new Map<ChainRuntime, DownstreamTlsAcceptor>();

  /**
   * One TLS acceptor per chain (transport/downstream-tls-acceptor.ts): handshake, SDS rotation, peer verification and
   * the listener's ssl.* counters; verified connections go to the chain with their peer identity.
   */
  private tlsAcceptorFor(chain: ChainRuntime, tls: CompiledDownstreamTls): DownstreamTlsAcceptor {
    let acceptor = this.tlsAcceptors.get(chain);
    if (acceptor) return acceptor;
    acceptor = new DownstreamTlsAcceptor(tls, {
      stats: this.stats,
      listenerName: this.current.compiled.name,
      onSecure: (tlsSocket: TLSSocket, tlsInfo: TlsConnectionInfo) => {
        const local = localOf(tlsSocket);
        const info: DownstreamConnectionInfo = {
          remoteAddress: tlsSocket.remoteAddress ?? '',
          remotePort: tlsSocket.remotePort ?? 0,
          localAddress: local.address,
          localPort: local.port,
          // TlsConnectionInfo extends the stream's DownstreamTlsInfo with URI/DNS SANs apart and the subject (RBAC's principal order).
          tls: tlsInfo,
        };
        this.runNetworkFilter(chain, tlsSocket, info, tlsSocket.alpnProtocol || undefined, undefined);
      },
    });
    this.tlsAcceptors.set(chain, acceptor);
    return acceptor;
  }

  /** Closes the TLS acceptors of chains no current or draining generation uses. */
  private pruneTlsAcceptors(live: ReadonlySet<ChainRuntime>): void {
    for (const [chain, acceptor] of this.tlsAcceptors) {
      if (live.has(chain)) continue;
      acceptor.close();
      this.tlsAcceptors.delete(chain);
    }
  }

  private runNetworkFilter(chain: ChainRuntime, socket: Duplex, info: DownstreamConnectionInfo, alpn: string | undefined, initial: Buffer | undefined, sni?: string): void {
    const readFilters = chain.template.readFilters;
    let connection: DownstreamConnection | undefined;
    if (readFilters.length > 0) {
      connection = {
        remoteAddress: info.remoteAddress,
        remotePort: info.remotePort,
        localAddress: info.localAddress,
        localPort: info.localPort,
        requestedServerName: info.tls?.sni ?? sni ?? '',
        ...(info.tls ? { tls: info.tls } : {}),
        filterState: new Map(),
      };
      for (const f of readFilters) {
        if (f.onNewConnection(connection) === 'stop') {
          // Envoy closes a refused connection without flushing (ConnectionCloseType::NoFlush).
          socket.destroy();
          return;
        }
      }
    }
    if (chain.tcp) {
      chain.tcp.handle(socket, initial, { address: info.localAddress, port: info.localPort }, connection);
      return;
    }
    const hcm = chain.hcm!;
    const codec = chain.template.hcm!.codecType;
    if (codec === 'HTTP1' || alpn === 'http/1.1' || alpn === 'http/1.0') {
      hcm.serve(socket, info, 'http1', initial);
      return;
    }
    if (codec === 'HTTP2' || alpn === 'h2') {
      hcm.serve(socket, info, 'http2', initial);
      return;
    }
    if (info.tls) {
      hcm.serve(socket, info, 'http1', initial);
      return;
    }
    // Plaintext AUTO: h2c prior knowledge if the connection starts with the HTTP/2 preface.
    const decide = (bytes: Buffer | undefined): void => {
      const kind = bytes ? detectHttp2Preface(bytes) : 'http1';
      hcm.serve(socket, info, kind === 'h2' ? 'http2' : 'http1', bytes);
    };
    if (initial && detectHttp2Preface(initial) !== 'need_more') {
      decide(initial);
      return;
    }
    const prior = initial;
    void peekSocket(
      socket as Socket,
      (b) => detectHttp2Preface(prior ? Buffer.concat([prior, b]) : b) !== 'need_more',
      DEFAULT_LISTENER_FILTERS_TIMEOUT_MS,
    ).then((peek) => {
      if (peek.closed) {
        socket.destroy();
        return;
      }
      const bytes = prior ? Buffer.concat([prior, peek.bytes]) : peek.bytes;
      decide(bytes.length > 0 ? bytes : undefined);
    });
  }

  destroy(): void {
    this.server?.close();
    this.pruneTlsAcceptors(new Set());
    this.current.destroy();
    for (const g of this.old) g.destroy();
    this.old.clear();
  }
}

/** The ListenerManager main.ts drives: compile (validate), apply (state of the world), status, drain, close. */
export class TrellisListenerManager implements ListenerManager {
  private readonly active = new Map<string, ActiveListener>();
  private readonly draining = new Set<ActiveListener>();
  /** Graceful drain periods in progress (drainListeners), ended early by close(). */
  private readonly gracefulWaits = new Set<{ readonly timer: NodeJS.Timeout; readonly resolve: () => void }>();

  private readonly originalDst: OriginalDestinationSupport;

  /** `originalDestination`: how redirected connections' original destinations are read (default: the native addon). */
  constructor(
    private readonly context: ListenerContext,
    private readonly options: { readonly drainGraceMs?: number; readonly originalDestination?: OriginalDestinationSupport } = {},
  ) {
    this.originalDst = options.originalDestination ?? loadOriginalDestinationSupport();
  }

  /**
   * Envoy's hand-off lookup: the active listener bound (or not: bind_to_port false) to exactly the original address and
   * port, else the wildcard listener (0.0.0.0 or ::, by the address family) on that port; never the listener itself.
   */
  private findListener(destination: OriginalDestination, from: ActiveListener): ActiveListener | undefined {
    const wildcard = destination.address.includes(':') ? '::' : '0.0.0.0';
    let fallback: ActiveListener | undefined;
    for (const a of this.active.values()) {
      const address = a.current.compiled.address;
      if (a.state !== 'active' || address.port !== destination.port) continue;
      if (address.host === destination.address) return a === from ? undefined : a;
      if (address.host === wildcard && !fallback) fallback = a;
    }
    return fallback === from ? undefined : fallback;
  }

  private get graceMs(): number {
    return this.options.drainGraceMs ?? 600_000;
  }

  compile(listener: Listener): CompiledListener {
    const problems: string[] = [];
    const name = listener.name ?? '';
    const at = `Listener ${name || '(unnamed)'}`;
    if (!name) problems.push(`${at}: name: required`);
    for (const key of Object.keys(listener)) {
      const v = (listener as Record<string, unknown>)[key];
      if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
      if (!SUPPORTED_LISTENER_FIELDS.has(key)) problems.push(`${at}: ${key}: not supported by Trellis`);
    }
    const useOriginalDst = listener.use_original_dst?.value === true;
    const unavailable = this.originalDst.available ? undefined : `native addon not built: ${this.originalDst.reason}; use explicit (HTTP_PROXY) mode`;
    if (useOriginalDst && unavailable) problems.push(`${at}: use_original_dst: ${unavailable}`);
    let originalDstFilter = false;
    const sa = listener.address?.socket_address;
    if (!sa) problems.push(`${at}: address.socket_address: required (pipes and internal addresses are not supported)`);
    else {
      if (sa.protocol !== undefined && String(sa.protocol) !== 'TCP') problems.push(`${at}: address.socket_address.protocol: only TCP is supported`);
      if (sa.named_port) problems.push(`${at}: address.socket_address.named_port: not supported`);
      if (sa.port_value === undefined && bindsToPort(listener)) problems.push(`${at}: address.socket_address.port_value: required`);
    }
    (listener.listener_filters ?? []).forEach((f, i) => {
      const url = f.typed_config?.type_url;
      if (ORIGINAL_DST_FILTERS.has(f.name ?? '') || (url && ORIGINAL_DST_FILTERS.has(url))) {
        originalDstFilter = true;
        if (unavailable) problems.push(`${at}: listener_filters[${i}]: envoy.filters.listener.original_dst: ${unavailable}`);
      } else if (!KNOWN_LISTENER_FILTERS.has(f.name ?? '') && !(url && KNOWN_LISTENER_FILTERS.has(url))) {
        problems.push(`${at}: listener_filters[${i}]: unsupported listener filter ${f.name ?? url ?? ''}`);
      }
    });
    const chains: ChainTemplate[] = [];
    const seen = new Map<string, number>();
    (listener.filter_chains ?? []).forEach((fc, i) => {
      const key = matchKey(fc.filter_chain_match);
      if (seen.has(key)) problems.push(`${at}: filter_chains[${i}].filter_chain_match: same rules as filter_chains[${seen.get(key)}] (Envoy: multiple filter chains with the same matching rules)`);
      seen.set(key, i);
      const t = this.compileChain(fc, `${at}: filter_chains[${i}]`, problems);
      if (t) chains.push(t);
    });
    const defaultChain = listener.default_filter_chain ? this.compileChain(listener.default_filter_chain, `${at}: default_filter_chain`, problems) : undefined;
    if ((listener.filter_chains ?? []).length === 0 && !listener.default_filter_chain) problems.push(`${at}: filter_chains: at least one filter chain or a default_filter_chain is required`);
    const inspectors = compileInspectors(listener, needsInspection(chains.map((c) => c.match)), DEFAULT_LISTENER_FILTERS_TIMEOUT_MS, at, problems);
    if (problems.length > 0) {
      for (const c of chains) c.hcm?.close();
      defaultChain?.hcm?.close();
      throw new XdsValidationError(problems);
    }
    return new CompiledListenerImpl(
      name,
      listener,
      versionOf(listener),
      { host: sa!.address || '0.0.0.0', port: sa!.port_value ?? 0 },
      bindsToPort(listener),
      chains,
      defaultChain,
      inspectors,
      listener.per_connection_buffer_limit_bytes?.value ?? DEFAULT_BUFFER_LIMIT,
      // Envoy adds the original_dst listener filter itself when use_original_dst is set.
      useOriginalDst || originalDstFilter,
      useOriginalDst,
    );
  }

  private compileChain(fc: FilterChain, path: string, problems: string[]): ChainTemplate | undefined {
    let match: CompiledChainMatch | undefined;
    try {
      match = compileChainMatch(fc.filter_chain_match, `${path}.filter_chain_match`);
    } catch (err) {
      if (err instanceof XdsValidationError) problems.push(...err.details);
      else throw err;
    }
    if (fc.use_proxy_proto?.value) problems.push(`${path}.use_proxy_proto: not supported`);
    if (fc.on_demand_configuration) problems.push(`${path}.on_demand_configuration: not supported`);
    let tls: CompiledDownstreamTls | undefined;
    const ts = fc.transport_socket;
    if (ts) {
      const url = ts.typed_config?.type_url ?? '';
      if (url === DOWNSTREAM_TLS_CONTEXT_TYPE_URL) {
        try {
          tls = compileDownstreamTls(unpackAny(ts.typed_config!), `${path}.transport_socket.typed_config`, this.context.secrets ?? NO_SECRETS);
        } catch (err) {
          if (err instanceof XdsValidationError) problems.push(...err.details);
          else problems.push(`${path}.transport_socket.typed_config: ${(err as Error).message}`);
        }
      } else if (url !== RAW_BUFFER_TYPE_URL && !(url === '' && (ts.name === 'envoy.transport_sockets.raw_buffer' || ts.name === 'raw_buffer'))) {
        problems.push(`${path}.transport_socket: unsupported transport socket ${ts.name ?? ''} ${url}`.trim());
      }
    }
    const filters = fc.filters ?? [];
    if (filters.length === 0) {
      problems.push(`${path}.filters: expected network filters ending in a terminal filter (${HTTP_CONNECTION_MANAGER_NAME} or ${TCP_PROXY_NAME}), got none`);
      return undefined;
    }
    // Read filters (RBAC) come first, in order; the last filter must be the terminal one, as Envoy requires.
    const readFilters: NetworkReadFilter[] = [];
    let readFiltersOk = true;
    filters.slice(0, -1).forEach((rf, i) => {
      const rp = `${path}.filters[${i}]`;
      const rurl = rf.typed_config?.type_url ?? '';
      const factory = networkReadFilterFactory(rf.name ?? '', rurl);
      if (!factory) {
        readFiltersOk = false;
        const terminal = rurl === HTTP_CONNECTION_MANAGER_TYPE_URL || rurl === TCP_PROXY_TYPE_URL || (!rurl && (rf.name === HTTP_CONNECTION_MANAGER_NAME || rf.name === TCP_PROXY_NAME));
        problems.push(
          terminal
            ? `${rp}: terminal filter ${rf.name || rurl} must be the last network filter`
            : `${rp}: unsupported network filter ${rf.name ?? ''}${rurl ? ` (${rurl})` : ''} (supported before the terminal filter: ${NETWORK_READ_FILTER_NAMES.join(', ')})`,
        );
        return;
      }
      try {
        readFilters.push(factory.create(rf.typed_config ? unpackAny(rf.typed_config) : {}, `${rp}.typed_config`, this.context.networkFilterDeps ?? {}));
      } catch (err) {
        readFiltersOk = false;
        if (err instanceof XdsValidationError) problems.push(...err.details);
        else problems.push(`${rp}.typed_config: ${(err as Error).message}`);
      }
    });
    const last = filters.length - 1;
    const f = filters[last]!;
    const fp = `${path}.filters[${last}]`;
    const url = f.typed_config?.type_url ?? '';
    let hcm: CompiledHttpConnectionManager | undefined;
    let tcpConfig: envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy | undefined;
    try {
      if (url === HTTP_CONNECTION_MANAGER_TYPE_URL || (!url && f.name === HTTP_CONNECTION_MANAGER_NAME)) {
        hcm = compileHttpConnectionManager(unpackAny(f.typed_config ?? { type_url: HTTP_CONNECTION_MANAGER_TYPE_URL }), `${fp}.typed_config`, this.context);
      } else if (url === TCP_PROXY_TYPE_URL || (!url && f.name === TCP_PROXY_NAME)) {
        tcpConfig = unpackAny(f.typed_config ?? { type_url: TCP_PROXY_TYPE_URL });
        compileTcpProxy(tcpConfig!, `${fp}.typed_config`, this.context.clusters); // validate now
      } else if (networkReadFilterFactory(f.name ?? '', url)) {
        problems.push(`${fp}: ${f.name || url} is not a terminal filter; the last network filter must be ${HTTP_CONNECTION_MANAGER_NAME} or ${TCP_PROXY_NAME}`);
      } else {
        problems.push(`${fp}: unsupported network filter ${f.name ?? ''}${url ? ` (${url})` : ''}`);
      }
    } catch (err) {
      if (err instanceof XdsValidationError) problems.push(...err.details);
      else problems.push(`${fp}.typed_config: ${(err as Error).message}`);
    }
    if (!match || (!hcm && !tcpConfig) || !readFiltersOk) {
      hcm?.close();
      return undefined;
    }
    return { name: fc.name ?? '', match, ...(tls ? { tls } : {}), ...(hcm ? { hcm } : {}), ...(tcpConfig ? { tcpConfig } : {}), readFilters, path: fp };
  }

  async apply(listeners: readonly CompiledListener[]): Promise<void> {
    const wanted = new Map<string, CompiledListenerImpl>();
    for (const l of listeners) {
      if (!(l instanceof CompiledListenerImpl)) throw new TypeError(`listener ${l.name} was not compiled by this ListenerManager`);
      wanted.set(l.name, l);
    }
    for (const [name, active] of this.active) {
      if (!wanted.has(name)) {
        this.active.delete(name);
        void this.retireListener(active);
      }
    }
    const binds: Promise<void>[] = [];
    for (const [name, compiled] of wanted) {
      const existing = this.active.get(name);
      if (existing) {
        if (existing.current.compiled.version === compiled.version) continue;
        const prev = existing.current.compiled;
        if (prev.address.host === compiled.address.host && prev.address.port === compiled.address.port && prev.bindToPort === compiled.bindToPort) {
          existing.update(compiled, this.graceMs);
          continue;
        }
        this.active.delete(name);
        void this.retireListener(existing);
      }
      const active = new ActiveListener(this.context, compiled, this.originalDst, (d, from) => this.findListener(d, from));
      this.active.set(name, active);
      binds.push(
        active.bind().catch((err: Error) => {
          this.active.delete(name);
          active.destroy();
          throw new XdsValidationError([`Listener ${name}: address: cannot bind ${compiled.address.host}:${compiled.address.port}: ${err.message}`]);
        }),
      );
    }
    const results = await Promise.allSettled(binds);
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (failures.length) throw new XdsValidationError(failures.flatMap((e) => (e instanceof XdsValidationError ? e.details : [e.message])));
  }

  private async retireListener(active: ActiveListener, graceMs = this.graceMs): Promise<void> {
    this.draining.add(active);
    await active.stopAccepting();
    await active.retire(active.current, graceMs);
    await Promise.all([...active.old].map((g) => g.drain()));
    active.destroy();
    this.draining.delete(active);
  }

  status(): readonly ListenerStatus[] {
    const out: ListenerStatus[] = [];
    const push = (a: ActiveListener, state: 'active' | 'draining'): void => {
      const httpStats: Record<string, Record<string, number>> = {};
      const tcpStats: Record<string, Record<string, number>> = {};
      const networkFilterStats: Record<string, number> = {};
      for (const g of [a.current, ...a.old]) {
        Object.assign(httpStats, g.httpStats());
        Object.assign(tcpStats, g.tcpStats());
        g.networkFilterStats(networkFilterStats);
      }
      const configured = a.current.compiled.address;
      out.push({
        name: a.current.compiled.name,
        ...(a.boundAddress ? { boundAddress: a.boundAddress } : {}),
        configuredAddress: configured.host.includes(':') ? `[${configured.host}]:${configured.port}` : `${configured.host}:${configured.port}`,
        state,
        ...(trafficDirection(a.current.compiled.config) ? { trafficDirection: trafficDirection(a.current.compiled.config)! } : {}),
        stats: a.stats,
        httpStats,
        tcpStats,
        networkFilterStats,
      });
    };
    for (const a of this.active.values()) push(a, 'active');
    for (const a of this.draining) push(a, 'draining');
    return out;
  }

  async drain(options?: { readonly graceMs?: number }): Promise<void> {
    const grace = options?.graceMs ?? this.graceMs;
    const all = [...this.active.values()];
    this.active.clear();
    await Promise.all(all.map((a) => this.retireListener(a, grace)));
  }

  async drainListeners(options: DrainListenersOptions): Promise<void> {
    const chosen = [...this.active].filter(([, a]) => !options.inboundOnly || isInbound(a.current.compiled.config));
    if (options.graceful) {
      for (const [, a] of chosen) a.discourage();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.drainTimeMs);
        this.gracefulWaits.add({ timer, resolve });
      });
    }
    if (options.graceful && options.skipExit) return;
    const stopping: ActiveListener[] = [];
    for (const [name, a] of chosen) {
      // An LDS update may have replaced or removed it meanwhile: that one is being retired already.
      if (this.active.get(name) !== a) continue;
      this.active.delete(name);
      stopping.push(a);
    }
    await Promise.all(stopping.map((a) => this.retireListener(a, options.graceMs ?? this.graceMs)));
  }

  async close(): Promise<void> {
    // A graceful drain period still running ends now (stop() does not wait out --drain-time-s).
    for (const w of this.gracefulWaits) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.gracefulWaits.clear();
    for (const a of [...this.active.values(), ...this.draining]) a.destroy();
    this.active.clear();
    this.draining.clear();
  }
}
