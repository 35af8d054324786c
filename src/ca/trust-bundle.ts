// The roots workloads must trust: the current root(s) first, then roots replaced by a rotation, each until its overlap ends.
import { X509Certificate as NodeX509 } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describeError } from '../common/errors.js';
import { writeFileAtomic } from './ca-material.js';

export interface RetiredRoot {
  readonly pem: string;
  /** Epoch ms after which the root is no longer trusted. */
  readonly trustedUntil: number;
}

// Roots are few and change rarely, while pems() runs for every signed certificate: parse each PEM once.
const fingerprints = new Map<string, string>();

/** SHA-256 fingerprint of a PEM certificate (memoized). */
export function fingerprint(pem: string): string {
  let fp = fingerprints.get(pem);
  if (fp === undefined) {
    fp = new NodeX509(pem).fingerprint256;
    if (fingerprints.size > 256) fingerprints.clear();
    fingerprints.set(pem, fp);
  }
  return fp;
}

export class TrustBundle {
  private current: string[] = [];
  private retired: RetiredRoot[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Sets the roots in use; those that were current and are not any more stay trusted until `now + overlapMs`. */
  setCurrent(roots: readonly string[], overlapMs: number): void {
    const keep = new Set(roots.map(fingerprint));
    const until = this.now() + overlapMs;
    for (const old of this.current) if (!keep.has(fingerprint(old)) && overlapMs > 0) this.retired.push({ pem: old, trustedUntil: until });
    this.retired = this.retired.filter((r) => !keep.has(fingerprint(r.pem)));
    this.current = [...roots];
  }

  /** Adds roots retired earlier (read back after a restart); those already past their overlap are ignored. */
  restoreRetired(roots: readonly RetiredRoot[]): void {
    const current = new Set(this.current.map(fingerprint));
    for (const r of roots) if (!current.has(fingerprint(r.pem)) && r.trustedUntil > this.now()) this.retired.push(r);
  }

  /** Drops retired roots whose overlap is over; true when something was dropped. */
  prune(): boolean {
    const before = this.retired.length;
    const now = this.now();
    this.retired = this.retired.filter((r) => r.trustedUntil > now);
    return this.retired.length !== before;
  }

  /** Every trusted root, PEM, current first, without duplicates. */
  pems(): string[] {
    this.prune();
    const seen = new Set<string>();
    const out: string[] = [];
    for (const pem of [...this.current, ...this.retired.map((r) => r.pem)]) {
      const fp = fingerprint(pem);
      if (!seen.has(fp)) {
        seen.add(fp);
        out.push(pem);
      }
    }
    return out;
  }

  retiredRoots(): readonly RetiredRoot[] {
    this.prune();
    return [...this.retired];
  }

  /** When the next retired root is to be dropped (epoch ms), if any. */
  nextExpiry(): number | undefined {
    this.prune();
    return this.retired.length === 0 ? undefined : Math.min(...this.retired.map((r) => r.trustedUntil));
  }
}

/** Reads retired roots saved by saveRetiredRoots; a missing file is none, an unreadable one is reported and treated as none. */
export function loadRetiredRoots(file: string, warn: (message: string) => void): RetiredRoot[] {
  if (!existsSync(file)) return [];
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { retired?: Array<{ pem?: unknown; trustedUntil?: unknown }> };
    return (parsed.retired ?? []).flatMap((r) => (typeof r.pem === 'string' && typeof r.trustedUntil === 'string' ? [{ pem: r.pem, trustedUntil: Date.parse(r.trustedUntil) }] : []));
  } catch (err) {
    warn(`CA: ${file}: ignoring unreadable retired roots: ${describeError(err)}`);
    return [];
  }
}

export function saveRetiredRoots(file: string, roots: readonly RetiredRoot[]): void {
  writeFileAtomic(file, `${JSON.stringify({ retired: roots.map((r) => ({ trustedUntil: new Date(r.trustedUntil).toISOString(), pem: r.pem })) }, null, 2)}\n`);
}
