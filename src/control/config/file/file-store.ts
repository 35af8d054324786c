// A ConfigStore over a directory of YAML/JSON files, watched and reloaded live; refused resources keep their last valid version serving.
import { readFile } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { ConfigError } from '../../../common/errors.js';
import { resourceRef, type Kind, type TypedResource } from '../../../api/index.js';
import { ChangeListeners } from '../change-listeners.js';
import { ResourceTable, type StoredResource } from '../resource-table.js';
import type { ConfigChangeHandler, ConfigEvent, ConfigProblem, ConfigStore } from '../store.js';
import { scanConfigTree } from './config-files.js';
import { DirectoryWatcher, type WatchMode } from './directory-watcher.js';
import { evaluateFile, unreadableFile, type FileContribution } from './file-evaluation.js';

export interface FileConfigStoreOptions {
  /** The directory to load, recursively. */
  dir: string;
  /** Namespace for resources that name none (default `default`). */
  defaultNamespace?: string;
  /** Watch the directory and reload on change (default true). */
  watch?: boolean;
  /** Quiet period after a file-system event before reloading (default 75 ms). */
  debounceMs?: number;
  /** Longest a stream of events can hold a reload back (default 1000 ms). */
  maxDelayMs?: number;
  /** Also rescan on a timer (default 0: only when fs.watch cannot be used, then every 1000 ms). */
  pollIntervalMs?: number;
  /** How files are read; tests use it to delete a file while it is being read. Default fs.readFile as UTF-8. */
  readFile?: (path: string) => Promise<string>;
  /** Where warnings (watching failed) go; default console.warn. */
  onWarning?: (message: string) => void;
}

/** The outcome of one reload. */
export interface ReloadResult {
  /** Counts reloads from 1. */
  generation: number;
  events: readonly ConfigEvent[];
  problems: readonly ConfigProblem[];
  files: number;
}

export class FileConfigStore implements ConfigStore {
  readonly name: string;
  readonly dir: string;
  private readonly table = new ResourceTable();
  private readonly listeners: ChangeListeners<readonly ConfigEvent[]>;
  private readonly reloadListeners: ChangeListeners<ReloadResult>;
  private readonly defaultNamespace: string;
  private readonly read: (path: string) => Promise<string>;
  private readonly options: FileConfigStoreOptions;
  private contributions = new Map<string, FileContribution>();
  private currentProblems: readonly ConfigProblem[] = [];
  private watcher: DirectoryWatcher | undefined;
  private generation = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private queued: Promise<ReloadResult> | undefined;
  private started = false;
  private closed = false;

  constructor(options: FileConfigStoreOptions) {
    this.options = options;
    this.dir = resolve(options.dir);
    this.name = `file:${this.dir}`;
    this.defaultNamespace = options.defaultNamespace ?? 'default';
    this.read = options.readFile ?? ((path) => readFile(path, 'utf8'));
    this.listeners = new ChangeListeners(`config store ${this.name}`);
    this.reloadListeners = new ChangeListeners(`config store ${this.name}`);
  }

