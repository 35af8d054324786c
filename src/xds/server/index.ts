// The public API of the xDS management server: what the control plane wires together.
export { AdsServer, type AdsListener, type AdsLogger, type AdsServerOptions } from './ads-server.js';
export type * from './ads-events.js';
export type { CancelWatch, ResourceChangeListener, ResourceSet, ResourceSource, VersionedResource } from './resource-source.js';
export {
  SnapshotCache,
  type EncodedResourceInput,
  type ObjectResourceInput,
  type ResourceInput,
  type ResourceUpdate,
  type SnapshotCacheOptions,
  type TypeInput,
} from './snapshot-cache.js';
export type { NackRecord, StreamMode, StreamNodeInfo, StreamStatus, TypeStatus } from './stream-status.js';
export { contentVersion, setVersion } from './resource-version.js';
