// Istio's TCP metadata exchange on the wire (ALPN istio-peer-exchange): each side first sends a prefix, an 8-byte header
// (magic 0x3D230467, then the length, both big-endian) and a google.protobuf.Any holding a Struct with the node's
// metadata under `x-envoy-peer-metadata` and its id under `x-envoy-peer-metadata-id`; the reader strips the peer's.
import { decodeMessage, encodeMessage } from '../../../xds/codec.js';
import type { google } from '../../../xds/generated/types.js';
import { structToJson, toStruct } from '../../../xds/struct.js';
import type { LocalNode } from './filter.js';
import { exchangedMetadata, PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, type PeerMetadata } from './peer-metadata.js';

/** The ALPN both sides negotiate for the exchange (Istio's MetadataExchange `protocol`). */
export const PEER_EXCHANGE_ALPN = 'istio-peer-exchange';
export const EXCHANGE_MAGIC = 0x3d230467;
const HEADER_BYTES = 8;
const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';
/** A prefix longer than this is not a peer's metadata (Istio has no limit; a bound keeps a bad peer from holding memory). */
export const MAX_EXCHANGE_BYTES = 64 * 1024;

/** The prefix this node sends: its exchanged metadata and node id. */
export function encodeExchangePrefix(fields: Readonly<Record<string, unknown>>, id: string): Buffer {
  const data: google.protobuf.Struct = { fields: { [PEER_METADATA_HEADER]: { struct_value: toStruct(fields) }, ...(id ? { [PEER_METADATA_ID_HEADER]: { string_value: id } } : {}) } };
  const any = encodeMessage('google.protobuf.Any', { type_url: STRUCT_TYPE_URL, value: encodeMessage('google.protobuf.Struct', data) });
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(EXCHANGE_MAGIC, 0);
  header.writeUInt32BE(any.length, 4);
  return Buffer.concat([header, any]);
}

/** Prefixes already built per node: the downstream filters and tcp_proxy's upstream side send the same bytes. */
const nodePrefixes = new WeakMap<LocalNode, Buffer>();
const NO_NODE: LocalNode = { id: '' };

/** This node's prefix: its exchanged metadata and id, encoded once per node. */
export function nodeExchangePrefix(node: LocalNode | undefined): Buffer {
  const key = node ?? NO_NODE;
  let prefix = nodePrefixes.get(key);
  if (!prefix) nodePrefixes.set(key, (prefix = encodeExchangePrefix(exchangedMetadata(key.metadata), key.id)));
  return prefix;
}

/** The reader's outcome: the peer (absent when the prefix had no metadata), or why there was no exchange. */
export type ExchangeResult =
  /** A prefix, stripped; `peer` is undefined when it does not decode to metadata (the peer is then unknown, as in Istio). */
  | { readonly kind: 'peer'; readonly peer: PeerMetadata | undefined; readonly rest: Buffer; readonly problem?: string }
  /** Not a prefix (wrong magic: the peer has no exchange filter): every byte read is the stream's own. */
  | { readonly kind: 'absent'; readonly rest: Buffer }
  /** Magic matched but the declared prefix is longer than MAX_EXCHANGE_BYTES: not buffered, the connection is closed. */
  | { readonly kind: 'invalid'; readonly reason: string };

/**
 * Reads the peer's prefix from the first bytes of a stream, as Istio's filter does: feed chunks until a result comes
 * (undefined means more bytes are needed).
 */
export class ExchangePrefixReader {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ExchangeResult | undefined {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const b = this.buffered;
    if (b.length < HEADER_BYTES) {
      // A short stream that already differs from the magic is not an exchange.
      const magic = Buffer.alloc(4);
      magic.writeUInt32BE(EXCHANGE_MAGIC, 0);
      return b.subarray(0, Math.min(4, b.length)).equals(magic.subarray(0, Math.min(4, b.length))) ? undefined : { kind: 'absent', rest: b };
    }
    if (b.readUInt32BE(0) !== EXCHANGE_MAGIC) return { kind: 'absent', rest: b };
    const size = b.readUInt32BE(4);
    if (size > MAX_EXCHANGE_BYTES) return { kind: 'invalid', reason: `metadata exchange prefix of ${size} bytes (at most ${MAX_EXCHANGE_BYTES})` };
    if (b.length < HEADER_BYTES + size) return undefined;
    const rest = b.subarray(HEADER_BYTES + size);
    try {
      const any = decodeMessage<google.protobuf.Any>('google.protobuf.Any', b.subarray(HEADER_BYTES, HEADER_BYTES + size));
      if (any.type_url !== STRUCT_TYPE_URL) return { kind: 'peer', peer: undefined, rest, problem: `metadata exchange prefix holds ${any.type_url || '(no type)'}, not a Struct` };
      const data = structToJson(decodeMessage<google.protobuf.Struct>('google.protobuf.Struct', any.value ?? new Uint8Array()));
      const metadata = data[PEER_METADATA_HEADER];
      const id = data[PEER_METADATA_ID_HEADER];
      const peer = metadata !== null && typeof metadata === 'object' && !Array.isArray(metadata) ? { ...(typeof id === 'string' ? { id } : {}), fields: metadata as Record<string, unknown> } : undefined;
      return { kind: 'peer', peer, rest };
    } catch (err) {
      return { kind: 'peer', peer: undefined, rest, problem: `metadata exchange prefix does not decode: ${(err as Error).message}` };
    }
  }
}
