// The ConfigStore interface: Istio resources by kind/namespace/name, change events batched per reload, and the problems of what was refused.
import type { ErrorCode } from '../../common/errors.js';
import type { Kind, TypedResource } from '../../api/index.js';

export type ConfigEventType = 'add' | 'update' | 'delete';

/** One resource that appeared, changed (its resourceVersion differs) or went away. */
export interface ConfigEvent {
  type: ConfigEventType;
  kind: Kind;
  namespace: string;
  name: string;
  /** The new resourceVersion (absent for `delete`). */
  resourceVersion?: string;
}

/** Receives every change of one reload (or one programmatic update) together, never an empty batch. */
export type ConfigChangeHandler = (events: readonly ConfigEvent[]) => void;

/** A file, document or resource the store refused, and why. */
export interface ConfigProblem {
  code: ErrorCode;
  /** The file (file store) or store name. */
  source: string;
  /** Index of the YAML document in the file, from 0. */
  document?: number;
  /** 1-based position, for YAML that does not parse. */
  line?: number;
  column?: number;
  /** `Kind namespace/name`, as far as it is known. */
  resource?: string;
  /** Field path within the resource, e.g. `spec.http[0].route[1].weight`. */
  path?: string;
  /** What was expected. */
  message: string;
  /** True when an earlier valid version of the resource (or of the file's resources) keeps serving in its place. */
  keptLastValid?: boolean;
}

export interface ConfigStore {
  /** A short name for messages and debug output (`file:/etc/trellis`, `memory`). */
  readonly name: string;
  /** Every valid resource of `kind` (in `namespace` when given), sorted by namespace then name. Resources are frozen. */
  list<K extends Kind>(kind: K, namespace?: string): readonly TypedResource<K>[];
  get<K extends Kind>(kind: K, namespace: string, name: string): TypedResource<K> | undefined;
  /** Calls `handler` with each batch of changes; returns the function that unsubscribes. */
  onChange(handler: ConfigChangeHandler): () => void;
  /** What is currently refused: invalid resources, files that do not parse, conflicting definitions. */
  problems(): readonly ConfigProblem[];
}

/** `file: Kind namespace/name: field.path: what was expected` (with `:line:column` and the document index for YAML errors). */
export function formatConfigProblem(p: ConfigProblem): string {
  const parts = [p.line !== undefined ? `${p.source}:${p.line}:${p.column ?? 1}` : p.source];
  if (p.resource) parts.push(p.resource);
  else if (p.document !== undefined) parts.push(`document ${p.document}`);
  if (p.path) parts.push(p.path);
  parts.push(p.keptLastValid ? `${p.message} (the last valid version keeps serving)` : p.message);
  return parts.join(': ');
}
