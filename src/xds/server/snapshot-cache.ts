// An in-memory ResourceSource: per node key and type URL, the resources a caller set, encoded once and versioned by content.
import { packAny, type Any } from '../codec.js';
import type { Node } from '../ads-service.js';
import { XdsError } from '../../common/errors.js';
import { messageNameOf, NAME_TABLE, RESOURCE_TYPE_URLS } from '../type-urls.js';
import type { CancelWatch, ResourceChangeListener, ResourceSet, ResourceSource, VersionedResource } from './resource-source.js';
import { contentVersion, setVersion } from './resource-version.js';

/** A resource as a plain object (.proto field names), packed into Any once when it is set. */
export interface ObjectResourceInput {
  readonly name: string;
  readonly resource: object;
}

/** A resource already packed into Any; `version` defaults to a hash of its bytes. */
export interface EncodedResourceInput {
  readonly name: string;
  readonly any: Any;
  readonly version?: string;
}

export type ResourceInput = ObjectResourceInput | EncodedResourceInput;

/** The resources of one type, optionally with the type version the caller wants clients to see. */
export type TypeInput = readonly ResourceInput[] | { readonly version?: string; readonly resources: readonly ResourceInput[] };

export interface SnapshotCacheOptions {
  /** Groups nodes that share configuration; the default keys each node by its id. */
  readonly nodeKey?: (node: Node) => string;
}

export interface ResourceUpdate {
  readonly upsert?: readonly ResourceInput[];
  readonly remove?: readonly string[];
  /** The type version after the update; default: a hash over the resulting (name, version) pairs. */
  readonly version?: string;
}

const EMPTY_SET: ResourceSet = { version: setVersion([]), resources: new Map() };

interface NodeEntry {
  /** False until the first snapshot or resources are set for the key: streams wait rather than receive empty sets. */
  ready: boolean;
  /** Set by clearSnapshot: the key is forgotten once its last watcher goes. */
  cleared: boolean;
  readonly types: Map<string, ResourceSet>;
  readonly listeners: Set<ResourceChangeListener>;
}

export class SnapshotCache implements ResourceSource {
  private readonly entries = new Map<string, NodeEntry>();
  private readonly keyOf: (node: Node) => string;

  constructor(options: SnapshotCacheOptions = {}) {
    this.keyOf = options.nodeKey ?? ((node) => node.id ?? '');
  }

  nodeKey(node: Node): string {
    return this.keyOf(node);
  }

  resources(nodeKey: string, typeUrl: string): ResourceSet | undefined {
    const entry = this.entries.get(nodeKey);
    if (!entry?.ready) return undefined;
    return entry.types.get(typeUrl) ?? EMPTY_SET;
  }

  watch(nodeKey: string, listener: ResourceChangeListener): CancelWatch {
    const entry = this.entry(nodeKey);
    // Each watch gets its own wrapper so one listener function can be registered twice and cancelled independently.
    const wrapper: ResourceChangeListener = (typeUrl) => listener(typeUrl);
    entry.listeners.add(wrapper);
    return () => {
      entry.listeners.delete(wrapper);
      this.dropIfUnused(nodeKey, entry);
    };
  }

  /** Number of active watches, for one node key or in total (debugging, and tests that check nothing leaks). */
  watcherCount(nodeKey?: string): number {
    if (nodeKey !== undefined) return this.entries.get(nodeKey)?.listeners.size ?? 0;
    let count = 0;
    for (const entry of this.entries.values()) count += entry.listeners.size;
    return count;
  }

  /** Replaces every type of a node key; types not named become empty. */
  setSnapshot(nodeKey: string, snapshot: Readonly<Record<string, TypeInput>>): void {
    const entry = this.entry(nodeKey);
    // Build everything first so an invalid type leaves the previous snapshot untouched.
    const next = new Map<string, ResourceSet>();
    for (const [typeUrl, input] of Object.entries(snapshot)) next.set(typeUrl, buildSet(typeUrl, input));
    const wasReady = this.markReady(entry);
    const changed: string[] = [];
    for (const typeUrl of new Set([...entry.types.keys(), ...next.keys()])) {
      const set = next.get(typeUrl) ?? EMPTY_SET;
      if (this.replace(entry, typeUrl, set) || !wasReady) changed.push(typeUrl);
    }
    this.notify(nodeKey, entry, wasReady ? changed : withEveryType(changed));
  }

  /** Replaces the resources of one type of a node key. */
  setResources(nodeKey: string, typeUrl: string, resources: readonly ResourceInput[], version?: string): void {
    const entry = this.entry(nodeKey);
    const set = buildSet(typeUrl, version === undefined ? resources : { version, resources });
    const wasReady = this.markReady(entry);
    if (this.replace(entry, typeUrl, set) || !wasReady) this.notify(nodeKey, entry, wasReady ? [typeUrl] : withEveryType([typeUrl]));
  }

