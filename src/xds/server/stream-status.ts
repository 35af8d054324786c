// What the server knows about one ADS stream, per type URL: subscription, versions and nonces sent, ACKs and NACKs.
import type { Node } from '../ads-service.js';
import { structToJson } from '../struct.js';

export type StreamMode = 'sotw' | 'delta';

export interface NackRecord {
  readonly nonce: string;
  /** The version the client reported with the NACK: the one it still runs. */
  readonly version: string;
  readonly message: string;
  readonly at: Date;
}

export interface TypeStatus {
  readonly subscribed: { readonly wildcard: boolean; readonly names: readonly string[] };
  readonly lastSentVersion: string;
  readonly lastSentNonce: string;
  readonly lastAckedVersion: string;
  readonly lastNack?: NackRecord;
  readonly sentCount: number;
  readonly ackCount: number;
  readonly nackCount: number;
}

export interface StreamNodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface StreamStatus {
  readonly id: string;
  readonly mode: StreamMode;
  readonly node: StreamNodeInfo;
  readonly nodeKey: string;
  readonly peer: string;
  readonly connectedAt: Date;
  readonly types: Readonly<Record<string, TypeStatus>>;
  /** Type URLs the client asked for that this server does not serve (bounded; see MAX_UNKNOWN_TYPE_URLS). */
  readonly unknownTypeUrls: readonly string[];
}

/** A client sending random type URLs must not grow the status without bound. */
export const MAX_UNKNOWN_TYPE_URLS = 16;

/** The ACK/NACK bookkeeping of one type on one stream; the stream state machines update it, status() reads it. */
export class TypeAccounting {
  lastSentVersion = '';
  lastSentNonce = '';
  lastAckedVersion = '';
  lastNack: NackRecord | undefined;
  sentCount = 0;
  ackCount = 0;
  nackCount = 0;

  recordSent(version: string, nonce: string): void {
    this.lastSentVersion = version;
    this.lastSentNonce = nonce;
    this.sentCount++;
  }

  recordAck(version: string): void {
    this.lastAckedVersion = version;
    this.ackCount++;
  }

  recordNack(record: NackRecord): void {
    this.lastNack = record;
    this.nackCount++;
  }

  /** Whether a request's response_nonce answers the latest response of this type (empty before anything was sent). */
  isCurrent(responseNonce: string): boolean {
    return responseNonce === this.lastSentNonce;
  }
}

/** The status of one type from its subscription and accounting. */
export function typeStatus(subscribed: TypeStatus['subscribed'], a: TypeAccounting): TypeStatus {
  return {
    subscribed,
    lastSentVersion: a.lastSentVersion,
    lastSentNonce: a.lastSentNonce,
    lastAckedVersion: a.lastAckedVersion,
    ...(a.lastNack ? { lastNack: a.lastNack } : {}),
    sentCount: a.sentCount,
    ackCount: a.ackCount,
    nackCount: a.nackCount,
  };
}

/** The node fields a status shows; metadata as plain JSON-like values (google.protobuf.Struct decoded). */
export function describeNode(node: Node): StreamNodeInfo {
  return { id: node.id ?? '', cluster: node.cluster ?? '', metadata: structToJson(node.metadata) };
}
