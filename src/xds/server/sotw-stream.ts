// The state-of-the-world side of one ADS stream (StreamAggregatedResources): per type, subscription, version/nonce, ACK/NACK.
//
// Choices where the xDS spec leaves room:
// - A request is "current" when its response_nonce equals the last nonce sent for its type (both empty
//   before the first response). Only current requests count as ACK or NACK.
// - A stale request is ignored for ACK/NACK, but a change of resource_names it carries is applied and
//   answered. The spec says not to answer stale requests, but this server pushes without waiting for
//   ACKs, and then ignoring names on stale requests can starve a subscription forever (envoyproxy/envoy#10363);
//   requests arrive in order, so the latest one always holds the client's current names.
// - A NACK with unchanged names gets no response: the server resends only when the visible resources
//   change, so a rejected version is never sent back in a loop.
// - The first request of a type that carries version_info equal to the current version of a wildcard
//   subscription (a reconnect) is not answered: the client already runs exactly this set. Named
//   subscriptions always get a first response, since the client may have had other names before.
// - Any subscription change is answered, even when the visible resources did not change.
// - Nothing is answered while the source has no resources for the node yet (see ResourceSource.resources).
import type { DiscoveryRequest, DiscoveryResponse } from '../ads-service.js';
import { AdsStream } from './ads-stream.js';
import type { VersionedResource } from './resource-source.js';
import { TypeAccounting, typeStatus, type TypeStatus } from './stream-status.js';
import { Subscription } from './subscription.js';

interface SotwTypeState {
  readonly subscription: Subscription;
  readonly accounting: TypeAccounting;
  /** Name → version of the resources in the last response, to tell whether a change is visible to this stream. */
  sent: ReadonlyMap<string, string> | undefined;
  /** Answer even if the visible resources are unchanged (first request, subscription change). */
  mustRespond: boolean;
}

export class SotwStream extends AdsStream<DiscoveryRequest, DiscoveryResponse> {
  readonly mode = 'sotw' as const;
  private readonly types = new Map<string, SotwTypeState>();

  protected handle(typeUrl: string, request: DiscoveryRequest): void {
    let state = this.types.get(typeUrl);
    const first = state === undefined;
    if (!state) {
      state = { subscription: new Subscription(typeUrl), accounting: new TypeAccounting(), sent: undefined, mustRespond: false };
      this.types.set(typeUrl, state);
    }
    const nonce = request.response_nonce ?? '';
    const { accounting } = state;
    if (!first && accounting.lastSentNonce !== '' && accounting.isCurrent(nonce)) {
      if (request.error_detail) {
        const nack = { nonce, version: request.version_info ?? '', message: request.error_detail.message ?? '', at: new Date() };
        accounting.recordNack(nack);
        this.context.emit('nack', { ...this.eventBase(), typeUrl, version: nack.version, nonce, message: nack.message });
      } else {
        accounting.recordAck(accounting.lastSentVersion);
        this.context.emit('ack', { ...this.eventBase(), typeUrl, version: accounting.lastSentVersion, nonce });
      }
    } else if (!first && nonce !== '' && !accounting.isCurrent(nonce)) {
      this.context.emit('expired-nonce', { ...this.eventBase(), typeUrl, nonce });
    }
    const changed = state.subscription.applySotw(request.resource_names ?? [], first);
    if (first) {
      const set = this.context.source.resources(this.nodeKey, typeUrl);
      const clientVersion = request.version_info ?? '';
      if (set && clientVersion !== '' && clientVersion === set.version && state.subscription.wildcard) {
        state.sent = versionsOf(state.subscription.visible(set));
        accounting.lastSentVersion = clientVersion;
        accounting.lastAckedVersion = clientVersion;
        return;
      }
    }
    if (first || changed) {
      state.mustRespond = true;
      this.scheduler.markDirty(typeUrl);
    }
  }

  protected resourcesChanged(typeUrl: string): void {
    // Only types this stream asked for; buildResponse then drops changes this stream cannot see.
    if (this.types.has(typeUrl)) this.scheduler.markDirty(typeUrl);
  }

  protected buildResponse(typeUrl: string): DiscoveryResponse | undefined {
    const state = this.types.get(typeUrl);
    if (!state) return undefined;
    const set = this.context.source.resources(this.nodeKey, typeUrl);
    // Not ready: answer once the source has this node's resources (mustRespond stays set).
    if (!set) return undefined;
    const visible = state.subscription.visible(set);
    if (!state.mustRespond && state.sent !== undefined && sameVersions(state.sent, visible)) return undefined;
    state.mustRespond = false;
    state.sent = versionsOf(visible);
    const nonce = this.nonces.next();
    state.accounting.recordSent(set.version, nonce);
    const resources = [...visible.values()].map((resource) => resource.any);
    this.context.emit('sent', { ...this.eventBase(), typeUrl, version: set.version, nonce, resourceCount: resources.length, removedCount: 0 });
    return { version_info: set.version, resources, type_url: typeUrl, nonce };
  }

  protected typeStatuses(): Record<string, TypeStatus> {
    const out: Record<string, TypeStatus> = {};
    for (const [typeUrl, state] of this.types) out[typeUrl] = typeStatus(state.subscription.describe(), state.accounting);
    return out;
  }
}

function versionsOf(resources: ReadonlyMap<string, VersionedResource>): Map<string, string> {
  const versions = new Map<string, string>();
  for (const [name, resource] of resources) versions.set(name, resource.version);
  return versions;
}

function sameVersions(sent: ReadonlyMap<string, string>, visible: ReadonlyMap<string, VersionedResource>): boolean {
  if (sent.size !== visible.size) return false;
  for (const [name, resource] of visible) if (sent.get(name) !== resource.version) return false;
  return true;
}
