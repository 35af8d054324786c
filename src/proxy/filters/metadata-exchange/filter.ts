// istio.metadata_exchange: sidecars swap their node metadata in x-envoy-peer-metadata(-id) headers so both ends know the other workload.
import { XdsValidationError } from '../../../common/errors.js';
import type { google } from '../../../xds/generated/types.js';
import type { FilterStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../../http/filter.js';
import { headerValue, type HttpHeaders } from '../../http/headers.js';
import { readStructConfig } from '../struct-config.js';
import {
  DOWNSTREAM_PEER,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  UPSTREAM_PEER,
  decodePeerMetadataCached,
  encodePeerMetadata,
  exchangedMetadata,
  type PeerMetadata,
} from './peer-metadata.js';

export const METADATA_EXCHANGE_FILTER = 'istio.metadata_exchange';
/**
 * Istio's current config message for this behaviour (io.istio.http.peer_metadata.Config). Trellis has no codec for
 * it, so the control plane sends the same fields as a google.protobuf.Struct; the filter is then found by its name.
 */
export const METADATA_EXCHANGE_TYPE_URL = 'type.googleapis.com/io.istio.http.peer_metadata.Config';

/** The node this proxy runs as: its id and metadata (the bootstrap's node). */
export interface LocalNode {
  readonly id: string;
  readonly metadata?: google.protobuf.Struct;
}

export interface MetadataExchangeConfig {
  /** Read the downstream's headers from the request (inbound). */
  readonly downstreamDiscovery: boolean;
  /** Add ours to the response (inbound). */
  readonly downstreamPropagation: boolean;
  /** Read the upstream's headers from the response (outbound, gateway). */
  readonly upstreamDiscovery: boolean;
  /** Add ours to the request (outbound, gateway). */
  readonly upstreamPropagation: boolean;
}

const FIELDS = ['downstream_discovery', 'downstream_propagation', 'upstream_discovery', 'upstream_propagation'] as const;

/** Compiles the Struct form of peer_metadata.Config: each field a list of `{ istio_headers: {} }` (the only method Trellis has). */
export function compileMetadataExchangeConfig(config: unknown): MetadataExchangeConfig {
  const problems: string[] = [];
  const json = readStructConfig(config, FIELDS, problems);
  const enabled: Record<string, boolean> = {};
  for (const field of FIELDS) {
    const list = json[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      problems.push(`${field}: expected a list of discovery/propagation methods`);
      continue;
    }
    list.forEach((method: unknown, i) => {
      const keys = method !== null && typeof method === 'object' ? Object.keys(method) : [];
      if (keys.length !== 1 || keys[0] !== 'istio_headers') problems.push(`${field}[${i}]: only { istio_headers: {} } is supported, got ${JSON.stringify(method)}`);
      else enabled[field] = true;
    });
  }
  if (problems.length > 0) throw new XdsValidationError(problems);
  return {
    downstreamDiscovery: enabled['downstream_discovery'] === true,
    downstreamPropagation: enabled['downstream_propagation'] === true,
    upstreamDiscovery: enabled['upstream_discovery'] === true,
    upstreamPropagation: enabled['upstream_propagation'] === true,
  };
}

/** Reads and removes a peer's headers; the peer is kept only when the metadata header decodes. */
function takePeer(headers: HttpHeaders): PeerMetadata | undefined {
  const value = headerValue(headers, PEER_METADATA_HEADER);
  const id = headerValue(headers, PEER_METADATA_ID_HEADER);
  if (value === undefined && id === undefined) return undefined;
  delete headers[PEER_METADATA_HEADER];
  delete headers[PEER_METADATA_ID_HEADER];
  const fields = value !== undefined ? decodePeerMetadataCached(value) : undefined;
  if (!fields) return undefined;
  return { ...(id !== undefined ? { id } : {}), fields };
}

class MetadataExchangeFilter implements HttpFilter {
  readonly name = METADATA_EXCHANGE_FILTER;
  constructor(
    private readonly config: MetadataExchangeConfig,
    private readonly nodeId: string,
    private readonly encoded: string,
  ) {}

  onRequestHeaders(ctx: HttpFilterContext): FilterStatus {
    this.exchange(ctx, ctx.requestHeaders, this.config.downstreamDiscovery, DOWNSTREAM_PEER, this.config.upstreamPropagation);
    return 'continue';
  }

  onResponseHeaders(ctx: HttpFilterContext, headers: HttpHeaders): void {
    // A local reply (no upstream answered) carries no peer of ours to propagate on the source side; inbound always answers for itself.
    this.exchange(ctx, headers, this.config.upstreamDiscovery, UPSTREAM_PEER, this.config.downstreamPropagation);
  }

  /** One direction: keep the peer's headers as `peerKey` when discovering, then send ours when propagating. */
  private exchange(ctx: HttpFilterContext, headers: HttpHeaders, discover: boolean, peerKey: string, propagate: boolean): void {
    if (discover) {
      const peer = takePeer(headers);
      if (peer) ctx.info.filterState.set(peerKey, peer);
    } else {
      // Never let a peer's claim through to the app, upstream or client as if it were ours.
      delete headers[PEER_METADATA_HEADER];
      delete headers[PEER_METADATA_ID_HEADER];
    }
    if (propagate) {
      headers[PEER_METADATA_ID_HEADER] = this.nodeId;
      headers[PEER_METADATA_HEADER] = this.encoded;
    }
  }
}

/** The factory, bound to this proxy's node (the header value is encoded once per config apply). */
export function metadataExchangeFilterFactory(node: LocalNode): HttpFilterFactory {
  return {
    name: METADATA_EXCHANGE_FILTER,
    typeUrl: METADATA_EXCHANGE_TYPE_URL,
    create(config: unknown): HttpFilter {
      const compiled = compileMetadataExchangeConfig(config);
      return new MetadataExchangeFilter(compiled, node.id, encodePeerMetadata(exchangedMetadata(node.metadata)));
    },
  };
}
