// Cache of forwarded DNS answers, each kept for its own TTL and handed out with its TTLs aged by the time it was held.
import { summarizeResponse, withId } from './dns-message.js';

interface Entry {
  readonly bytes: Buffer;
  readonly ttlOffsets: readonly number[];
  readonly storedAt: number;
  readonly expiresAt: number;
}

export interface ResponseCacheOptions {
  /** Most entries held; the oldest go first. Default 4096. */
  readonly maxEntries?: number;
  /** For tests: milliseconds since some epoch. */
  readonly now?: () => number;
}

/** Key of a question: names compare case-insensitively (RFC 4343). */
export function cacheKey(name: string, type: number, klass: number): string {
  return `${name.toLowerCase()}|${type}|${klass}`;
}

export class ResponseCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: ResponseCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 4096;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Keeps `response` if it may be cached (see summarizeResponse's cacheTtl); truncated and failed answers are not. */
  store(key: string, response: Buffer): void {
    let summary;
    try {
      summary = summarizeResponse(response);
    } catch {
      return;
    }
    if (summary.cacheTtl === undefined) return;
    const now = this.now();
    this.entries.delete(key);
    this.entries.set(key, { bytes: Buffer.from(response), ttlOffsets: summary.ttlOffsets, storedAt: now, expiresAt: now + summary.cacheTtl * 1000 });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The cached answer re-addressed to `id` with each TTL lowered by the seconds it was held, or undefined when absent or expired. */
  lookup(key: string, id: number): Buffer | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const now = this.now();
    if (now >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    const out = withId(entry.bytes, id);
    const aged = Math.floor((now - entry.storedAt) / 1000);
    if (aged > 0) for (const offset of entry.ttlOffsets) out.writeUInt32BE(Math.max(0, out.readUInt32BE(offset) - aged), offset);
    return out;
  }

  clear(): void {
    this.entries.clear();
  }
}
