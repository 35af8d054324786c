// Turns one response's resources into an update: decode each, keep the valid ones, apply them, and say what to NACK.
//
// Envoy's per-resource behaviour: valid resources of a response are applied even when others in it are
// refused; refused ones keep their last good version, and the response is NACKed naming each of them.
import { describeError } from '../../common/errors.js';
import type { Any } from '../codec.js';
import { shortName } from '../type-urls.js';
import type { ResourceUpdate } from './resource-type.js';
import type { HeldResource, WatchedType } from './watched-type.js';

/** A resource of the response, named, still to be decoded. */
export interface Candidate {
  readonly name: string;
  readonly any: Any;
  /** Delta: Resource.version; SotW: the response's version_info. */
  readonly version: string;
}

/** Something of a response refused: `subject` is `resource "name"`, `resources[i]` when it has no name, or `update`. */
export interface Refusal {
  readonly subject: string;
  readonly reason: string;
}

export interface UpdateOutcome {
  /** Set when the response must be NACKed: every refusal, one per line. */
  readonly nackMessage: string | undefined;
  /** Names whose new version was applied, and names removed; empty when the apply hook refused the update. */
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

/** How a NACK message names a resource. */
export function resourceSubject(name: string): string {
  return `resource ${JSON.stringify(name)}`;
}

/**
 * Decodes `candidates`, applies the valid ones and `removals` through the type's apply hook, and
 * commits them to the watched type's cache when the hook accepts. Never throws.
 */
export async function processUpdate<T>(
  watched: WatchedType<T>,
  versionInfo: string,
  candidates: readonly Candidate[],
  refusals: Refusal[],
  removals: readonly string[],
  versioned: boolean,
): Promise<UpdateOutcome> {
  const changed = new Map<string, HeldResource<T>>();
  for (const candidate of candidates) {
    const held = watched.resources.get(candidate.name);
    const bytes = candidate.any.value ?? new Uint8Array();
    // An unchanged resource is neither decoded again nor re-applied. SotW resends every resource under
    // each new version_info, so there only the bytes tell; Delta resources carry their own version.
    if (held && (!versioned || held.version === candidate.version) && Buffer.from(held.bytes).equals(bytes)) continue;
    try {
      const value = watched.type.decode(candidate.any, candidate.name);
      changed.set(candidate.name, { value, version: candidate.version, bytes });
    } catch (err) {
      refusals.push({ subject: resourceSubject(candidate.name), reason: describeError(err) });
    }
  }
  const removed = removals.filter((name) => watched.resources.has(name));

  if (changed.size > 0 || removed.length > 0) {
    const update: ResourceUpdate<T> = {
      typeUrl: watched.typeUrl,
      versionInfo,
      changed: new Map([...changed].map(([name, held]) => [name, held.value])),
      removed,
    };
    try {
      await watched.apply?.(update);
    } catch (err) {
      // The hook refused the update as a whole: nothing of it is kept.
      refusals.push({ subject: 'update', reason: `not applied: ${describeError(err)}` });
      return { nackMessage: nackMessage(watched.typeUrl, refusals), changed: [], removed: [] };
    }
    for (const [name, held] of changed) watched.resources.set(name, held);
    for (const name of removed) watched.resources.delete(name);
  }
  return {
    nackMessage: refusals.length > 0 ? nackMessage(watched.typeUrl, refusals) : undefined,
    changed: [...changed.keys()],
    removed,
  };
}

function nackMessage(typeUrl: string, refusals: readonly Refusal[]): string {
  const kind = shortName(typeUrl);
  return refusals.map(({ subject, reason }) => `${kind} ${subject}: ${reason}`).join('\n');
}
