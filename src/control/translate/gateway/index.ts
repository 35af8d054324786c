// Gateway builders: Istio Gateways and the VirtualServices bound to them as Envoy listeners and route configurations.
export * from './gateway-config.js';
export * from './gateway-hosts.js';
export * from './gateway-tls.js';
