// What differs between State-of-the-World and Delta ADS, behind one interface the client's stream management uses.
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../ads-service.js';
import type { UpdateOutcome } from './update-processing.js';
import type { WatchedType } from './watched-type.js';

export type AdsRequest = DiscoveryRequest | DeltaDiscoveryRequest;
export type AdsResponse = DiscoveryResponse | DeltaDiscoveryResponse;

/** gRPC's INVALID_ARGUMENT, the code of every NACK's error_detail. */
export const INVALID_ARGUMENT = 3;

/** A response, processed: what to answer and what to record. */
export interface ProcessedResponse {
  readonly watched: WatchedType<unknown>;
  readonly nonce: string;
  /** SotW version_info, Delta system_version_info. */
  readonly versionInfo: string;
  readonly outcome: UpdateOutcome;
}

export interface AdsProtocol<Req extends AdsRequest = AdsRequest, Res extends AdsResponse = AdsResponse> {
  readonly mode: 'sotw' | 'delta';
  /** The ADS method's path and (de)serialisers. */
  readonly method: {
    readonly path: string;
    readonly requestSerialize: (request: Req) => Buffer;
    readonly responseDeserialize: (bytes: Buffer) => Res;
  };
  /** A type's first request on a new stream: everything the client knows, so the server can resume. */
  initialRequest(watched: WatchedType<unknown>): Req;
  /** The subscription changed on a live stream. */
  subscriptionRequest(watched: WatchedType<unknown>, added: readonly string[], removed: readonly string[]): Req;
  /** Decodes and applies a response; undefined when it is for a type the client does not watch (Envoy ignores those). */
  processResponse(response: Res, types: ReadonlyMap<string, WatchedType<unknown>>): Promise<ProcessedResponse | undefined>;
  /** The ACK (no message) or NACK for a processed response; call after the watched type's version is updated. */
  replyRequest(watched: WatchedType<unknown>, nonce: string, nackMessage: string | undefined): Req;
}
