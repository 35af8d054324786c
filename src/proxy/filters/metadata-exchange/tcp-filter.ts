// istio.metadata_exchange as a network filter (Istio's envoy.tcp.metadataexchange.config.MetadataExchange), on a
// listener's TCP chain (downstream) or a cluster's `filters` (upstream): compiles the config and this node's prefix;
// tcp_proxy does the exchange on connections that negotiated ALPN istio-peer-exchange.
import { XdsValidationError } from '../../../common/errors.js';
import { readStructConfig } from '../struct-config.js';
import { FilterStateFilter } from '../filter-state-filter.js';
import type { NetworkFilterDeps, NetworkReadFilter, NetworkReadFilterFactory } from '../network-filter.js';
import { nodeExchangePrefix, PEER_EXCHANGE_ALPN } from './tcp-exchange.js';

export const TCP_METADATA_EXCHANGE_FILTER = 'istio.metadata_exchange';
/** Istio's config type; Trellis has no codec for it: the config comes as a google.protobuf.Struct, found by name. */
export const TCP_METADATA_EXCHANGE_TYPE_URL = 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange';
/** Connection filter state: the exchange tcp_proxy runs with the downstream. */
export const DOWNSTREAM_EXCHANGE = 'istio.metadata_exchange.downstream';

/** What tcp_proxy needs for one side of the exchange, and the filter's counters (Envoy's metadata_exchange.* names). */
export interface TcpExchange {
  readonly protocol: string;
  /** This node's prefix (magic, length, Any of the Struct). */
  readonly prefix: Buffer;
  readonly stats: Record<string, number>;
}

const FIELDS = ['protocol', 'enable_discovery', 'additional_labels'];

/** Compiles MetadataExchange (Struct form); `protocol` must be Istio's istio-peer-exchange, the only ALPN Trellis offers. */
export function compileTcpExchange(config: unknown, node: NetworkFilterDeps['node']): TcpExchange {
  const problems: string[] = [];
  const json = readStructConfig(config, FIELDS, problems);
  const protocol = json['protocol'];
  if (protocol !== PEER_EXCHANGE_ALPN) problems.push(`protocol: expected ${JSON.stringify(PEER_EXCHANGE_ALPN)}, got ${JSON.stringify(protocol)}`);
  // Discovery through the workload metadata xDS (ambient) is not in Trellis: the exchange itself is the only source.
  if (json['enable_discovery'] === true) problems.push('enable_discovery: workload discovery is not supported by Trellis (the exchange on the connection is)');
  if (Array.isArray(json['additional_labels']) && json['additional_labels'].length > 0) problems.push('additional_labels: not supported by Trellis');
  if (problems.length > 0) throw new XdsValidationError(problems);
  return {
    protocol: PEER_EXCHANGE_ALPN,
    prefix: nodeExchangePrefix(node),
    stats: { alpn_protocol_found: 0, alpn_protocol_not_found: 0, initial_header_not_found: 0, header_not_found: 0, metadata_added: 0 },
  };
}

export const tcpMetadataExchangeFilterFactory: NetworkReadFilterFactory = {
  name: TCP_METADATA_EXCHANGE_FILTER,
  typeUrl: TCP_METADATA_EXCHANGE_TYPE_URL,
  create(config: unknown, _path: string, deps: NetworkFilterDeps): NetworkReadFilter {
    const exchange = compileTcpExchange(config, deps.node);
    return new FilterStateFilter(TCP_METADATA_EXCHANGE_FILTER, DOWNSTREAM_EXCHANGE, exchange, { statPrefix: 'metadata_exchange.', values: exchange.stats });
  },
};
