// The xDS client a proxy runs: one ADS stream (SotW or Delta) to a control plane, subscriptions, ACK/NACK, reconnect with backoff.
//
// Stream management lives here and knows nothing of the wire differences; sotw-protocol.ts and
// delta-protocol.ts build the requests and process the responses. State that must survive a stream
// (subscriptions, accepted resources and versions) lives in one WatchedType per type URL.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { ExponentialBackoff, type BackoffOptions } from '../../common/backoff.js';
import { XdsError, describeError } from '../../common/errors.js';
import { TRELLIS_VERSION } from '../../common/version.js';
import type { Node } from '../ads-service.js';
import { RESOURCE_TYPE_URLS, shortName } from '../type-urls.js';
import type { AdsProtocol, AdsRequest, AdsResponse, ProcessedResponse } from './ads-protocol.js';
import { deltaProtocol } from './delta-protocol.js';
import { WILDCARD, type ApplyHook, type ResourceUpdate, type Wildcard, type XdsResourceType } from './resource-type.js';
import { BUILTIN_RESOURCE_TYPES } from './resource-types/index.js';
import { sotwProtocol } from './sotw-protocol.js';
import { WatchedType, type NackRecord } from './watched-type.js';

export type XdsClientMode = 'sotw' | 'delta';

export interface XdsClientOptions {
  /** The control plane, `host:port` (Istio's plain xDS port is 15010). */
  server: string;
  /** Identifies the proxy to the control plane; sent on the first request of each stream. */
  node: Node;
  /** Default 'sotw', as Envoy's ADS default. */
  mode?: XdsClientMode;
  /** Default insecure. */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  /** Reconnect backoff; defaults to Envoy's (500 ms base, 30 s max, full jitter). */
  backoff?: BackoffOptions;
  /** Resource types understood; defaults to LDS, RDS, CDS, EDS and SDS. More can be added with register(). */
  resourceTypes?: readonly XdsResourceType<object>[];
}

export interface AckEvent {
  readonly typeUrl: string;
  readonly versionInfo: string;
  readonly nonce: string;
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

export interface NackEvent extends AckEvent {
  /** The error_detail message sent: each refused resource and why. */
  readonly message: string;
  /** The version the server offered; the NACK itself carried the last accepted one. */
  readonly rejectedVersion: string;
}

export interface DisconnectedEvent {
  /** gRPC status code the stream ended with. */
  readonly code: number;
  readonly details: string;
  /** How long until the next attempt. */
  readonly retryInMs: number;
}

export interface XdsClientEvents {
  connected: [];
  disconnected: [DisconnectedEvent];
  ack: [AckEvent];
  nack: [NackEvent];
}

export interface XdsTypeStatus {
  readonly typeUrl: string;
  /** LDS, RDS, CDS, EDS, SDS, or the type URL for other types. */
  readonly shortName: string;
  readonly wildcard: boolean;
  readonly subscribedNames: readonly string[];
  /** The last version accepted (SotW version_info, Delta system_version_info); '' before the first. */
  readonly versionInfo: string;
  /** The nonce of the last response on the current stream. */
  readonly nonce: string;
  /** Names held, with their version (Delta: the resource's own; SotW: the version_info of the response that last changed it). */
  readonly resourceVersions: Readonly<Record<string, string>>;
  readonly lastAckTime: Date | undefined;
  readonly lastNack: NackRecord | undefined;
}

export interface XdsClientStatus {
  readonly server: string;
  readonly mode: XdsClientMode;
  readonly connected: boolean;
  readonly closed: boolean;
  /** Consecutive stream failures since the last response; 0 when healthy. */
  readonly reconnectAttempts: number;
  readonly lastDisconnect: (DisconnectedEvent & { readonly time: Date }) | undefined;
  readonly types: readonly XdsTypeStatus[];
}

interface ActiveStream {
  readonly call: grpc.ClientDuplexStream<AdsRequest, AdsResponse>;
  nodeSent: boolean;
  connected: boolean;
}

const USER_AGENT_NAME = 'trellis';

export class XdsClient extends EventEmitter<XdsClientEvents> {
  readonly mode: XdsClientMode;
  private readonly server: string;
  private readonly node: Node;
  private readonly protocol: AdsProtocol;
  private readonly grpcClient: grpc.Client;
  private readonly backoff: ExponentialBackoff;
  private readonly watched = new Map<string, WatchedType<unknown>>();
  private stream: ActiveStream | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private processing: Promise<void> = Promise.resolve();
  private lastDisconnect: XdsClientStatus['lastDisconnect'];
  private consecutiveFailures = 0;
  private closed = false;

