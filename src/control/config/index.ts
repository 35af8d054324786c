// The public surface of the config stores: the interface, the memory, file and aggregate stores.
export * from './store.js';
export { contentVersion } from './resource-version.js';
export { MemoryConfigStore, type MemoryConfigStoreOptions } from './memory/memory-store.js';
export { FileConfigStore, type FileConfigStoreOptions, type ReloadResult } from './file/file-store.js';
export { AggregateConfigStore } from './aggregate.js';
