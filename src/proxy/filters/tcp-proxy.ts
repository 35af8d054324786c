// envoy.filters.network.tcp_proxy: connects each downstream connection to a host of a (weighted) cluster and splices bytes.
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import type { ClusterManager, UpstreamHost } from '../upstream/types.js';
import { kUpstreamTlsIdentity, type UpstreamSocket } from '../upstream/pool/connect.js';
import { istioTcpLabels, type TcpConnectionFacts } from './istio-stats/labels.js';
import { TCP_STATS, type TcpStatsContext } from './istio-stats/tcp-filter.js';
import type { TcpConnectionRecorder } from './istio-stats/tcp-metrics.js';
import type { PeerMetadata } from './metadata-exchange/peer-metadata.js';
import { DOWNSTREAM_EXCHANGE, type TcpExchange } from './metadata-exchange/tcp-filter.js';
import { ExchangePrefixReader, nodeExchangePrefix, PEER_EXCHANGE_ALPN, type ExchangeResult } from './metadata-exchange/tcp-exchange.js';
import type { DownstreamConnection, NetworkFilterDeps } from './network-filter.js';

type TcpProxyConfig = envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;

export const TCP_PROXY_NAME = 'envoy.filters.network.tcp_proxy';
export const TCP_PROXY_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
/** Envoy's default tcp_proxy idle_timeout. */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 3_600_000;
/** Envoy's default cluster connect_timeout, used for tcp_proxy upstream connects. */
const CONNECT_TIMEOUT_MS = 5_000;