  constructor(options: XdsClientOptions) {
    super();
    this.mode = options.mode ?? 'sotw';
    this.server = options.server;
    this.node = { ...options.node, user_agent_name: USER_AGENT_NAME, user_agent_version: TRELLIS_VERSION };
    this.protocol = (this.mode === 'delta' ? deltaProtocol : sotwProtocol) as AdsProtocol;
    this.backoff = new ExponentialBackoff(options.backoff);
    // gRPC's channel has a reconnect backoff of its own (1 s growing 1.6x to 120 s). While it waits, the channel is in
    // TRANSIENT_FAILURE and fails our new stream at once: after a long outage a retry that our own (jittered) delay
    // allowed would fail again and wait another full delay. Holding the channel's wait at our base (0.5 s) keeps the
    // stream's backoff the one that decides when a proxy is back; only a cheap connection attempt repeats that often.
    const channelOptions: grpc.ChannelOptions = {
      'grpc.initial_reconnect_backoff_ms': this.backoff.baseMs,
      'grpc.max_reconnect_backoff_ms': this.backoff.baseMs,
      ...options.channelOptions,
    };
    this.grpcClient = new grpc.Client(options.server, options.credentials ?? grpc.credentials.createInsecure(), channelOptions);
    for (const type of options.resourceTypes ?? BUILTIN_RESOURCE_TYPES) this.register(type);
  }

  /**
   * Adds (or replaces) the resource type for its type URL, with the hook that applies its updates.
   * State already held for the type URL (subscriptions, resources) is kept.
   */
  register<T>(type: XdsResourceType<T>, apply?: ApplyHook<T>): void {
    const existing = this.watched.get(type.typeUrl);
    if (existing) {
      // Keep what the client knows (subscriptions, resources, versions); only the decoder and hook change.
      existing.type = type;
      if (apply) existing.apply = apply as ApplyHook<unknown>;
      return;
    }
    const watched = new WatchedType<T>(type);
    watched.apply = apply;
    this.watched.set(type.typeUrl, watched as WatchedType<unknown>);
  }

  /** Sets the hook that applies updates of a registered type. */
  onApply<T>(type: XdsResourceType<T>, apply: ApplyHook<T>): void {
    const watched = this.watchedType(type.typeUrl);
    watched.apply = apply as ApplyHook<unknown>;
  }

  /**
   * Subscribes to more names of a type, or to all of them (WILDCARD, for LDS and CDS). Starts the
   * stream on the first subscription; on a live stream the server hears of the change at once.
   */
  subscribe(typeUrl: string, names: readonly string[] | Wildcard): void {
    this.assertOpen();
    const watched = this.watchedType(typeUrl);
    const added: string[] = [];
    if (names === WILDCARD) {
      if (!watched.wildcard) added.push(WILDCARD);
      watched.wildcard = true;
    } else {
      for (const name of names) {
        if (name === WILDCARD) throw new XdsError('TRELLIS_XDS_INVALID_SUBSCRIPTION', `"${WILDCARD}" is not a resource name; subscribe with WILDCARD instead`);
        if (!watched.names.has(name)) added.push(name);
        watched.names.add(name);
      }
    }
    if (added.length > 0) this.subscriptionChanged(watched, added, []);
  }

