// The public surface of src/api: Istio resource types, loading and validation.
export * from './resource.js';
export * from './kinds.js';
export * from './problem.js';
export * from './duration.js';
export * from './load.js';
export * from './validate.js';
export type * from './networking/common.js';
export type * from './networking/virtual-service.js';
export type * from './networking/destination-rule.js';
export type * from './networking/gateway.js';
export type * from './networking/service-entry.js';
export type * from './networking/workload-entry.js';
export type * from './networking/sidecar.js';
export type * from './security/common.js';
export type * from './security/peer-authentication.js';
export type * from './security/request-authentication.js';
export type * from './security/authorization-policy.js';
export type * from './telemetry/telemetry.js';