  /** Adds or replaces some resources of one type and removes others, keeping the rest. */
  updateResources(nodeKey: string, typeUrl: string, update: ResourceUpdate): void {
    const entry = this.entry(nodeKey);
    const current = entry.types.get(typeUrl) ?? EMPTY_SET;
    const merged = new Map(current.resources);
    for (const name of update.remove ?? []) merged.delete(name);
    for (const resource of buildResources(typeUrl, update.upsert ?? []).values()) merged.set(resource.name, resource);
    const set: ResourceSet = { version: update.version ?? versionOf(merged), resources: merged };
    const wasReady = this.markReady(entry);
    if (this.replace(entry, typeUrl, set) || !wasReady) this.notify(nodeKey, entry, wasReady ? [typeUrl] : withEveryType([typeUrl]));
  }

  /** Forgets every resource of a node key; watching streams see every type become empty. */
  clearSnapshot(nodeKey: string): void {
    const entry = this.entries.get(nodeKey);
    if (!entry) return;
    const changed = [...entry.types.keys()].filter((typeUrl) => this.replace(entry, typeUrl, EMPTY_SET));
    entry.types.clear();
    entry.cleared = true;
    this.notify(nodeKey, entry, changed);
    this.dropIfUnused(nodeKey, entry);
  }

  // Returns whether the entry was ready before; from now on its unset types read as empty.
  private markReady(entry: NodeEntry): boolean {
    const was = entry.ready;
    entry.ready = true;
    entry.cleared = false;
    return was;
  }

  private entry(nodeKey: string): NodeEntry {
    let entry = this.entries.get(nodeKey);
    if (!entry) {
      entry = { ready: false, cleared: false, types: new Map(), listeners: new Set() };
      this.entries.set(nodeKey, entry);
    }
    return entry;
  }

  // Returns whether the set differs from the current one in version or in any (name, version) pair.
  private replace(entry: NodeEntry, typeUrl: string, set: ResourceSet): boolean {
    const current = entry.types.get(typeUrl) ?? EMPTY_SET;
    const same = current.version === set.version && sameResources(current.resources, set.resources);
    if (set.resources.size === 0 && set.version === EMPTY_SET.version) entry.types.delete(typeUrl);
    else entry.types.set(typeUrl, set);
    return !same;
  }

  private notify(nodeKey: string, entry: NodeEntry, typeUrls: readonly string[]): void {
    // Copy: a listener may cancel its own or another watch while being notified.
    for (const typeUrl of typeUrls) for (const listener of [...entry.listeners]) listener(typeUrl);
    this.dropIfUnused(nodeKey, entry);
  }

  private dropIfUnused(nodeKey: string, entry: NodeEntry): void {
    // A ready entry is kept even when empty: "ready and empty" must not turn back into "not ready".
    // A cleared key is forgotten with its last watcher, so a later stream waits for a new snapshot.
    if (entry.listeners.size === 0 && (!entry.ready || entry.cleared) && this.entries.get(nodeKey) === entry) this.entries.delete(nodeKey);
  }
}

/** When a node key becomes ready every type may have become answerable, not only the ones that were set. */
function withEveryType(typeUrls: readonly string[]): string[] {
  return [...new Set([...typeUrls, ...RESOURCE_TYPE_URLS, NAME_TABLE])];
}

function buildSet(typeUrl: string, input: TypeInput): ResourceSet {
  const list = isResourceList(input) ? input : input.resources;
  const resources = buildResources(typeUrl, list);
  const version = (isResourceList(input) ? undefined : input.version) ?? versionOf(resources);
  return { version, resources };
}

function isResourceList(input: TypeInput): input is readonly ResourceInput[] {
  return Array.isArray(input);
}

function buildResources(typeUrl: string, inputs: readonly ResourceInput[]): Map<string, VersionedResource> {
  const resources = new Map<string, VersionedResource>();
  for (const input of inputs) {
    if (!input.name) throw new XdsError('TRELLIS_XDS_INVALID_SNAPSHOT', `a ${typeUrl} resource has an empty name`);
    if (resources.has(input.name)) {
      throw new XdsError('TRELLIS_XDS_INVALID_SNAPSHOT', `${typeUrl} resource ${input.name} is given twice; names must be unique per type`);
    }
    resources.set(input.name, encodeResource(typeUrl, input));
  }
  return resources;
}

function encodeResource(typeUrl: string, input: ResourceInput): VersionedResource {
  if ('any' in input) {
    if (input.any.type_url !== typeUrl) {
      throw new XdsError(
        'TRELLIS_XDS_INVALID_SNAPSHOT',
        `resource ${input.name}: Any has type ${input.any.type_url || '(empty)'}, expected ${typeUrl}`,
      );
    }
    // An input with its version already is a VersionedResource: kept as is, so a producer that hands the same input
    // to many node keys stores it once (the control plane shares one per distinct resource among its proxies).
    if (input.version !== undefined) return input as VersionedResource;
    const bytes = input.any.value ?? new Uint8Array();
    return { name: input.name, any: input.any, version: contentVersion(bytes) };
  }
  const any = packAny(messageNameOf(typeUrl), input.resource);
  return { name: input.name, any, version: contentVersion(any.value ?? new Uint8Array()) };
}

function versionOf(resources: ReadonlyMap<string, VersionedResource>): string {
  return setVersion([...resources.values()].map((r) => [r.name, r.version] as const));
}

function sameResources(a: ReadonlyMap<string, VersionedResource>, b: ReadonlyMap<string, VersionedResource>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, resource] of a) if (b.get(name)?.version !== resource.version) return false;
  return true;
}