  /** Drops names (or the wildcard) from a subscription; resources no longer wanted are forgotten and reported removed. */
  unsubscribe(typeUrl: string, names: readonly string[] | Wildcard): void {
    this.assertOpen();
    const watched = this.watchedType(typeUrl);
    const removed: string[] = [];
    if (names === WILDCARD) {
      if (watched.wildcard) removed.push(WILDCARD);
      watched.wildcard = false;
    } else {
      for (const name of names) if (watched.names.delete(name)) removed.push(name);
    }
    if (removed.length === 0) return;
    const forgotten = [...watched.resources.keys()].filter((name) => !watched.wants(name));
    for (const name of forgotten) watched.resources.delete(name);
    if (forgotten.length > 0 && watched.apply) {
      const update: ResourceUpdate<unknown> = { typeUrl, versionInfo: watched.versionInfo, changed: new Map(), removed: forgotten };
      // A local removal has no one to NACK to; the hook's refusal changes nothing.
      void Promise.resolve().then(() => watched.apply?.(update)).catch(() => undefined);
    }
    this.subscriptionChanged(watched, [], removed);
  }

  /** The accepted resources of a type, by name; kept while disconnected. */
  resources<T>(type: XdsResourceType<T>): ReadonlyMap<string, T>;
  resources(typeUrl: string): ReadonlyMap<string, unknown>;
  resources(typeOrUrl: string | XdsResourceType<unknown>): ReadonlyMap<string, unknown> {
    const watched = this.watched.get(typeof typeOrUrl === 'string' ? typeOrUrl : typeOrUrl.typeUrl);
    const result = new Map<string, unknown>();
    for (const [name, held] of watched?.resources ?? []) result.set(name, held.value);
    return result;
  }

  /** For admin and debug pages (config_dump, CSDS-like views). */
  status(): XdsClientStatus {
    const types: XdsTypeStatus[] = [];
    for (const watched of this.orderedTypes()) {
      types.push({
        typeUrl: watched.typeUrl,
        shortName: shortName(watched.typeUrl),
        wildcard: watched.wildcard,
        subscribedNames: watched.sortedNames(),
        versionInfo: watched.versionInfo,
        nonce: watched.nonce,
        resourceVersions: watched.heldVersions(),
        lastAckTime: watched.lastAckTime,
        lastNack: watched.lastNack,
      });
    }
    return {
      server: this.server,
      mode: this.mode,
      connected: this.stream?.connected ?? false,
      closed: this.closed,
      reconnectAttempts: this.consecutiveFailures,
      lastDisconnect: this.lastDisconnect,
      types,
    };
  }

  get connected(): boolean {
    return this.stream?.connected ?? false;
  }

  /** Ends the stream, the pending retry and the channel. Resources stay readable; nothing else happens. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    stream?.call.cancel();
    this.grpcClient.close();
  }

  private watchedType(typeUrl: string): WatchedType<unknown> {
    const watched = this.watched.get(typeUrl);
    if (!watched) throw new XdsError('TRELLIS_XDS_INVALID_SUBSCRIPTION', `no resource type is registered for ${typeUrl}; register() one first`);
    return watched;
  }

  private assertOpen(): void {
    if (this.closed) throw new XdsError('TRELLIS_XDS_STREAM_CLOSED', 'the xDS client is closed');
  }

  /** Envoy's order (CDS, EDS, LDS, RDS, SDS), then other types in registration order. */
  private orderedTypes(): WatchedType<unknown>[] {
    const rank = (url: string): number => {
      const index = (RESOURCE_TYPE_URLS as readonly string[]).indexOf(url);
      return index === -1 ? RESOURCE_TYPE_URLS.length : index;
    };
    return [...this.watched.values()].sort((a, b) => rank(a.typeUrl) - rank(b.typeUrl));
  }

  private subscriptionChanged(watched: WatchedType<unknown>, added: readonly string[], removed: readonly string[]): void {
    if (!this.stream) {
      // Nothing to tell yet: the next stream's first request carries the whole subscription.
      if (!this.retryTimer) this.connect();
      return;
    }
    if (!watched.requestedOnStream) {
      if (watched.subscribed) this.sendInitial(this.stream, watched);
      return;
    }
    this.send(this.stream, this.protocol.subscriptionRequest(watched, added, removed));
  }

