// Node's own llhttp binding (the parser node:http uses), typed for the lean HTTP/1.1 codecs that drive it directly.
import { createRequire } from 'node:module';
import type { WritableStreamHandle } from './direct-write.js';

/** The libuv stream handle behind a net.Socket, as the lean codecs use it: consumed by llhttp, written by direct writes. */
export interface StreamHandle extends WritableStreamHandle {
  readonly isStreamBase?: boolean;
  _consumed?: boolean;
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

/** An llhttp error as `execute`/`finish` return it: `code` is llhttp's stable HPE_* name. */
export type LlhttpError = Error & { code?: string; bytesParsed?: number; reason?: string };

/** One parser instance (node_http_parser.cc); callbacks are installed by index (`kOnHeadersComplete`, …). */
export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  /** Bytes consumed, or the parse error. An upgrade stops at the end of its head (the rest is the tunnel's). */
  execute(data: Buffer): number | LlhttpError;
  /** EOF: an error if a message was cut short. */
  finish(): undefined | LlhttpError;
  close(): void;
  /** Reads a stream handle directly (node:http's server on plain TCP); results arrive through `kOnExecute`. */
  consume(handle: object): void;
  unconsume(): void;
  /** In a `kOnExecute` callback: the bytes of the read being parsed. */
  getCurrentBuffer(): Buffer;
  [key: number]: unknown;
}

export interface LlhttpParserClass {
  new (): LlhttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}

// Stable across Node 18-22 but not in @types/node: node:_http_common exports the binding and llhttp's method names.
const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: LlhttpParserClass; methods: readonly string[] };

export const HTTPParser: LlhttpParserClass = common.HTTPParser;
/** llhttp's method table: `kOnHeadersComplete` reports the method as an index into it. */
export const LLHTTP_METHODS: readonly string[] = common.methods;
