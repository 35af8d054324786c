// The public surface of the service registries: the interface, the ServiceEntry, memory and aggregate registries.
export * from './registry.js';
export { isEndpointOnlyChange } from '../model/service.js';
export { ServiceEntryRegistry, type ServiceEntryRegistryOptions } from './serviceentry/service-entry-registry.js';
export { MemoryServiceRegistry } from './memory/memory-registry.js';
export { AggregateServiceRegistry } from './aggregate.js';
