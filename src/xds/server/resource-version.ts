// Content-derived versions: a resource's version hashes its encoded bytes, a type's version hashes its (name, version) pairs.
import { createHash } from 'node:crypto';

// 16 hex digits (64 bits) keeps versions short in logs and status while collisions stay negligible.
const VERSION_LENGTH = 16;

/** The version of one encoded resource: a hash of its bytes, so identical content has an identical version everywhere. */
export function contentVersion(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, VERSION_LENGTH);
}

/** The version of a set of resources: a hash over its sorted (name, version) pairs, independent of insertion order. */
export function setVersion(pairs: Iterable<readonly [name: string, version: string]>): string {
  const sorted = [...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256');
  // Length prefixes keep the encoding unambiguous whatever characters names and caller-given versions hold.
  for (const [name, version] of sorted) hash.update(`${name.length}:${name}${version.length}:${version}`);
  return hash.digest('hex').slice(0, VERSION_LENGTH);
}