function durationMs(d: { seconds?: number; nanos?: number } | undefined, fallback: number): number {
  if (!d) return fallback;
  return (d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
}

const SUPPORTED = new Set(['stat_prefix', 'cluster', 'weighted_clusters', 'idle_timeout', 'max_connect_attempts', 'access_log', 'max_downstream_connection_duration']);

export interface TcpProxyStats {
  downstream_cx_total: number;
  downstream_cx_rx_bytes_total: number;
  downstream_cx_tx_bytes_total: number;
  downstream_cx_no_route: number;
  upstream_flush_active: number;
  idle_timeout: number;
  max_downstream_connection_duration: number;
  [name: string]: number;
}

/** What one proxied connection knows for Istio's TCP metrics: the peers, TLS sides, cluster and flags. */
interface ConnectionTelemetry {
  readonly recorder: TcpConnectionRecorder;
  readonly context: TcpStatsContext;
  downstreamPeer?: PeerMetadata;
  upstreamPeer?: PeerMetadata;
  facts: { -readonly [K in keyof TcpConnectionFacts]: TcpConnectionFacts[K] };
}

/** Reads the peer's exchange prefix from the first bytes of `stream` (and `initial`), then pauses it with the rest unshifted. */
function readExchangePrefix(stream: Duplex, initial: Buffer | undefined, done: (result: ExchangeResult) => void): void {
  const reader = new ExchangePrefixReader();
  const finish = (r: ExchangeResult): void => {
    stream.off('data', onData);
    stream.pause();
    if (r.kind !== 'invalid' && r.rest.length > 0) stream.unshift(r.rest);
    done(r);
  };
  const onData = (chunk: Buffer): void => {
    const r = reader.push(chunk);
    if (r) finish(r);
  };
  if (initial && initial.length > 0) {
    const r = reader.push(initial);
    if (r) {
      queueMicrotask(() => finish(r));
      return;
    }
  }
  stream.on('data', onData);
  stream.resume();
}

export class TcpProxy {
  readonly stats: TcpProxyStats = {
    downstream_cx_total: 0,
    downstream_cx_rx_bytes_total: 0,
    downstream_cx_tx_bytes_total: 0,
    downstream_cx_no_route: 0,
    upstream_flush_active: 0,
    idle_timeout: 0,
    max_downstream_connection_duration: 0,
  };
  private readonly active = new Set<Duplex>();

  constructor(
    readonly statPrefix: string,
    private readonly clusters: ClusterManager,
    private readonly pick: () => string,
    private readonly idleTimeoutMs: number,
    private readonly maxConnectAttempts: number,
    private readonly maxDurationMs: number,
    private readonly deps: NetworkFilterDeps = {},
  ) {}

  get activeConnections(): number {
    return this.active.size;
  }

  /**
   * Proxies one connection; `initialBytes` were read while choosing the filter chain and go upstream first. `local`: the
   * connection's (restored) destination, which ORIGINAL_DST clusters (PassthroughCluster) connect to.
   */
  handle(downstream: Duplex, initialBytes?: Buffer, local?: { readonly address: string; readonly port: number }, connection?: DownstreamConnection): void {
    this.stats.downstream_cx_total++;
    this.active.add(downstream);
    downstream.once('close', () => this.active.delete(downstream));
    downstream.on('error', () => downstream.destroy());
    const clusterName = this.pick();
    const telemetry = this.telemetryOf(connection, clusterName);
    if (telemetry) downstream.once('close', () => telemetry.recorder.close(() => this.labelsOf(telemetry)));
    const exchange = connection?.filterState.get(DOWNSTREAM_EXCHANGE) as TcpExchange | undefined;
    if (exchange) {
      if (connection?.tls?.alpn !== exchange.protocol) {
        exchange.stats['alpn_protocol_not_found']!++;
        if (telemetry?.context.reporter === 'destination') telemetry.recorder.setLabels(this.labelsOf(telemetry));
      } else {
        // Istio's downstream exchange: our prefix to the client, the client's stripped from its first bytes.
        exchange.stats['alpn_protocol_found']!++;
        downstream.write(exchange.prefix);
        exchange.stats['metadata_added']!++;
        readExchangePrefix(downstream, initialBytes, (r) => {
          if (r.kind === 'invalid') {
            exchange.stats['header_not_found']!++;
            downstream.destroy();
            return;
          }
          if (r.kind === 'absent') exchange.stats['initial_header_not_found']!++;
          else if (!r.peer) exchange.stats['header_not_found']!++;
          if (telemetry && r.kind === 'peer' && r.peer) telemetry.downstreamPeer = r.peer;
          if (telemetry?.context.reporter === 'destination') telemetry.recorder.setLabels(this.labelsOf(telemetry));
          this.route(downstream, undefined, local, clusterName, telemetry);
        });
        return;
      }
    } else if (telemetry?.context.reporter === 'destination') telemetry.recorder.setLabels(this.labelsOf(telemetry));
    this.route(downstream, initialBytes, local, clusterName, telemetry);
  }

  /** The connection's TCP metrics state when an istio.stats network filter is on its chain. */
  private telemetryOf(connection: DownstreamConnection | undefined, cluster: string): ConnectionTelemetry | undefined {
    const context = connection?.filterState.get(TCP_STATS) as TcpStatsContext | undefined;
    if (!context) return undefined;
    const tls = connection?.tls;
    return {
      recorder: context.metrics.connection(),
      context,
      facts: { upstreamCluster: cluster, responseFlags: '-', ...(tls ? { downstreamTls: { ...(tls.sni ? { sni: tls.sni } : {}), peerUriSans: tls.peerUriSans, ...(tls.localUriSans ? { localUriSans: tls.localUriSans } : {}) } } : {}) },
    };
  }

  private labelsOf(t: ConnectionTelemetry): ReturnType<typeof istioTcpLabels> {
    return istioTcpLabels(t.context.reporter, t.context.self, t.context.reporter === 'destination' ? t.downstreamPeer : t.upstreamPeer, t.facts);
  }

  private route(downstream: Duplex, initialBytes: Buffer | undefined, local: { readonly address: string; readonly port: number } | undefined, clusterName: string, telemetry: ConnectionTelemetry | undefined): void {
    const flag = (f: string): void => {
      if (telemetry && telemetry.facts.responseFlags === '-') telemetry.facts.responseFlags = f;
    };
    const cluster = this.clusters.get(clusterName);
    if (!cluster) {
      this.stats.downstream_cx_no_route++;
      flag('NC');
      downstream.destroy();
      return;
    }
    const tried = new Set<UpstreamHost>();
    const connect = cluster.connect?.bind(cluster);
    const originalDestination = local ? `${local.address.includes(':') ? `[${local.address}]` : local.address}:${local.port}` : undefined;
    const attempt = (n: number): void => {
      const host = cluster.chooseHost({
        ...(originalDestination ? { originalDestination } : {}),
        ...(tried.size > 0 ? { avoidHosts: tried, hostSelectionRetryMaxAttempts: 3 } : {}),
      });
      if (!host || downstream.destroyed) {
        if (!host) flag(n === 0 ? 'UH' : 'UF');
        downstream.destroy();
        return;
      }
      tried.add(host);
      if (connect) {
        this.connectThroughCluster(connect, cluster.upstreamMetadataExchange === true, host, downstream, initialBytes, telemetry, () => {
          cluster.reportResult?.(host, 'connect_failure');
          if (n + 1 < this.maxConnectAttempts) attempt(n + 1);
          else {
            flag('UF');
            downstream.destroy();
          }
        });
        return;
      }
      cluster.stats.upstream_cx_total++;
      host.stats.cxTotal++;
      const bind = cluster.upstreamBindAddress;
      const upstream: Socket = netConnect({ host: host.address, port: host.port, ...(bind ? { localAddress: bind } : {}) });
      let connected = false;
      const connectTimer = setTimeout(() => upstream.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
      const onEarlyClose = (): void => {
        upstream.destroy();
      };
      downstream.once('close', onEarlyClose);
      upstream.once('error', () => {
        if (!connected) {
          clearTimeout(connectTimer);
          downstream.off('close', onEarlyClose);
          cluster.stats.upstream_cx_connect_fail++;
          host.stats.cxConnectFail++;
          cluster.reportResult?.(host, 'connect_failure');
          if (n + 1 < this.maxConnectAttempts) attempt(n + 1);
          else downstream.destroy();
        }
      });
      upstream.once('connect', () => {
        connected = true;
        clearTimeout(connectTimer);
        cluster.reportResult?.(host, 'tcp_connected');
        cluster.stats.upstream_cx_active++;
        host.stats.cxActive++;
        if (telemetry?.context.reporter === 'source') telemetry.recorder.setLabels(this.labelsOf(telemetry));
        this.splice(downstream, upstream, initialBytes, () => {
          cluster.stats.upstream_cx_active--;
          cluster.stats.upstream_cx_destroy++;
          host.stats.cxActive--;
        }, telemetry?.recorder);
      });
    };
    attempt(0);
  }

  /**
   * Connects over the cluster's transport socket (mTLS to another sidecar). When the cluster carries Istio's upstream
   * metadata exchange and ALPN chose istio-peer-exchange, sends this node's prefix first and strips the server's.
   */
  private connectThroughCluster(
    connect: (host: UpstreamHost) => Socket & { connected?: boolean },
    exchange: boolean,
    host: UpstreamHost,
    downstream: Duplex,
    initialBytes: Buffer | undefined,
    telemetry: ConnectionTelemetry | undefined,
    onFailure: () => void,
  ): void {
    const upstream = connect(host);
    let up = false;
    const onEarlyClose = (): void => {
      upstream.destroy();
    };
    downstream.once('close', onEarlyClose);
    // `on`, not `once`: an error after connecting (during the exchange) must not go unhandled; splice closes on it.
    let failed = false;
    upstream.on('error', () => {
      if (up || failed) {
        if (up) downstream.destroy();
        return;
      }
      failed = true;
      downstream.off('close', onEarlyClose);
      onFailure();
    });
    upstream.once('close', () => {
      if (up || failed) return;
      // Closed before connecting without an error event: a failure too.
      failed = true;
      downstream.off('close', onEarlyClose);
      onFailure();
    });
    upstream.once(upstream instanceof TLSSocket ? 'secureConnect' : 'connect', () => {
      up = true;
      // connectUpstream recorded the session's URI SANs on its own (earlier) secureConnect listener.
      const identity = (upstream as UpstreamSocket)[kUpstreamTlsIdentity];
      if (telemetry && identity) telemetry.facts.upstreamTls = identity;
      const start = (): void => {
        if (telemetry?.context.reporter === 'source') telemetry.recorder.setLabels(this.labelsOf(telemetry));
        this.splice(downstream, upstream, initialBytes, () => undefined, telemetry?.recorder);
      };
      if (exchange && upstream instanceof TLSSocket && upstream.alpnProtocol === PEER_EXCHANGE_ALPN) {
        upstream.write(nodeExchangePrefix(this.deps.node));
        readExchangePrefix(upstream, undefined, (r) => {
          if (r.kind === 'invalid') {
            upstream.destroy();
            downstream.destroy();
            return;
          }
          if (telemetry && r.kind === 'peer' && r.peer) telemetry.upstreamPeer = r.peer;
          start();
        });
        return;
      }
      start();
    });
  }

  private splice(downstream: Duplex, upstream: Socket, initialBytes: Buffer | undefined, onClosed: () => void, recorder?: TcpConnectionRecorder): void {
    let idleTimer: NodeJS.Timeout | undefined;
    const touch = (): void => {
      if (this.idleTimeoutMs <= 0) return;
      if (idleTimer) idleTimer.refresh();
      else
        idleTimer = setTimeout(() => {
          this.stats.idle_timeout++;
          downstream.destroy();
          upstream.destroy();
        }, this.idleTimeoutMs);
    };
    const durationTimer = this.maxDurationMs > 0
      ? setTimeout(() => {
          this.stats.max_downstream_connection_duration++;
          downstream.destroy();
          upstream.destroy();
        }, this.maxDurationMs)
      : undefined;
    touch();
    if (initialBytes && initialBytes.length > 0) {
      this.stats.downstream_cx_rx_bytes_total += initialBytes.length;
      recorder?.received(initialBytes.length);
      upstream.write(initialBytes);
    }
    downstream.on('data', (chunk: Buffer) => {
      this.stats.downstream_cx_rx_bytes_total += chunk.length;
      recorder?.received(chunk.length);
      touch();
    });
    upstream.on('data', (chunk: Buffer) => {
      this.stats.downstream_cx_tx_bytes_total += chunk.length;
      recorder?.sent(chunk.length);
      touch();
    });
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    downstream.resume();
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      if (idleTimer) clearTimeout(idleTimer);
      if (durationTimer) clearTimeout(durationTimer);
      downstream.destroy();
      upstream.destroy();
      onClosed();
    };
    upstream.once('close', close);
    downstream.once('close', close);
    upstream.on('error', close);
  }

  /** Closes every proxied connection now. */
  destroy(): void {
    for (const s of this.active) s.destroy();
  }
}

/** Validates and compiles a TcpProxy; throws XdsValidationError with field paths. */
export function compileTcpProxy(config: TcpProxyConfig, path: string, clusters: ClusterManager, deps: NetworkFilterDeps = {}): TcpProxy {
  const problems: string[] = [];
  for (const key of Object.keys(config)) {
    const v = (config as Record<string, unknown>)[key];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (!SUPPORTED.has(key)) problems.push(`${path}.${key}: not supported by Trellis`);
  }
  if (!config.stat_prefix) problems.push(`${path}.stat_prefix: required`);
  let pick: () => string = () => '';
  if (config.cluster) {
    const name = config.cluster;
    pick = () => name;
  } else if (config.weighted_clusters?.clusters?.length) {
    const list = config.weighted_clusters.clusters.map((c, i) => {
      if (!c.name) problems.push(`${path}.weighted_clusters.clusters[${i}].name: required`);
      if (!c.weight || c.weight < 1) problems.push(`${path}.weighted_clusters.clusters[${i}].weight: must be at least 1`);
      return { name: c.name ?? '', weight: c.weight ?? 0 };
    });
    const total = list.reduce((s, c) => s + c.weight, 0);
    pick = () => {
      let r = Math.random() * total;
      for (const c of list) if ((r -= c.weight) < 0) return c.name;
      return list[list.length - 1]!.name;
    };
  } else problems.push(`${path}: expected cluster or weighted_clusters`);
  const attempts = config.max_connect_attempts?.value ?? 1;
  if (attempts < 1) problems.push(`${path}.max_connect_attempts: must be at least 1`);
  if (problems.length) throw new XdsValidationError(problems);
  return new TcpProxy(
    config.stat_prefix!,
    clusters,
    pick,
    durationMs(config.idle_timeout, DEFAULT_TCP_IDLE_TIMEOUT_MS),
    attempts,
    durationMs(config.max_downstream_connection_duration, 0),
    deps,
  );
}
