// What the xDS client needs to know about one resource type: how to decode and validate it, and how its updates are applied.
import type { Any } from '../codec.js';

/** Subscribe to every resource of a type (LDS, CDS): SotW sends no names, Delta subscribes "*". */
export const WILDCARD = '*';
export type Wildcard = typeof WILDCARD;

/**
 * One xDS resource type, registered by type URL. `decode` throws XdsValidationError listing every
 * problem it found (field path and what was expected), which becomes part of the NACK's error_detail.
 */
export interface XdsResourceType<T> {
  readonly typeUrl: string;
  /**
   * True for LDS and CDS: a State-of-the-World response carries every resource, so a resource the
   * client holds that is absent from it was removed. For RDS, EDS and SDS absence means nothing.
   */
  readonly allResourcesRequiredInSotW: boolean;
  /**
   * The resource's name as carried inside it, read without validating, so a refused resource can
   * still be named (SotW responses name resources only inside them). Undefined when unreadable.
   */
  nameOf(any: Any): string | undefined;
  /**
   * Decodes and validates. `name` is the name the client will file the resource under: the Delta
   * Resource wrapper's name, or what nameOf() read in SotW; a mismatch is a problem.
   */
  decode(any: Any, name: string): T;
}

/** What one response changed, for the valid resources only. */
export interface ResourceUpdate<T> {
  readonly typeUrl: string;
  /** SotW: the response's version_info; Delta: its system_version_info (informational only). */
  readonly versionInfo: string;
  readonly changed: ReadonlyMap<string, T>;
  readonly removed: readonly string[];
}

/**
 * Applies an update to whatever uses the resources (listeners, clusters…). Throwing, or rejecting,
 * refuses the whole update: nothing of it is kept and the client NACKs with the error's message.
 */
export type ApplyHook<T> = (update: ResourceUpdate<T>) => void | Promise<void>;
