// The resources a store serves, indexed by kind then namespace/name, with sorted lists cached and changes computed by resourceVersion.
import { resourceKey, type IstioResource, type Kind, type TypedResource } from '../../api/index.js';
import { contentVersion, deepFreeze } from './resource-version.js';
import type { ConfigEvent } from './store.js';

/** A validated resource as a store holds it: resourceVersion set, frozen. */
export type StoredResource = TypedResource;

/**
 * Stamps a validated resource with its content version and freezes it. `clone` copies it first, for resources a
 * caller still holds (the memory store); the file store's resources are fresh from the parser.
 */
export function sealResource(resource: IstioResource, clone: boolean): StoredResource {
  const copy = clone ? structuredClone(resource) : resource;
  copy.metadata = { ...copy.metadata, resourceVersion: contentVersion(copy) };
  return deepFreeze(copy) as StoredResource;
}

export class ResourceTable {
  private readonly byKind = new Map<Kind, Map<string, StoredResource>>();
  private readonly sorted = new Map<Kind, readonly StoredResource[]>();

  list<K extends Kind>(kind: K, namespace?: string): readonly TypedResource<K>[] {
    let all = this.sorted.get(kind);
    if (!all) {
      all = [...(this.byKind.get(kind)?.values() ?? [])].sort(compareResources);
      this.sorted.set(kind, all);
    }
    const typed = all as readonly TypedResource<K>[];
    return namespace === undefined ? typed : typed.filter((r) => r.metadata.namespace === namespace);
  }

  get<K extends Kind>(kind: K, namespace: string, name: string): TypedResource<K> | undefined {
    return this.byKind.get(kind)?.get(`${namespace}/${name}`) as TypedResource<K> | undefined;
  }

  /** Every stored resource keyed by `Kind/namespace/name`. */
  entries(): Map<string, StoredResource> {
    const out = new Map<string, StoredResource>();
    for (const map of this.byKind.values()) for (const r of map.values()) out.set(resourceKey(r), r);
    return out;
  }

  /** Stores `resource`, returning the event it causes (none when its content is unchanged). */
  put(resource: StoredResource): ConfigEvent | undefined {
    const { kind } = resource;
    const { namespace, name, resourceVersion } = resource.metadata;
    let map = this.byKind.get(kind);
    if (!map) this.byKind.set(kind, (map = new Map()));
    const id = `${namespace}/${name}`;
    const previous = map.get(id);
    map.set(id, resource);
    // The stored object changes even when its content does not (its origin may have moved), so the list cache goes.
    this.sorted.delete(kind);
    if (previous?.metadata.resourceVersion === resourceVersion) return undefined;
    return { type: previous ? 'update' : 'add', kind, namespace, name, ...(resourceVersion ? { resourceVersion } : {}) };
  }

  remove(kind: Kind, namespace: string, name: string): ConfigEvent | undefined {
    const map = this.byKind.get(kind);
    if (!map?.delete(`${namespace}/${name}`)) return undefined;
    this.sorted.delete(kind);
    return { type: 'delete', kind, namespace, name };
  }

  /** Makes the table hold exactly `next` (keyed by `Kind/namespace/name`), returning the events that takes. */
  replaceAll(next: ReadonlyMap<string, StoredResource>): ConfigEvent[] {
    const events: ConfigEvent[] = [];
    for (const [kind, map] of this.byKind) {
      for (const r of [...map.values()]) {
        if (!next.has(resourceKey(r))) events.push(this.remove(kind, r.metadata.namespace, r.metadata.name)!);
      }
    }
    for (const r of next.values()) {
      const current = this.get(r.kind, r.metadata.namespace, r.metadata.name);
      if (current === r) continue;
      const event = this.put(r);
      if (event) events.push(event);
    }
    return events;
  }
}

function compareResources(a: IstioResource, b: IstioResource): number {
  const x = a.metadata.namespace, y = b.metadata.namespace;
  if (x !== y) return x < y ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}
