// RDS builders: Istio VirtualServices and services as Envoy RouteConfigurations (outbound per port, explicit proxy, inbound, gateway routes).
export * from './route-configuration.js';
export * from './http-route.js';
export * from './route-match.js';
export * from './retry-policy.js';
export * from './fault-injection.js';
export * from './cors-policy.js';
export * from './header-operations.js';
export * from './virtual-host-domains.js';
