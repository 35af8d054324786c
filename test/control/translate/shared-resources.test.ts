// Resources shared among proxies: identical inputs give the very same object (and, encoded, the same Any); proxies
// differing in an input that matters (namespace for DestinationRule precedence, labels for workloadSelector rules and
// sourceLabels, Sidecar scope) never share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResources } from '../../../src/api/index.js';
import { MemoryConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../src/control/registry/index.js';
import { buildPushContext, type PushContext } from '../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import { proxyFromNode, type Proxy } from '../../../src/control/model/proxy.js';
import type { GeneratedResource } from '../../../src/control/model/generator.js';
import type { PushRequest } from '../../../src/control/model/push-request.js';
import { createGenerators } from '../../../src/control/translate/generators/index.js';
import { ResourceInterner } from '../../../src/control/server/resource-interner.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../../src/xds/type-urls.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type Cluster = envoy.config.cluster.v3.Cluster;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

const REQUEST: PushRequest = { full: true, configsUpdated: [], reasons: ['test'], start: 0 };
const generators = createGenerators();
const HOST = 'shop.backend.svc.cluster.local';
const DEFAULT_CLUSTER = `outbound|8080||${HOST}`;
const V1_CLUSTER = `outbound|8080|v1|${HOST}`;

const SERVICES = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: backend }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints:
  - { address: 10.1.0.1, labels: { app: shop, version: v1 } }
  - { address: 10.1.0.2, labels: { app: shop, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: other, namespace: backend }
spec:
  hosts: [other.backend.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.1.1, labels: { app: other } }]
`;

function pushOf(yaml: string): PushContext {
  const loaded = parseResources(SERVICES + '---\n' + yaml);
  assert.deepEqual(loaded.problems, []);
  const store = new MemoryConfigStore();
  store.set(...loaded.resources);
  const registry = new ServiceEntryRegistry(store);
  return buildPushContext({ store, registry, mesh: DEFAULT_MESH_CONFIG });
}

function sidecar(pod: string, namespace: string, labels: Record<string, string>, ip = '10.2.0.1'): Proxy {
  return proxyFromNode({
    id: `sidecar~${ip}~${pod}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: {
      fields: {
        NAMESPACE: { string_value: namespace },
        LABELS: { struct_value: { fields: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, { string_value: v }])) } },
      },
    },
  });
}

function generated(proxy: Proxy, push: PushContext, typeUrl: string): readonly GeneratedResource[] {
  return generators.get(typeUrl)!.generate(proxy, push, REQUEST);
}

function resource<T>(proxy: Proxy, push: PushContext, typeUrl: string, name: string): T | undefined {
  return generated(proxy, push, typeUrl).find((r) => r.name === name)?.resource as T | undefined;
}

