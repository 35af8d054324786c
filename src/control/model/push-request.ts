// What a push is about: which configs and hosts changed, whether it is full or endpoint-only (Istio's PushRequest).
import type { Kind } from '../../api/index.js';

/** One changed config resource, or a registry host (`kind: 'ServiceEntry'` for services, `'Endpoints'` for endpoint-only). */
export interface ConfigKey {
  readonly kind: Kind | 'Endpoints';
  readonly namespace: string;
  /** Resource name; for `Endpoints` the service host name. */
  readonly name: string;
}

export interface PushRequest {
  /** Full: regenerate every type the change may touch. Not full: endpoints only (EDS). */
  readonly full: boolean;
  /** What changed; empty for a push of everything (start-up, a new proxy, a forced resync). */
  readonly configsUpdated: readonly ConfigKey[];
  /** Why, for logs and metrics (`config`, `endpoint`, `proxy`, `global`). */
  readonly reasons: readonly string[];
  /** When the first change of this (merged) request happened, for convergence time. */
  readonly start: number;
}

/** Merges two requests the way Istio's debounce does: full if either is, the union of what changed. */
export function mergePushRequests(a: PushRequest, b: PushRequest): PushRequest {
  return {
    full: a.full || b.full,
    // An empty list means "everything" for a full push; merging with it stays "everything".
    configsUpdated: (a.full && a.configsUpdated.length === 0) || (b.full && b.configsUpdated.length === 0) ? [] : [...a.configsUpdated, ...b.configsUpdated],
    reasons: [...new Set([...a.reasons, ...b.reasons])],
    start: Math.min(a.start, b.start),
  };
}
