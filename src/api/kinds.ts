// Which spec type each kind carries, so code that has validated a resource can use it typed.
import type { IstioResource, Kind } from './resource.js';
import type { DestinationRuleSpec } from './networking/destination-rule.js';
import type { GatewaySpec } from './networking/gateway.js';
import type { ServiceEntrySpec } from './networking/service-entry.js';
import type { SidecarSpec } from './networking/sidecar.js';
import type { VirtualServiceSpec } from './networking/virtual-service.js';
import type { WorkloadEntrySpec } from './networking/workload-entry.js';
import type { AuthorizationPolicySpec } from './security/authorization-policy.js';
import type { PeerAuthenticationSpec } from './security/peer-authentication.js';
import type { RequestAuthenticationSpec } from './security/request-authentication.js';
import type { TelemetrySpec } from './telemetry/telemetry.js';

export interface KindSpecs {
  VirtualService: VirtualServiceSpec;
  DestinationRule: DestinationRuleSpec;
  Gateway: GatewaySpec;
  ServiceEntry: ServiceEntrySpec;
  WorkloadEntry: WorkloadEntrySpec;
  Sidecar: SidecarSpec;
  PeerAuthentication: PeerAuthenticationSpec;
  RequestAuthentication: RequestAuthenticationSpec;
  AuthorizationPolicy: AuthorizationPolicySpec;
  Telemetry: TelemetrySpec;
}

/** A resource whose spec has passed validation and may be read as its kind's type. */
export type TypedResource<K extends Kind = Kind> = K extends Kind ? IstioResource<K, KindSpecs[K]> : never;

export type VirtualService = TypedResource<'VirtualService'>;
export type DestinationRule = TypedResource<'DestinationRule'>;
export type Gateway = TypedResource<'Gateway'>;
export type ServiceEntry = TypedResource<'ServiceEntry'>;
export type WorkloadEntry = TypedResource<'WorkloadEntry'>;
export type Sidecar = TypedResource<'Sidecar'>;
export type PeerAuthentication = TypedResource<'PeerAuthentication'>;
export type RequestAuthentication = TypedResource<'RequestAuthentication'>;
export type AuthorizationPolicy = TypedResource<'AuthorizationPolicy'>;
export type Telemetry = TypedResource<'Telemetry'>;