test('two proxies with the same relevant inputs (namespace, no selecting rule) share every outbound object, and the encoded Any', () => {
  const push = pushOf(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: backend }
spec:
  host: ${HOST}
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }
  subsets: [{ name: v1, labels: { version: v1 } }]
`);
  // Different pods, IPs and labels: none of it matters to outbound config here.
  const a = sidecar('web-1', 'frontend', { app: 'web' }, '10.2.0.1');
  const b = sidecar('api-7', 'frontend', { app: 'api', version: 'v3' }, '10.2.0.2');
  for (const [typeUrl, name] of [[CLUSTER, DEFAULT_CLUSTER], [CLUSTER, V1_CLUSTER], [CLUSTER_LOAD_ASSIGNMENT, V1_CLUSTER], [ROUTE_CONFIGURATION, '8080'], [LISTENER, '0.0.0.0_8080']] as const) {
    const ra = resource<object>(a, push, typeUrl, name);
    assert.ok(ra, `${name} generated`);
    assert.equal(resource<object>(b, push, typeUrl, name), ra, `${typeUrl} ${name}: one object for both proxies`);
  }
  const interner = new ResourceInterner();
  const encode = (p: Proxy) => generated(p, push, CLUSTER).map((r) => interner.encode(CLUSTER, r));
  const [ea, eb] = [encode(a), encode(b)];
  const byName = (list: typeof ea, name: string) => list.find((r) => r.name === name)!;
  assert.equal(byName(eb, DEFAULT_CLUSTER), byName(ea, DEFAULT_CLUSTER), 'the same encoded resource');
  assert.equal(byName(eb, DEFAULT_CLUSTER).any, byName(ea, DEFAULT_CLUSTER).any, 'the same Any object');
  // Per-proxy resources (inbound, built per proxy) are still interned by content: identical bytes, one Any.
  assert.equal(byName(eb, 'BlackHoleCluster').any, byName(ea, 'BlackHoleCluster').any);
});

test('DestinationRule precedence by namespace: proxies in different namespaces do not share what their rules make differ', () => {
  const push = pushOf(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop-local, namespace: frontend }
spec:
  host: ${HOST}
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: backend }
spec:
  host: ${HOST}
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
  subsets: [{ name: v1, labels: { version: v2 } }]
`);
  const local = sidecar('web-1', 'frontend', { app: 'web' });
  const remote = sidecar('web-1', 'elsewhere', { app: 'web' });
  const cl = resource<Cluster>(local, push, CLUSTER, DEFAULT_CLUSTER)!;
  const cr = resource<Cluster>(remote, push, CLUSTER, DEFAULT_CLUSTER)!;
  assert.notEqual(cl, cr);
  assert.equal(cl.lb_policy, 'LEAST_REQUEST', 'frontend\'s own rule wins for frontend');
  assert.equal(cr.lb_policy, 'RANDOM', 'the service namespace\'s rule for everyone else');
  const addresses = (p: Proxy) => (resource<ClusterLoadAssignment>(p, push, CLUSTER_LOAD_ASSIGNMENT, V1_CLUSTER)?.endpoints ?? [])
    .flatMap((l) => l.lb_endpoints ?? []).map((e) => e.endpoint?.address?.socket_address?.address);
  assert.deepEqual(addresses(local), ['10.1.0.1'], 'subset v1 by frontend\'s labels');
  assert.deepEqual(addresses(remote), ['10.1.0.2'], 'subset v1 by backend\'s labels');
  // Encoded: different Anys for different content, under the same name.
  const interner = new ResourceInterner();
  const encodeCla = (p: Proxy) => interner.encode(CLUSTER_LOAD_ASSIGNMENT, generated(p, push, CLUSTER_LOAD_ASSIGNMENT).find((r) => r.name === V1_CLUSTER)!);
  assert.notEqual(encodeCla(local).version, encodeCla(remote).version);
  assert.notEqual(encodeCla(local).any, encodeCla(remote).any);
});