  /** Loads the directory, then watches it. Throws ConfigError (TRELLIS_CONFIG_PARSE) when the directory cannot be read. */
  async start(): Promise<ReloadResult> {
    if (this.started) throw new ConfigError('TRELLIS_CONFIG_PARSE', `${this.name}: already started`);
    this.started = true;
    try {
      await scanConfigTree(this.dir);
    } catch (err) {
      throw new ConfigError('TRELLIS_CONFIG_PARSE', `cannot read config directory ${this.dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (this.options.watch ?? true) {
      // Watch before the first scan, so nothing written during it goes unnoticed.
      this.watcher = new DirectoryWatcher(this.dir, {
        debounceMs: this.options.debounceMs ?? 75,
        maxDelayMs: this.options.maxDelayMs ?? 1000,
        pollIntervalMs: this.options.pollIntervalMs ?? 0,
        fallbackPollMs: 1000,
        onSettled: () => void this.reload(),
        onWarning: this.options.onWarning ?? ((m) => console.warn(`${this.name}: ${m}`)),
      });
      this.watcher.sync([this.dir]);
    }
    return this.reload();
  }

  /** How the directory is watched, or undefined when it is not. */
  get watchMode(): WatchMode | undefined {
    return this.watcher?.mode;
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

  /** Called after every reload, changed or not (tests wait on it; status pages show its problems). */
  onReload(handler: (result: ReloadResult) => void): () => void {
    return this.reloadListeners.add(handler);
  }

  problems(): readonly ConfigProblem[] {
    return this.currentProblems;
  }

  /**
   * Rescans the directory and applies what changed as one batch. Reloads never overlap: a call made during one gets
   * the next, and calls made before that next one starts share it.
   */
  reload(): Promise<ReloadResult> {
    if (this.queued) return this.queued;
    const next = this.chain.then(() => {
      this.queued = undefined;
      return this.reloadOnce();
    });
    this.queued = next;
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    await this.chain;
  }

  private async reloadOnce(): Promise<ReloadResult> {
    if (this.closed) return { generation: this.generation, events: [], problems: this.currentProblems, files: this.contributions.size };
    const generation = ++this.generation;
    let tree;
    try {
      tree = await scanConfigTree(this.dir);
    } catch (err) {
      // The whole directory gone (or unreadable) is more likely an accident or a swap in progress than a wish to
      // delete every resource: keep serving, say so, and look again on the next event.
      const problems: ConfigProblem[] = [{
        code: 'TRELLIS_CONFIG_PARSE', source: this.dir, keptLastValid: true,
        message: `cannot read config directory: ${err instanceof Error ? err.message : String(err)}`,
      }];
      this.currentProblems = problems;
      this.watcher?.retry(this.options.debounceMs !== undefined ? Math.max(250, this.options.debounceMs * 5) : 1000);
      const result = { generation, events: [], problems, files: this.contributions.size };
      this.reloadListeners.emit(result);
      return result;
    }
    this.watcher?.sync(tree.directories);

    const served = this.table.entries();
    const texts = await Promise.all(tree.files.map((file) => this.readText(file)));
    const contributions = new Map<string, FileContribution>();
    let vanished = false;
    tree.files.forEach((file, i) => {
      const read = texts[i]!;
      const previous = this.contributions.get(file);
      const source = this.displayPath(file);
      if (read.gone) {
        vanished = true; // deleted while being read: its resources go, and a rescan confirms what is there now
        return;
      }
      if (read.error !== undefined) contributions.set(file, unreadableFile(source, read.error, previous, served));
      else if (previous && previous.text === read.text) contributions.set(file, previous);
      else contributions.set(file, evaluateFile(read.text!, { source, defaultNamespace: this.defaultNamespace, served, previous }));
    });
    this.contributions = contributions;

    const { resources, conflicts } = this.merge(contributions, served);
    const events = this.table.replaceAll(resources);
    this.currentProblems = [...[...contributions.values()].flatMap((c) => c.problems), ...conflicts];
    const result: ReloadResult = { generation, events, problems: this.currentProblems, files: contributions.size };
    if (vanished) this.watcher?.changed();
    if (events.length > 0) this.listeners.emit(events);
    this.reloadListeners.emit(result);
    return result;
  }

  /** First definition by file path wins; kept last-valid versions fill in only for resources no file defines validly. */
  private merge(contributions: ReadonlyMap<string, FileContribution>, served: ReadonlyMap<string, StoredResource>): { resources: Map<string, StoredResource>; conflicts: ConfigProblem[] } {
    const resources = new Map<string, StoredResource>();
    const owner = new Map<string, string>();
    const conflicts: ConfigProblem[] = [];
    for (const [file, contribution] of contributions) {
      for (const [key, resource] of contribution.defined) {
        const first = owner.get(key);
        if (first === undefined) {
          owner.set(key, file);
          resources.set(key, resource);
        } else {
          conflicts.push({
            code: 'TRELLIS_CONFIG_CONFLICT', source: this.displayPath(file), resource: resourceRef(resource),
            ...(resource.origin?.document !== undefined ? { document: resource.origin.document } : {}),
            message: `also defined in ${this.displayPath(first)}, which wins (the first file by path); this definition is ignored`,
          });
        }
      }
    }
    for (const contribution of contributions.values()) {
      for (const key of contribution.kept) {
        const last = served.get(key);
        if (last && !resources.has(key)) resources.set(key, last);
      }
    }
    return { resources, conflicts };
  }

  private async readText(file: string): Promise<{ text?: string; error?: string; gone?: boolean }> {
    try {
      return { text: await this.read(file) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { gone: true };
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Paths in messages are shown as given: under the directory the user named. */
  private displayPath(file: string): string {
    const rel = relative(this.dir, file);
    return rel.startsWith('..') ? file : `${this.options.dir.replace(/[\\/]+$/, '')}${sep}${rel}`;
  }
}