  private connect(): void {
    this.retryTimer = undefined;
    if (this.closed) return;
    const call = this.grpcClient.makeBidiStreamRequest<AdsRequest, AdsResponse>(this.protocol.method.path, this.protocol.method.requestSerialize as (r: AdsRequest) => Buffer, this.protocol.method.responseDeserialize);
    const stream: ActiveStream = { call, nodeSent: false, connected: false };
    this.stream = stream;
    for (const watched of this.watched.values()) {
      watched.requestedOnStream = false;
      watched.nonce = '';
    }
    call.on('metadata', () => this.markConnected(stream));
    call.on('data', (response: AdsResponse) => {
      this.markConnected(stream);
      // A response means the control plane works: the next failure starts from the base delay again (as Envoy).
      this.backoff.reset();
      this.consecutiveFailures = 0;
      this.processing = this.processing.then(() => this.handleResponse(stream, response)).catch(() => undefined);
    });
    // A failed call emits 'error' then 'status'; the listener keeps the error from being thrown, 'status' does the work.
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => this.streamEnded(stream, status.code, status.details));
    for (const watched of this.orderedTypes()) if (watched.subscribed) this.sendInitial(stream, watched);
  }

  private markConnected(stream: ActiveStream): void {
    if (stream.connected || this.stream !== stream) return;
    stream.connected = true;
    this.emit('connected');
  }

  private streamEnded(stream: ActiveStream, code: number, details: string): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    if (this.closed) return;
    const retryInMs = this.backoff.next();
    this.consecutiveFailures += 1;
    this.lastDisconnect = { code, details, retryInMs, time: new Date() };
    this.retryTimer = setTimeout(() => this.connect(), retryInMs);
    this.emit('disconnected', { code, details, retryInMs });
  }

  private sendInitial(stream: ActiveStream, watched: WatchedType<unknown>): void {
    watched.requestedOnStream = true;
    this.send(stream, this.protocol.initialRequest(watched));
  }

  private send(stream: ActiveStream, request: AdsRequest): void {
    if (this.stream !== stream) return;
    if (!stream.nodeSent) {
      // The node goes on the first request of each stream only (set_node_on_first_message_only).
      request.node = this.node;
      stream.nodeSent = true;
    }
    try {
      stream.call.write(request);
    } catch (err) {
      // A request that cannot be serialised is a bug here, not a reason to lose the stream silently.
      stream.call.cancel();
      this.streamEnded(stream, grpc.status.INTERNAL, `cannot send request: ${describeError(err)}`);
    }
  }

  private async handleResponse(stream: ActiveStream, response: AdsResponse): Promise<void> {
    if (this.closed) return;
    let processed: ProcessedResponse | undefined;
    try {
      processed = await this.protocol.processResponse(response, this.watched);
    } catch (err) {
      // Only a resource type's own code (a custom nameOf, say) can get here; refuse the response rather than stall the stream.
      const watched = this.watched.get(response.type_url ?? '');
      if (!watched) return;
      const versionInfo = 'version_info' in response ? response.version_info ?? '' : 'system_version_info' in response ? response.system_version_info ?? '' : '';
      const message = `${shortName(watched.typeUrl)} response: could not be processed: ${describeError(err)}`;
      processed = { watched, nonce: response.nonce ?? '', versionInfo, outcome: { nackMessage: message, changed: [], removed: [] } };
    }
    if (!processed) return;
    const { watched, nonce, versionInfo, outcome } = processed;
    const current = this.stream === stream;
    if (current) watched.nonce = nonce;
    if (outcome.nackMessage === undefined) {
      watched.versionInfo = versionInfo;
      watched.lastAckTime = new Date();
    } else {
      watched.lastNack = { message: outcome.nackMessage, time: new Date(), nonce, rejectedVersion: versionInfo };
    }
    // A response of a stream that has since ended is still applied, but is answered by nobody:
    // the next stream's first request carries the resulting state.
    if (current) this.send(stream, this.protocol.replyRequest(watched, nonce, outcome.nackMessage));
    const event: AckEvent = { typeUrl: watched.typeUrl, versionInfo: watched.versionInfo, nonce, changed: outcome.changed, removed: outcome.removed };
    if (outcome.nackMessage === undefined) this.emit('ack', event);
    else this.emit('nack', { ...event, message: outcome.nackMessage, rejectedVersion: versionInfo });
  }
}
