// Istio's peer metadata as it crosses the wire: x-envoy-peer-metadata is base64 of a serialized google.protobuf.Struct of node metadata.
import { decodeMessage, encodeMessage } from '../../../xds/codec.js';
import type { google } from '../../../xds/generated/types.js';
import { structToJson, toStruct } from '../../../xds/struct.js';

export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

/** Filter state keys (Istio's peer_metadata filter: `downstream_peer`, `upstream_peer`). */
export const DOWNSTREAM_PEER = 'downstream_peer';
export const UPSTREAM_PEER = 'upstream_peer';

/** The node metadata keys Istio's metadata exchange sends (its ExtractNodeFlatBuffer set); others stay private. */
export const EXCHANGED_KEYS = ['NAME', 'NAMESPACE', 'OWNER', 'WORKLOAD_NAME', 'ISTIO_VERSION', 'MESH_ID', 'CLUSTER_ID', 'LABELS', 'PLATFORM_METADATA', 'APP_CONTAINERS', 'INSTANCE_IPS', 'SERVICE_ACCOUNT'] as const;

/** A peer's metadata as the stats filter reads it. */
export interface PeerMetadata {
  /** x-envoy-peer-metadata-id (the peer's node id), when sent. */
  readonly id?: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** The exchanged subset of a node's metadata, as plain JSON. */
export function exchangedMetadata(nodeMetadata: google.protobuf.Struct | undefined): Record<string, unknown> {
  const all = structToJson(nodeMetadata);
  const out: Record<string, unknown> = {};
  for (const key of EXCHANGED_KEYS) if (all[key] !== undefined) out[key] = all[key];
  return out;
}

/** The header value for these metadata: base64(Struct bytes), keys sorted so equal metadata encode equally. */
export function encodePeerMetadata(fields: Readonly<Record<string, unknown>>): string {
  return Buffer.from(encodeMessage('google.protobuf.Struct', toStruct(fields))).toString('base64');
}

/** Distinct peer headers kept decoded; a proxy talks to few peers, so past this the cache starts over (bounded memory). */
export const PEER_METADATA_CACHE_SIZE = 1024;
const decoded = new Map<string, Readonly<Record<string, unknown>> | undefined>();

/**
 * decodePeerMetadata through a cache keyed by the header value: a peer sends the same bytes on every request, and the
 * protobuf decode is most of what Istio's stats cost per request (bench/istio-stats.ts). The result is shared: read-only.
 */
export function decodePeerMetadataCached(value: string): Readonly<Record<string, unknown>> | undefined {
  if (decoded.has(value)) return decoded.get(value);
  const fields = decodePeerMetadata(value);
  if (decoded.size >= PEER_METADATA_CACHE_SIZE) decoded.clear();
  decoded.set(value, fields);
  return fields;
}

/** Decodes a header value; undefined when it is not base64 of a Struct (a bad header is ignored, as Istio does). */
export function decodePeerMetadata(value: string): Record<string, unknown> | undefined {
  if (value.length === 0) return undefined;
  try {
    const struct = decodeMessage<google.protobuf.Struct>('google.protobuf.Struct', Buffer.from(value, 'base64'));
    return structToJson(struct);
  } catch {
    return undefined;
  }
}
