// A resource's resourceVersion: a hash of its content (apiVersion, kind, metadata, spec), so equal content has an equal version.
import { createHash } from 'node:crypto';
import type { IstioResource } from '../../api/index.js';

const VERSION_LENGTH = 16;

/** Hashes everything that defines the resource, not where it was read from nor a resourceVersion it already carries. */
export function contentVersion(resource: IstioResource): string {
  const { resourceVersion: _ignored, ...metadata } = resource.metadata;
  const hash = createHash('sha256');
  hash.update(canonicalJson({ apiVersion: resource.apiVersion, kind: resource.kind, metadata, spec: resource.spec }));
  return hash.digest('hex').slice(0, VERSION_LENGTH);
}

/** JSON with object keys sorted, so key order in the YAML does not change the version. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** Freezes `value` and everything it holds, so a stored resource cannot change under its readers. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
