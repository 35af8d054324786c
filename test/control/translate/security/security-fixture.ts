// Inputs for the security translation tests: a PushContext over in-memory policies and services, a workload proxy, and
// decoders that take generated filters through the wire (packAny → bytes → unpackAny), as a proxy receives them.
import type { AuthorizationPolicy, AuthorizationPolicySpec, RequestAuthentication, RequestAuthenticationSpec } from '../../../../src/api/index.js';
import { MemoryConfigStore } from '../../../../src/control/config/memory/memory-store.js';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../../../../src/control/model/mesh-config.js';
import type { Proxy } from '../../../../src/control/model/proxy.js';
import { buildPushContext, type PushContext } from '../../../../src/control/model/push-context.js';
import type { Service } from '../../../../src/control/model/service.js';
import { MemoryServiceRegistry } from '../../../../src/control/registry/memory/memory-registry.js';
import { decodeMessage, encodeMessage, unpackAny } from '../../../../src/xds/codec.js';
import type { envoy } from '../../../../src/xds/generated/types.js';

export type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
export type Filter = envoy.config.listener.v3.Filter;
export type HttpRbac = envoy.extensions.filters.http.rbac.v3.RBAC;
export type NetworkRbac = envoy.extensions.filters.network.rbac.v3.RBAC;
export type ExtAuthz = envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
export type JwtAuthentication = envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
export type RbacPolicy = envoy.config.rbac.v3.Policy;

export const HTTP_RBAC_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const NETWORK_RBAC_URL = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
export const EXT_AUTHZ_URL = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const JWT_AUTHN_URL = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

/** httpbin in namespace foo, as Istio's builder testdata selects it. */
export function workload(overrides: Partial<Proxy> = {}): Proxy {
  return {
    id: 'sidecar~10.0.0.5~httpbin-v1-abc.foo~foo.svc.cluster.local',
    type: 'sidecar',
    ipAddresses: ['10.0.0.5'],
    podName: 'httpbin-v1-abc',
    namespace: 'foo',
    domainSuffix: 'cluster.local',
    labels: { app: 'httpbin', version: 'v1' },
    serviceAccount: 'httpbin',
    locality: { region: '', zone: '', subzone: '' },
    workloadName: 'httpbin-v1',
    cluster: 'httpbin.foo',
    metadata: {},
    ...overrides,
  };
}

export function authorizationPolicy(name: string, spec: AuthorizationPolicySpec, namespace = 'foo', annotations?: Record<string, string>): AuthorizationPolicy {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace, ...(annotations ? { annotations } : {}) }, spec };
}

export function requestAuthentication(name: string, spec: RequestAuthenticationSpec, namespace = 'foo'): RequestAuthentication {
  return { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name, namespace }, spec };
}

export function service(hostname: string, namespace: string, ports: Service['ports']): Service {
  return {
    hostname, namespace, ports, resolution: 'STATIC', location: 'MESH_INTERNAL', addresses: [], exportTo: ['*'],
    source: { registry: 'memory', namespace, name: hostname },
  };
}

/** A snapshot of `resources` (validated as the config store validates them) and `services`. */
export function pushOf(resources: readonly (AuthorizationPolicy | RequestAuthentication)[], options: { services?: Service[]; mesh?: Partial<MeshConfig> } = {}): PushContext {
  const store = new MemoryConfigStore();
  if (resources.length > 0) store.set(...resources);
  const registry = new MemoryServiceRegistry();
  for (const s of options.services ?? []) registry.setService(s, []);
  return buildPushContext({ store, registry, mesh: { ...DEFAULT_MESH_CONFIG, ...options.mesh } });
}

/** The message as a proxy decodes it: encoded and decoded again, so defaults and empty wrappers look as on the wire. */
export function wire<T extends object>(messageName: string, value: T): T {
  return decodeMessage<T>(messageName, encodeMessage(messageName, value));
}

export function httpRbacOf(filter: HttpFilter | Filter | undefined): HttpRbac {
  if (filter?.name !== 'envoy.filters.http.rbac') throw new Error(`expected envoy.filters.http.rbac, got ${filter?.name}`);
  return unpackAny<HttpRbac>(filter.typed_config!, HTTP_RBAC_URL);
}

export function networkRbacOf(filter: Filter | undefined): NetworkRbac {
  if (filter?.name !== 'envoy.filters.network.rbac') throw new Error(`expected envoy.filters.network.rbac, got ${filter?.name}`);
  return unpackAny<NetworkRbac>(filter.typed_config!, NETWORK_RBAC_URL);
}

/** The RBAC policy as it decodes on the proxy, for comparison with a generated one. */
export function wirePolicy(policy: RbacPolicy): RbacPolicy {
  return wire('envoy.config.rbac.v3.Policy', policy);
}
