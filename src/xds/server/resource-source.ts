// The interface the ADS server reads resources through, so the control plane can plug any source behind it.
import type { Any } from '../codec.js';
import type { Node } from '../ads-service.js';

/** One named resource, already packed into Any, with its version (content hash unless the producer chose one). */
export interface VersionedResource {
  readonly name: string;
  readonly version: string;
  readonly any: Any;
}

/** The current resources of one type for one node key; `version` changes whenever any resource does. */
export interface ResourceSet {
  readonly version: string;
  readonly resources: ReadonlyMap<string, VersionedResource>;
}

/** Called with the type URL whose resource set changed for the watched node key. */
export type ResourceChangeListener = (typeUrl: string) => void;

/** Cancels a watch; safe to call more than once. */
export type CancelWatch = () => void;

export interface ResourceSource {
  /** Groups nodes that share configuration (default: the node id). */
  nodeKey(node: Node): string;
  /**
   * The current resources of `typeUrl` for `nodeKey` (an empty set when there are none), or `undefined`
   * while the source has nothing for this node yet. The server then waits instead of answering: an
   * empty LDS/CDS answer would make a reconnecting proxy drop its whole config while a restarted
   * control plane is still generating it.
   */
  resources(nodeKey: string, typeUrl: string): ResourceSet | undefined;
  /** Notifies `listener` after a resource set of `nodeKey` changes (never for an identical re-set). */
  watch(nodeKey: string, listener: ResourceChangeListener): CancelWatch;
}
