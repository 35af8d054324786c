// Bookinfo-like inputs for the route, listener and gateway builder tests, and checks that built resources survive the wire.
import assert from 'node:assert/strict';
import type { Gateway, VirtualService, VirtualServiceSpec, GatewaySpec } from '../../../src/api/index.js';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../../../src/control/model/mesh-config.js';
import type { Proxy } from '../../../src/control/model/proxy.js';
import type { Service, ServiceInstance, ServicePort } from '../../../src/control/model/service.js';
import { encodeMessage, packAny, unpackAny, type Any } from '../../../src/xds/codec.js';
import { listenerResourceType, routeConfigurationResourceType } from '../../../src/xds/client/index.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { PREVIOUS_HOSTS_PREDICATE_TYPE_URL } from '../../../src/control/translate/common/envoy-filter-names.js';

export const MESH: MeshConfig = DEFAULT_MESH_CONFIG;

export function proxy(overrides: Partial<Proxy> = {}): Proxy {
  return {
    id: 'sidecar~10.0.0.1~productpage-v1-abc.default~default.svc.cluster.local',
    type: 'sidecar',
    ipAddresses: ['10.0.0.1'],
    podName: 'productpage-v1-abc',
    namespace: 'default',
    domainSuffix: 'cluster.local',
    labels: { app: 'productpage', version: 'v1' },
    serviceAccount: 'bookinfo-productpage',
    locality: { region: '', zone: '', subzone: '' },
    workloadName: 'productpage-v1',
    cluster: 'productpage.default',
    metadata: {},
    ...overrides,
  };
}

export function service(name: string, ports: ServicePort[], extra: Partial<Service> = {}): Service {
  const namespace = extra.namespace ?? 'default';
  return {
    hostname: name.includes('.') ? name : `${name}.${namespace}.svc.cluster.local`,
    namespace,
    ports,
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    addresses: [],
    exportTo: ['*'],
    source: { registry: 'memory', namespace, name },
    ...extra,
  };
}

export const http9080: ServicePort = { name: 'http', number: 9080, protocol: 'HTTP' };

export const productpage = service('productpage', [http9080]);
export const details = service('details', [http9080]);
export const reviews = service('reviews', [http9080], { addresses: ['10.96.0.20'] });
export const ratings = service('ratings', [http9080]);

export function virtualService(name: string, spec: VirtualServiceSpec, namespace = 'default'): VirtualService {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec };
}

export function gateway(name: string, spec: GatewaySpec, namespace = 'default'): Gateway {
  return { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name, namespace }, spec };
}

/** Bookinfo's reviews rule: jason → v2, everyone else 50/50 between v1 and v3. */
export const reviewsVs = virtualService('reviews', {
  hosts: ['reviews'],
  http: [
    { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
    {
      route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
        { destination: { host: 'reviews', subset: 'v3' }, weight: 50 },
      ],
    },
  ],
});

/** Bookinfo's fault-injection tasks merged: a 7 s delay for jason, a 500 for 10 % of everyone else. */
export const ratingsVs = virtualService('ratings', {
  hosts: ['ratings'],
  http: [
    {
      name: 'jason-delay',
      match: [{ headers: { 'end-user': { exact: 'jason' } } }],
      fault: { delay: { fixedDelay: '7s', percentage: { value: 100 } } },
      route: [{ destination: { host: 'ratings', subset: 'v1' } }],
    },
    {
      name: 'abort',
      fault: { abort: { httpStatus: 500, percentage: { value: 10 } } },
      route: [{ destination: { host: 'ratings', subset: 'v1' } }],
    },
  ],
});

export function instance(svc: Service, port: ServicePort, targetPort = port.number): ServiceInstance {
  return {
    hostname: svc.hostname,
    namespace: svc.namespace,
    servicePort: port,
    address: '10.0.0.1',
    port: targetPort,
    labels: { app: 'productpage', version: 'v1' },
    locality: { region: '', zone: '', subzone: '' },
    weight: 1,
    tlsMode: 'istio',
    healthStatus: 'HEALTHY',
    source: { registry: 'memory', namespace: svc.namespace, name: svc.hostname },
  };
}

type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
type Listener = envoy.config.listener.v3.Listener;

function isAny(value: unknown): value is Any {
  return typeof value === 'object' && value !== null && 'type_url' in value && 'value' in value && (value as Any).value instanceof Uint8Array;
}

/**
 * Walks a built resource and unpacks every Any (typed_config, typed_per_filter_config…), recursively; returns the
 * type URLs seen. The previous-hosts retry predicate is an empty message Trellis's descriptor does not carry: its
 * bytes must be empty.
 */
export function unpackAllAnys(value: unknown, seen: string[] = []): string[] {
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return seen;
  if (isAny(value)) {
    seen.push(value.type_url!);
    if (value.type_url === PREVIOUS_HOSTS_PREDICATE_TYPE_URL) {
      assert.equal(value.value!.length, 0);
      return seen;
    }
    unpackAllAnys(unpackAny(value), seen);
    return seen;
  }
  for (const child of Array.isArray(value) ? value : Object.values(value)) unpackAllAnys(child, seen);
  return seen;
}

/** Encodes the RouteConfiguration and has the xDS client's RDS validation accept it; returns what the client decoded. */
export function assertRouteConfigOnTheWire(config: RouteConfiguration): RouteConfiguration {
  assert.ok(encodeMessage('envoy.config.route.v3.RouteConfiguration', config).length > 0);
  unpackAllAnys(config);
  return routeConfigurationResourceType.decode(packAny('envoy.config.route.v3.RouteConfiguration', config), config.name!);
}

/** Encodes the Listener and has the xDS client's LDS validation accept it; returns what the client decoded. */
export function assertListenerOnTheWire(listener: Listener): Listener {
  assert.ok(encodeMessage('envoy.config.listener.v3.Listener', listener).length > 0);
  unpackAllAnys(listener);
  return listenerResourceType.decode(packAny('envoy.config.listener.v3.Listener', listener), listener.name!);
}
