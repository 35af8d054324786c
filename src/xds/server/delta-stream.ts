// The incremental side of one ADS stream (DeltaAggregatedResources): per type, subscription, what the client has, ACK/NACK.
//
// Choices where the xDS spec leaves room:
// - Subscription changes are applied whatever the response_nonce (spec: "the server must honor changes
//   to the subscription state even if the nonce is stale"); only a request answering the latest nonce
//   of its type counts as ACK or NACK.
// - After a NACK the server keeps what it believes the client was sent and resends a resource only when
//   its version changes, so a rejected version is never sent back in a loop.
// - The first request of each type always gets a response, possibly empty: it tells the client (and
//   Envoy's initialisation) that the server has seen the subscription.
// - Nothing is answered while the source has no resources for the node yet (see ResourceSource.resources).
// - A subscribed name that does not exist is reported once in removed_resources; it is reported again
//   only after it existed in between, or when the client subscribes to it again.
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource } from '../ads-service.js';
import { AdsStream } from './ads-stream.js';
import { TypeAccounting, typeStatus, type TypeStatus } from './stream-status.js';
import { Subscription } from './subscription.js';

interface DeltaTypeState {
  readonly subscription: Subscription;
  readonly accounting: TypeAccounting;
  /** Name → version of every resource the client has (sent by us, or declared in initial_resource_versions). */
  readonly clientVersions: Map<string, string>;
  /** Subscribed names already reported as not existing; a subset of the explicit names, so bounded by them. */
  readonly reportedAbsent: Set<string>;
  mustRespond: boolean;
}

export class DeltaStream extends AdsStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  readonly mode = 'delta' as const;
  private readonly types = new Map<string, DeltaTypeState>();

  protected handle(typeUrl: string, request: DeltaDiscoveryRequest): void {
    let state = this.types.get(typeUrl);
    const first = state === undefined;
    if (!state) {
      state = { subscription: new Subscription(typeUrl), accounting: new TypeAccounting(), clientVersions: new Map(), reportedAbsent: new Set(), mustRespond: false };
      this.types.set(typeUrl, state);
    }
    const nonce = request.response_nonce ?? '';
    const { accounting } = state;
    if (nonce !== '' && accounting.isCurrent(nonce)) {
      if (request.error_detail) {
        // Delta requests carry no version: the client keeps running what it last ACKed.
        const nack = { nonce, version: accounting.lastAckedVersion, message: request.error_detail.message ?? '', at: new Date() };
        accounting.recordNack(nack);
        this.context.emit('nack', { ...this.eventBase(), typeUrl, version: nack.version, nonce, message: nack.message });
      } else {
        accounting.recordAck(accounting.lastSentVersion);
        this.context.emit('ack', { ...this.eventBase(), typeUrl, version: accounting.lastSentVersion, nonce });
      }
    } else if (nonce !== '' && !accounting.isCurrent(nonce)) {
      this.context.emit('expired-nonce', { ...this.eventBase(), typeUrl, nonce });
    }
    const subscribe = request.resource_names_subscribe ?? [];
    const unsubscribe = request.resource_names_unsubscribe ?? [];
    const added = state.subscription.applyDelta(subscribe, unsubscribe, first);
    // Newly subscribed names must be sent even if the client seems to have them (spec: it may have forgotten them).
    for (const name of added) {
      state.clientVersions.delete(name);
      state.reportedAbsent.delete(name);
    }
    // Unsubscribed resources are dropped by the client itself; forget them so a later subscribe resends them.
    for (const name of [...state.clientVersions.keys()]) if (!state.subscription.wants(name)) state.clientVersions.delete(name);
    for (const name of [...state.reportedAbsent]) if (!state.subscription.names.has(name)) state.reportedAbsent.delete(name);
    if (first) {
      // Reconnect: the client tells what it already has, so unchanged resources are not sent again.
      for (const [name, version] of Object.entries(request.initial_resource_versions ?? {})) {
        if (state.subscription.wants(name)) state.clientVersions.set(name, version);
      }
      state.mustRespond = true;
    }
    if (first || subscribe.length > 0) this.scheduler.markDirty(typeUrl);
  }

  protected resourcesChanged(typeUrl: string): void {
    if (this.types.has(typeUrl)) this.scheduler.markDirty(typeUrl);
  }

  protected buildResponse(typeUrl: string): DeltaDiscoveryResponse | undefined {
    const state = this.types.get(typeUrl);
    if (!state) return undefined;
    const { subscription, clientVersions, reportedAbsent } = state;
    const set = this.context.source.resources(this.nodeKey, typeUrl);
    // Not ready: answer once the source has this node's resources (mustRespond stays set).
    if (!set) return undefined;
    const resources: Resource[] = [];
    const removed: string[] = [];
    const candidates = subscription.wildcard ? set.resources.values() : [...subscription.names].flatMap((name) => set.resources.get(name) ?? []);
    for (const resource of candidates) {
      if (clientVersions.get(resource.name) === resource.version) continue;
      resources.push({ name: resource.name, version: resource.version, resource: resource.any });
      clientVersions.set(resource.name, resource.version);
      reportedAbsent.delete(resource.name);
    }
    for (const name of [...clientVersions.keys()]) {
      if (set.resources.has(name)) continue;
      removed.push(name);
      clientVersions.delete(name);
      if (subscription.names.has(name)) reportedAbsent.add(name);
    }
    for (const name of subscription.names) {
      if (set.resources.has(name) || reportedAbsent.has(name)) continue;
      removed.push(name);
      reportedAbsent.add(name);
    }
    if (resources.length === 0 && removed.length === 0 && !state.mustRespond) return undefined;
    state.mustRespond = false;
    const nonce = this.nonces.next();
    state.accounting.recordSent(set.version, nonce);
    this.context.emit('sent', { ...this.eventBase(), typeUrl, version: set.version, nonce, resourceCount: resources.length, removedCount: removed.length });
    return { system_version_info: set.version, resources, removed_resources: removed, type_url: typeUrl, nonce };
  }

  protected typeStatuses(): Record<string, TypeStatus> {
    const out: Record<string, TypeStatus> = {};
    for (const [typeUrl, state] of this.types) out[typeUrl] = typeStatus(state.subscription.describe(), state.accounting);
    return out;
  }
}