test('labels: a workloadSelector DestinationRule and a sourceLabels route reach only the proxies they select', () => {
  const push = pushOf(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop-special, namespace: frontend }
spec:
  host: ${HOST}
  workloadSelector: { matchLabels: { app: special } }
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: backend }
spec:
  hosts: [${HOST}]
  http:
  - match: [{ sourceLabels: { app: special } }]
    route: [{ destination: { host: ${HOST} }, weight: 100 }]
    timeout: 3s
  - route: [{ destination: { host: ${HOST} } }]
`);
  const special = sidecar('special-1', 'frontend', { app: 'special' });
  const plain = sidecar('web-1', 'frontend', { app: 'web' });
  const plainToo = sidecar('api-1', 'frontend', { app: 'api', version: 'v2' });
  // workloadSelector DestinationRule: the selected proxy gets its own cluster.
  const cs = resource<Cluster>(special, push, CLUSTER, DEFAULT_CLUSTER)!;
  const cp = resource<Cluster>(plain, push, CLUSTER, DEFAULT_CLUSTER)!;
  assert.notEqual(cs, cp);
  assert.equal(cs.lb_policy, 'RANDOM');
  assert.notEqual(cp.lb_policy, 'RANDOM');
  assert.equal(resource<Cluster>(plainToo, push, CLUSTER, DEFAULT_CLUSTER), cp, 'unselected proxies still share');
  // sourceLabels: the route with the 3 s timeout only for app=special.
  const rs = resource<RouteConfiguration>(special, push, ROUTE_CONFIGURATION, '8080')!;
  const rp = resource<RouteConfiguration>(plain, push, ROUTE_CONFIGURATION, '8080')!;
  assert.notEqual(rs, rp);
  const shopRoutes = (r: RouteConfiguration) => r.virtual_hosts!.find((v) => v.name === `${HOST}:8080`)!.routes!;
  const timeout = (r: RouteConfiguration) => Number(shopRoutes(r)[0]!.route!.timeout?.seconds);
  assert.equal(timeout(rs), 3, 'the sourceLabels route comes first for app=special');
  assert.notEqual(timeout(rp), 3, 'and never for app=web');
  assert.equal(resource<RouteConfiguration>(plainToo, push, ROUTE_CONFIGURATION, '8080'), rp, 'proxies matching the same (no) selectors share');
});

test('Sidecar scope: a proxy selected by a narrower Sidecar shares nothing scope-dependent with its namespace neighbours', () => {
  const push = pushOf(`
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: narrow, namespace: frontend }
spec:
  workloadSelector: { labels: { app: narrow } }
  egress: [{ hosts: ['backend/other.backend.svc.cluster.local'] }]
`);
  const narrow = sidecar('narrow-1', 'frontend', { app: 'narrow' });
  const wide = sidecar('web-1', 'frontend', { app: 'web' });
  const names = (p: Proxy, typeUrl: string) => generated(p, push, typeUrl).map((r) => r.name);
  assert.ok(!names(narrow, CLUSTER).includes(DEFAULT_CLUSTER));
  assert.ok(names(wide, CLUSTER).includes(DEFAULT_CLUSTER));
  for (const [typeUrl, name] of [[ROUTE_CONFIGURATION, '8080'], [LISTENER, '0.0.0.0_8080'], [LISTENER, 'virtualOutbound']] as const) {
    assert.notEqual(resource<object>(narrow, push, typeUrl, name), resource<object>(wide, push, typeUrl, name), `${typeUrl} ${name}`);
  }
  const hosts = (p: Proxy) => resource<RouteConfiguration>(p, push, ROUTE_CONFIGURATION, '8080')!.virtual_hosts!.map((v) => v.name);
  assert.ok(!hosts(narrow).includes(`${HOST}:8080`));
  assert.ok(hosts(wide).includes(`${HOST}:8080`));
});

test('the interner hands out one Any for equal content across snapshots, and a new one when content changes', () => {
  const yaml = (lb: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: backend }
spec:
  host: ${HOST}
  trafficPolicy: { loadBalancer: { simple: ${lb} } }
`;
  const interner = new ResourceInterner();
  const proxy = sidecar('web-1', 'frontend', { app: 'web' });
  const encoded = (push: PushContext, name: string) => interner.encode(CLUSTER, generated(proxy, push, CLUSTER).find((r) => r.name === name)!);
  const first = pushOf(yaml('RANDOM'));
  const second = pushOf(yaml('RANDOM'));
  const changed = pushOf(yaml('LEAST_REQUEST'));
  assert.notEqual(resource<object>(proxy, first, CLUSTER, DEFAULT_CLUSTER), resource<object>(proxy, second, CLUSTER, DEFAULT_CLUSTER), 'built anew per snapshot');
  assert.equal(encoded(second, DEFAULT_CLUSTER), encoded(first, DEFAULT_CLUSTER), 'but interned to the one already encoded');
  assert.notEqual(encoded(changed, DEFAULT_CLUSTER).version, encoded(first, DEFAULT_CLUSTER).version);
});
