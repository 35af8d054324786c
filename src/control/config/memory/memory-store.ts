// A ConfigStore held in memory and changed by calls (set, delete, replace): for tests and for embedding Trellis in a program.
import { ConfigValidationError } from '../../../common/errors.js';
import { describeProblems, type IstioResource, type Kind, type TypedResource } from '../../../api/index.js';
import { ChangeListeners } from '../change-listeners.js';
import { ResourceTable, sealResource } from '../resource-table.js';
import type { ConfigChangeHandler, ConfigEvent, ConfigProblem, ConfigStore } from '../store.js';

export interface MemoryConfigStoreOptions {
  /** Default `memory`. */
  name?: string;
}

export class MemoryConfigStore implements ConfigStore {
  readonly name: string;
  private readonly table = new ResourceTable();
  private readonly listeners: ChangeListeners<readonly ConfigEvent[]>;
  private batchDepth = 0;
  private pending: ConfigEvent[] = [];

  constructor(options: MemoryConfigStoreOptions = {}) {
    this.name = options.name ?? 'memory';
    this.listeners = new ChangeListeners(`config store ${this.name}`);
  }

  list<K extends Kind>(kind: K, namespace?: string): readonly TypedResource<K>[] {
    return this.table.list(kind, namespace);
  }

  get<K extends Kind>(kind: K, namespace: string, name: string): TypedResource<K> | undefined {
    return this.table.get(kind, namespace, name);
  }

  onChange(handler: ConfigChangeHandler): () => void {
    return this.listeners.add(handler);
  }

  /** Always empty: invalid resources are refused by `set` with an error instead. */
  problems(): readonly ConfigProblem[] {
    return [];
  }

  /**
   * Adds or replaces resources (copied; the caller keeps its objects). Validates them all first and throws
   * ConfigValidationError listing every problem, storing none of them, when any is invalid.
   */
  set(...resources: IstioResource[]): void {
    const details = resources.flatMap((r) => describeProblems({ ...r, origin: r.origin ?? { source: this.name } }));
    if (details.length > 0) throw new ConfigValidationError(details);
    this.batch(() => {
      for (const r of resources) this.record(this.table.put(sealResource(r, true)));
    });
  }

  /** Removes one resource; false when there was none. */
  delete(kind: Kind, namespace: string, name: string): boolean {
    const event = this.table.remove(kind, namespace, name);
    this.batch(() => this.record(event));
    return event !== undefined;
  }

  /** Makes the store hold exactly `resources`, as one batch of changes. Validates like `set`. */
  replace(resources: readonly IstioResource[]): void {
    const details = resources.flatMap((r) => describeProblems({ ...r, origin: r.origin ?? { source: this.name } }));
    if (details.length > 0) throw new ConfigValidationError(details);
    const next = new Map(resources.map((r) => {
      const sealed = sealResource(r, true);
      return [`${sealed.kind}/${sealed.metadata.namespace}/${sealed.metadata.name}`, sealed] as const;
    }));
    this.batch(() => {
      for (const e of this.table.replaceAll(next)) this.record(e);
    });
  }

  /** Runs `update` (which may call set/delete/replace) and notifies its changes as one batch when it returns. */
  batch(update: () => void): void {
    this.batchDepth++;
    try {
      update();
    } finally {
      if (--this.batchDepth === 0 && this.pending.length > 0) {
        const events = this.pending;
        this.pending = [];
        this.listeners.emit(events);
      }
    }
  }

  private record(event: ConfigEvent | undefined): void {
    if (event) this.pending.push(event);
  }
}
