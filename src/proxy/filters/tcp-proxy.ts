// envoy.filters.network.tcp_proxy: connects each downstream connection to a host of a (weighted) cluster and splices bytes.
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import type { ClusterManager, UpstreamHost } from '../upstream/types.js';

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
  ) {}

  get activeConnections(): number {
    return this.active.size;
  }

  /**
   * Proxies one connection; `initialBytes` were read while choosing the filter chain and go upstream first. `local`: the
   * connection's (restored) destination, which ORIGINAL_DST clusters (PassthroughCluster) connect to.
   */
  handle(downstream: Duplex, initialBytes?: Buffer, local?: { readonly address: string; readonly port: number }): void {
    this.stats.downstream_cx_total++;
    this.active.add(downstream);
    downstream.once('close', () => this.active.delete(downstream));
    downstream.on('error', () => downstream.destroy());
    const cluster = this.clusters.get(this.pick());
    if (!cluster) {
      this.stats.downstream_cx_no_route++;
      downstream.destroy();
      return;
    }
    const tried = new Set<UpstreamHost>();
    const originalDestination = local ? `${local.address.includes(':') ? `[${local.address}]` : local.address}:${local.port}` : undefined;
    const attempt = (n: number): void => {
      const host = cluster.chooseHost({
        ...(originalDestination ? { originalDestination } : {}),
        ...(tried.size > 0 ? { avoidHosts: tried, hostSelectionRetryMaxAttempts: 3 } : {}),
      });
      if (!host || downstream.destroyed) {
        downstream.destroy();
        return;
      }
      tried.add(host);
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
        this.splice(downstream, upstream, initialBytes, () => {
          cluster.stats.upstream_cx_active--;
          cluster.stats.upstream_cx_destroy++;
          host.stats.cxActive--;
        });
      });
    };
    attempt(0);
  }

  private splice(downstream: Duplex, upstream: Socket, initialBytes: Buffer | undefined, onClosed: () => void): void {
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
      upstream.write(initialBytes);
    }
    downstream.on('data', (chunk: Buffer) => {
      this.stats.downstream_cx_rx_bytes_total += chunk.length;
      touch();
    });
    upstream.on('data', (chunk: Buffer) => {
      this.stats.downstream_cx_tx_bytes_total += chunk.length;
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
export function compileTcpProxy(config: TcpProxyConfig, path: string, clusters: ClusterManager): TcpProxy {
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
  );
}
