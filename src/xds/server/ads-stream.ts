// What SotW and Delta streams share: node identity from the first request, type URL checks, the source watch, the push scheduler.
import type { Node } from '../ads-service.js';
import type { google } from '../generated/types.js';
import type { AdsServerEvents } from './ads-events.js';
import { NonceSequence } from './nonce.js';
import type { CancelWatch, ResourceSource } from './resource-source.js';
import { ResponseScheduler, type ResponseSink } from './response-scheduler.js';
import { describeNode, MAX_UNKNOWN_TYPE_URLS, type StreamMode, type StreamStatus, type TypeStatus } from './stream-status.js';

/** Where a stream logs what an operator should see. */
export interface AdsLogger {
  warn(message: string): void;
  info?(message: string): void;
}

/** What the server gives each stream. */
export interface StreamContext {
  readonly id: string;
  readonly peer: string;
  readonly source: ResourceSource;
  readonly servedTypeUrls: ReadonlySet<string>;
  readonly logger: AdsLogger;
  emit<E extends keyof AdsServerEvents>(event: E, ...args: AdsServerEvents[E]): void;
}

/** A request that breaks the protocol badly enough to end the stream with INVALID_ARGUMENT. */
export interface ProtocolViolation {
  readonly message: string;
}

/** The fields both DiscoveryRequest and DeltaDiscoveryRequest carry. */
export interface AdsRequest {
  node?: Node;
  type_url?: string;
  response_nonce?: string;
  error_detail?: google.rpc.Status;
}

export abstract class AdsStream<Request extends AdsRequest, Response> {
  abstract readonly mode: StreamMode;
  readonly connectedAt = new Date();
  protected node: Node | undefined;
  protected nodeKey = '';
  protected readonly nonces: NonceSequence;
  protected readonly scheduler: ResponseScheduler<Response>;
  private cancelWatch: CancelWatch | undefined;
  private closed = false;
  private readonly unknownTypeUrls = new Set<string>();

  constructor(
    protected readonly context: StreamContext,
    sink: ResponseSink<Response>,
  ) {
    this.nonces = new NonceSequence(context.id);
    this.scheduler = new ResponseScheduler(sink, (typeUrl) => (this.closed ? undefined : this.buildResponse(typeUrl)));
  }

  get id(): string {
    return this.context.id;
  }

  /** True once the first request (with its node) arrived; only then does the stream appear in status. */
  get identified(): boolean {
    return this.node !== undefined;
  }

  /** Handles one request; returns a violation when the stream must end. */
  receive(request: Request): ProtocolViolation | undefined {
    if (this.closed) return undefined;
    if (!this.node) {
      // xDS: only the first request is guaranteed to carry the node, and the server cannot choose resources without it.
      if (!request.node) return { message: 'the first request on an ADS stream must carry node' };
      this.node = request.node;
      this.nodeKey = this.context.source.nodeKey(request.node);
      this.cancelWatch = this.context.source.watch(this.nodeKey, (typeUrl) => {
        if (!this.closed) this.resourcesChanged(typeUrl);
      });
      this.context.emit('connect', { ...this.eventBase(), node: describeNode(request.node), peer: this.context.peer });
    }
    const typeUrl = request.type_url ?? '';
    // On ADS the type URL is what multiplexes the stream; without it the request means nothing.
    if (!typeUrl) return { message: 'type_url is required on an aggregated (ADS) stream' };
    if (!this.context.servedTypeUrls.has(typeUrl)) {
      this.unknownType(typeUrl);
      return undefined;
    }
    this.handle(typeUrl, request);
    return undefined;
  }

  /** Stops pushing and cancels the source watch; idempotent. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.scheduler.close();
    this.cancelWatch?.();
    this.cancelWatch = undefined;
    if (this.node) this.context.emit('disconnect', { ...this.eventBase(), reason });
  }

  status(): StreamStatus {
    return {
      id: this.id,
      mode: this.mode,
      node: describeNode(this.node ?? {}),
      nodeKey: this.nodeKey,
      peer: this.context.peer,
      connectedAt: this.connectedAt,
      types: this.typeStatuses(),
      unknownTypeUrls: [...this.unknownTypeUrls],
    };
  }

  protected eventBase(): { streamId: string; mode: StreamMode; nodeKey: string } {
    return { streamId: this.id, mode: this.mode, nodeKey: this.nodeKey };
  }

  /** A request of a served type, after node and type checks. */
  protected abstract handle(typeUrl: string, request: Request): void;
  /** The response to write for `typeUrl` now, or undefined when the client has nothing to learn. */
  protected abstract buildResponse(typeUrl: string): Response | undefined;
  /** The source changed `typeUrl` for this stream's node key. */
  protected abstract resourcesChanged(typeUrl: string): void;
  protected abstract typeStatuses(): Record<string, TypeStatus>;

  private unknownType(typeUrl: string): void {
    // No response, stream kept open (as go-control-plane and istiod do): Envoy may ask for types a server does not serve.
    // Warn once per type URL, and stop recording past a bound so random type URLs cannot grow memory or flood logs.
    if (this.unknownTypeUrls.has(typeUrl) || this.unknownTypeUrls.size >= MAX_UNKNOWN_TYPE_URLS) return;
    this.unknownTypeUrls.add(typeUrl);
    this.context.logger.warn(`ADS stream ${this.id} (node key ${this.nodeKey}): unknown type URL ${typeUrl}; not served, no response`);
    this.context.emit('unknown-type', { ...this.eventBase(), typeUrl });
  }
}
