// The network (L4) read-filter interface and registry: filters a listener's filter chain runs on each accepted connection before its terminal filter (tcp_proxy or the HTTP connection manager).
import type { DownstreamTlsInfo } from '../http/stream-info.js';
import { networkRbacFilterFactory } from './rbac/network-rbac.js';
import { tcpMetadataExchangeFilterFactory } from './metadata-exchange/tcp-filter.js';
import { istioTcpStatsFilterFactory } from './istio-stats/tcp-filter.js';
import type { LocalNode } from './metadata-exchange/filter.js';
import type { IstioTcpMetrics } from './istio-stats/tcp-metrics.js';

/** What a network filter knows about a downstream connection when it is accepted (after the TLS handshake, if any). */
export interface DownstreamConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** SNI from the ClientHello, '' when none. */
  readonly requestedServerName: string;
  /** The TLS session and peer certificate; undefined for plaintext. */
  readonly tls?: DownstreamTlsInfo;
  /** Per-connection values filters share (Envoy's connection filter state / dynamic metadata). */
  readonly filterState: Map<string, unknown>;
}

/** `continue`: hand the connection to the next filter. `stop`: the filter refused it; the listener closes it at once. */
export type NetworkFilterStatus = 'continue' | 'stop';

export interface NetworkReadFilter {
  /** Envoy's extension name, e.g. `envoy.filters.network.rbac`. */
  readonly name: string;
  onNewConnection(connection: DownstreamConnection): NetworkFilterStatus;
  /** Counters by full Envoy stat name (`tcp.rbac.denied`); the listener status exposes them. */
  readonly stats: Readonly<Record<string, number>>;
}

/** What the proxy gives network filters: its node (metadata exchange, stats labels) and where TCP metrics go. */
export interface NetworkFilterDeps {
  readonly node?: LocalNode;
  readonly tcpMetrics?: IstioTcpMetrics;
}

/** Compiles a network filter's typed_config once per listener config; throws XdsValidationError listing every problem. */
export interface NetworkReadFilterFactory {
  readonly name: string;
  readonly typeUrl: string;
  create(config: unknown, path: string, deps: NetworkFilterDeps): NetworkReadFilter;
}

const FACTORIES: readonly NetworkReadFilterFactory[] = [networkRbacFilterFactory, tcpMetadataExchangeFilterFactory, istioTcpStatsFilterFactory];

const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';

/**
 * The non-terminal network filters Trellis ships, by typed_config type URL or (without typed_config, or with a
 * google.protobuf.Struct for Istio's configs Trellis has no codec for) by name.
 */
export function networkReadFilterFactory(name: string, typeUrl: string): NetworkReadFilterFactory | undefined {
  return FACTORIES.find((f) => (typeUrl && typeUrl !== STRUCT_TYPE_URL ? f.typeUrl === typeUrl : f.name === name));
}

/** Names of the supported read filters, for NACK messages. */
export const NETWORK_READ_FILTER_NAMES: readonly string[] = FACTORIES.map((f) => f.name);
