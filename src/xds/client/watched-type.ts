// The client's state for one resource type: what it subscribes to, what it holds (last good versions), and where the stream stands.
import type { ApplyHook, XdsResourceType } from './resource-type.js';

/** A resource the client accepted, with the bytes it came as (to tell real changes from repeats). */
export interface HeldResource<T> {
  readonly value: T;
  /** Delta: the resource's own version; SotW: the version_info of the response that brought it. */
  readonly version: string;
  readonly bytes: Uint8Array;
}

export interface NackRecord {
  readonly message: string;
  readonly time: Date;
  readonly nonce: string;
  /** The version the server offered and the client refused (SotW version_info, Delta system_version_info). */
  readonly rejectedVersion: string;
}

export class WatchedType<T> {
  apply: ApplyHook<T> | undefined;
  wildcard = false;
  readonly names = new Set<string>();
  readonly resources = new Map<string, HeldResource<T>>();
  /** The last version the client accepted (and so ACKed); what SotW resends on reconnect. */
  versionInfo = '';
  /** The nonce of the last response on the current stream; reset when the stream ends. */
  nonce = '';
  lastNack: NackRecord | undefined;
  lastAckTime: Date | undefined;
  /** Whether this stream has already carried this type's first request. */
  requestedOnStream = false;

  constructor(public type: XdsResourceType<T>) {}

  get typeUrl(): string {
    return this.type.typeUrl;
  }

  /** Anything to ask the server for? */
  get subscribed(): boolean {
    return this.wildcard || this.names.size > 0;
  }

  /** Whether a resource of this name is wanted, so a response carrying it is kept. */
  wants(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  sortedNames(): string[] {
    return [...this.names].sort();
  }

  /** Resource versions for Delta's initial_resource_versions: every resource the client holds. */
  heldVersions(): Record<string, string> {
    const versions: Record<string, string> = {};
    for (const [name, held] of this.resources) versions[name] = held.version;
    return versions;
  }
}
