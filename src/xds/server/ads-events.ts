// The events an AdsServer emits, so metrics and logs can count connects, pushes, ACKs and NACKs without reaching into streams.
import type { StreamMode, StreamNodeInfo } from './stream-status.js';

export interface StreamEvent {
  readonly streamId: string;
  readonly mode: StreamMode;
  readonly nodeKey: string;
}

export interface ConnectEvent extends StreamEvent {
  readonly node: StreamNodeInfo;
  readonly peer: string;
}

export interface DisconnectEvent extends StreamEvent {
  /** Why the stream ended: client half-close, cancellation, server close, or a protocol violation. */
  readonly reason: string;
}

export interface SentEvent extends StreamEvent {
  readonly typeUrl: string;
  readonly version: string;
  readonly nonce: string;
  readonly resourceCount: number;
  /** Delta only: names sent in removed_resources. */
  readonly removedCount: number;
}

export interface AckEvent extends StreamEvent {
  readonly typeUrl: string;
  readonly version: string;
  readonly nonce: string;
}

export interface NackEvent extends StreamEvent {
  readonly typeUrl: string;
  /** The version the client keeps running. */
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
}

/** A request answering a nonce that is not the last one sent for its type: it neither ACKs nor NACKs (Istio's pilot_xds_expired_nonce). */
export interface ExpiredNonceEvent extends StreamEvent {
  readonly typeUrl: string;
  readonly nonce: string;
}

export interface UnknownTypeEvent extends StreamEvent {
  readonly typeUrl: string;
}

/** A stream the server ended because the client broke the protocol (malformed bytes, no node, no type_url). */
export interface ProtocolErrorEvent {
  readonly streamId: string;
  readonly mode: StreamMode;
  readonly message: string;
}

export interface AdsServerEvents {
  connect: [ConnectEvent];
  disconnect: [DisconnectEvent];
  sent: [SentEvent];
  ack: [AckEvent];
  nack: [NackEvent];
  'expired-nonce': [ExpiredNonceEvent];
  'unknown-type': [UnknownTypeEvent];
  'protocol-error': [ProtocolErrorEvent];
}
