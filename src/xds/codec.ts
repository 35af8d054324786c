// Protobuf codecs for Envoy's v3 messages, compiled once (lazily, per type) from the generated descriptor.
//
// The library is protobufjs: it compiles an encoder/decoder function per message type from the
// reflection descriptor, which measured fastest for Trellis's hot case (encoding thousands of
// Clusters; see bench/protobuf-encode.ts and docs/xds.md). Objects use the .proto field names
// (snake_case) like Envoy's YAML, enums decode to their names, 64-bit integers to numbers.
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { CodecError, describeError } from '../common/errors.js';
import type { google } from './generated/types.js';
import { messageNameOf, typeUrlOf } from './type-urls.js';

export type Any = google.protobuf.Any;

const DESCRIPTOR_URL = new URL('./generated/envoy-descriptor.json', import.meta.url);

const DECODE_OPTIONS: protobuf.IConversionOptions = { enums: String, longs: Number };

let root: protobuf.Root | undefined;
const types = new Map<string, protobuf.Type>();

function envoyRoot(): protobuf.Root {
  if (!root) {
    const descriptor = JSON.parse(readFileSync(DESCRIPTOR_URL, 'utf8')) as protobuf.INamespace;
    root = protobuf.Root.fromJSON(descriptor);
  }
  return root;
}

/** The compiled protobufjs type for a fully-qualified message name (`envoy.config.cluster.v3.Cluster`). */
export function messageType(messageName: string): protobuf.Type {
  let type = types.get(messageName);
  if (type) return type;
  const envoy = envoyRoot();
  try {
    type = envoy.lookupType(messageName);
  } catch {
    throw new CodecError('TRELLIS_CODEC_UNKNOWN_TYPE', `no protobuf message named ${messageName}`);
  }
  types.set(messageName, type);
  return type;
}

/** True when Trellis can encode and decode this message name. */
export function hasMessageType(messageName: string): boolean {
  if (types.has(messageName)) return true;
  const found = envoyRoot().lookup(messageName);
  return found instanceof protobuf.Type;
}

/** Encodes a plain object (field names as in the .proto, enums by name or number) to protobuf bytes. */
export function encodeMessage<T extends object>(messageName: string, value: T): Uint8Array {
  const type = messageType(messageName);
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
}

/** Decodes protobuf bytes to a plain object; throws CodecError with the reason on malformed input. */
export function decodeMessage<T extends object>(messageName: string, bytes: Uint8Array): T {
  const type = messageType(messageName);
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (err) {
    throw new CodecError('TRELLIS_CODEC_MALFORMED', `malformed ${messageName}: ${describeError(err)}`, { cause: err });
  }
  return type.toObject(message, DECODE_OPTIONS) as T;
}

/** Packs a message into google.protobuf.Any under its type URL. */
export function packAny<T extends object>(messageName: string, value: T): Any {
  return { type_url: typeUrlOf(messageName), value: encodeMessage(messageName, value) };
}

/** Unpacks an Any, checking its type URL when `expectedTypeUrl` is given. */
export function unpackAny<T extends object>(any: Any, expectedTypeUrl?: string): T {
  const url = any.type_url ?? '';
  if (expectedTypeUrl !== undefined && url !== expectedTypeUrl) {
    throw new CodecError('TRELLIS_CODEC_UNKNOWN_TYPE', `expected an Any of type ${expectedTypeUrl}, got ${url || '(empty type_url)'}`);
  }
  const name = messageNameOf(url);
  if (!name || !hasMessageType(name)) {
    throw new CodecError('TRELLIS_CODEC_UNKNOWN_TYPE', `no codec for Any type URL ${url || '(empty)'}`);
  }
  return decodeMessage<T>(name, any.value ?? new Uint8Array());
}

/**
 * Proto3 JSON for humans and debug endpoints (config_dump): Any expanded with "@type",
 * enums by name, bytes as base64.
 */
export function toJson(messageName: string, value: object): Record<string, unknown> {
  const type = messageType(messageName);
  return type.toObject(type.fromObject(value as Record<string, unknown>), { json: true, enums: String, longs: String }) as Record<string, unknown>;
}
