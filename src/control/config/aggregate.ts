// Several ConfigStores seen as one (e.g. a file directory plus programmatic overrides): the first store holding a resource wins.
import { KIND_GROUPS, type Kind, type TypedResource } from '../../api/index.js';
import { ChangeListeners } from './change-listeners.js';
import type { ConfigChangeHandler, ConfigEvent, ConfigProblem, ConfigStore } from './store.js';

const KINDS = Object.keys(KIND_GROUPS) as Kind[];

export class AggregateConfigStore implements ConfigStore {
  readonly name: string;
  private readonly stores: readonly ConfigStore[];
  private readonly listeners: ChangeListeners<readonly ConfigEvent[]>;
  /** The resourceVersion served for each `Kind/namespace/name`, to turn child events into the aggregate's own. */
  private readonly versions = new Map<string, string>();
  private readonly unsubscribe: (() => void)[];

  /** `stores` in precedence order: where two hold the same kind/namespace/name, the earlier one's version is served. */
  constructor(stores: readonly ConfigStore[], options: { name?: string } = {}) {
    this.stores = [...stores];
    this.name = options.name ?? `aggregate(${stores.map((s) => s.name).join(', ')})`;
    this.listeners = new ChangeListeners(`config store ${this.name}`);
    for (const kind of KINDS) {
      for (const store of this.stores) {
        for (const r of store.list(kind)) {
          const key = `${kind}/${r.metadata.namespace}/${r.metadata.name}`;
          if (!this.versions.has(key)) this.versions.set(key, r.metadata.resourceVersion ?? '');
        }
      }
    }
    this.unsubscribe = this.stores.map((store) => store.onChange((events) => this.childChanged(events)));
  }

  list<K extends Kind>(kind: K, namespace?: string): readonly TypedResource<K>[] {
    if (this.stores.length === 1) return this.stores[0]!.list(kind, namespace);
    const seen = new Set<string>();
    const out: TypedResource<K>[] = [];
    for (const store of this.stores) {
      for (const r of store.list(kind, namespace)) {
        const id = `${r.metadata.namespace}/${r.metadata.name}`;
        if (seen.has(id)) continue;
        seen.add(id);
        out.push(r);
      }
    }
    return out.sort((a, b) => compare(a.metadata.namespace, b.metadata.namespace) || compare(a.metadata.name, b.metadata.name));
  }

  get<K extends Kind>(kind: K, namespace: string, name: string): TypedResource<K> | undefined {
    for (const store of this.stores) {
      const r = store.get(kind, namespace, name);
      if (r) return r;
    }
    return undefined;
  }

  onChange(handler: ConfigChangeHandler): () => void {
    return this.listeners.add(handler);
  }

  problems(): readonly ConfigProblem[] {
    return this.stores.flatMap((s) => s.problems());
  }

  /** Stops following the child stores (they stay open: whoever made them closes them). */
  close(): void {
    for (const off of this.unsubscribe) off();
  }

  private childChanged(events: readonly ConfigEvent[]): void {
    const out: ConfigEvent[] = [];
    for (const e of events) {
      const key = `${e.kind}/${e.namespace}/${e.name}`;
      const before = this.versions.get(key);
      const now = this.get(e.kind, e.namespace, e.name);
      if (!now) {
        if (before === undefined) continue;
        this.versions.delete(key);
        out.push({ type: 'delete', kind: e.kind, namespace: e.namespace, name: e.name });
        continue;
      }
      const version = now.metadata.resourceVersion ?? '';
      if (before === version) continue; // shadowed by an earlier store, or the same content
      this.versions.set(key, version);
      out.push({ type: before === undefined ? 'add' : 'update', kind: e.kind, namespace: e.namespace, name: e.name, resourceVersion: version });
    }
    if (out.length > 0) this.listeners.emit(out);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
