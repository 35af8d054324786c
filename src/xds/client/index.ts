// The xDS client's public surface: the client, resource types, and the update/apply contract.
export { XdsClient, type XdsClientOptions, type XdsClientMode, type XdsClientEvents, type XdsClientStatus, type XdsTypeStatus, type AckEvent, type NackEvent, type DisconnectedEvent } from './xds-client.js';
export { WILDCARD, type Wildcard, type XdsResourceType, type ResourceUpdate, type ApplyHook } from './resource-type.js';
export { EnvoyResourceType, Problems } from './envoy-resource-type.js';
export type { NackRecord } from './watched-type.js';
export * from './resource-types/index.js';
