// Watches a directory tree with fs.watch and calls back once things settle (debounced), falling back to polling when watching fails.
import { watch, type FSWatcher } from 'node:fs';
import { basename } from 'node:path';

export interface DirectoryWatcherOptions {
  /** Quiet period after the last event before `onSettled` runs; editors write, rename and chmod in quick bursts. */
  debounceMs: number;
  /** Longest a stream of events can hold `onSettled` back. */
  maxDelayMs: number;
  /** Rescan on a timer as well (0: only when watching fails). */
  pollIntervalMs: number;
  /** Used when fs.watch cannot be set up (inotify limits, unsupported file system). */
  fallbackPollMs: number;
  onSettled: () => void;
  onWarning: (message: string) => void;
}

export type WatchMode = 'recursive' | 'per-directory' | 'poll';

// Recursive fs.watch is native on macOS and Windows; on Linux, Node 20 emulates it in JavaScript with known gaps,
// so there one non-recursive watcher per directory is kept in step with each scan instead.
const NATIVE_RECURSIVE = process.platform === 'darwin' || process.platform === 'win32';

export class DirectoryWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private debounceTimer: NodeJS.Timeout | undefined;
  private firstEventAt: number | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Directories whose watcher saw the directory itself removed or moved: the watcher is dead even if the path is back. */
  private readonly stale = new Set<string>();
  private closed = false;
  private failed = false;

  constructor(private readonly root: string, private readonly options: DirectoryWatcherOptions) {
    if (options.pollIntervalMs > 0) this.startPolling(options.pollIntervalMs);
  }

  get mode(): WatchMode {
    if (this.failed) return 'poll';
    return NATIVE_RECURSIVE ? 'recursive' : 'per-directory';
  }

  /** Makes the set of watched directories match `directories` (from the latest scan). */
  sync(directories: readonly string[]): void {
    if (this.closed || this.failed) return;
    const wanted = NATIVE_RECURSIVE ? [this.root] : directories;
    const keep = new Set(wanted);
    for (const [dir, watcher] of this.watchers) {
      if (!keep.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    let replaced = false;
    for (const dir of wanted) {
      if (this.watchers.has(dir)) {
        if (!this.stale.has(dir)) continue;
        this.watchers.get(dir)!.close();
        this.watchers.delete(dir);
        replaced = true;
      }
      this.stale.delete(dir);
      try {
        const name = basename(dir);
        const watcher = watch(dir, { recursive: NATIVE_RECURSIVE, persistent: false }, (event, filename) => {
          // inotify reports the watched directory's own deletion or move as a rename of its own name (or of nothing).
          if (event === 'rename' && (filename === null || filename === name)) this.stale.add(dir);
          this.changed();
        });
        watcher.on('error', () => {
          // Typically the directory was removed; forget it and let the next scan decide what is there.
          watcher.close();
          if (this.watchers.get(dir) === watcher) this.watchers.delete(dir);
          this.changed();
        });
        this.watchers.set(dir, watcher);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') {
          this.changed(); // gone between the scan and now
          continue;
        }
        this.fail(`cannot watch ${dir} (${err instanceof Error ? err.message : String(err)})`);
        return;
      }
    }
    // Whatever happened in a re-created directory between the scan and its new watcher: one more look catches it.
    if (replaced) this.changed();
  }

  /** Something changed: run `onSettled` after the quiet period (or the maximum delay). */
  changed(): void {
    if (this.closed) return;
    const now = Date.now();
    this.firstEventAt ??= now;
    clearTimeout(this.debounceTimer);
    const wait = Math.max(0, Math.min(this.options.debounceMs, this.firstEventAt + this.options.maxDelayMs - now));
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.firstEventAt = undefined;
      if (!this.closed) this.options.onSettled();
    }, wait);
  }

  /** Looks again after `delayMs` whatever happens meanwhile: for a root directory that is gone, so nothing watches it. */
  retry(delayMs: number): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.changed();
    }, delayMs);
    this.retryTimer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.debounceTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.pollTimer);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private fail(reason: string): void {
    this.failed = true;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.options.onWarning(`${reason}; polling every ${this.options.fallbackPollMs} ms instead`);
    if (!this.pollTimer) this.startPolling(this.options.fallbackPollMs);
  }

  private startPolling(intervalMs: number): void {
    this.pollTimer = setInterval(() => {
      if (!this.closed) this.options.onSettled();
    }, intervalMs);
    this.pollTimer.unref();
  }
}
