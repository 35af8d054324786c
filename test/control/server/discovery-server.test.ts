// The discovery server over fakes (memory store and registry, a fake PushContext, counting generators): who gets
// pushed, which types, the generated-resource cache, and failures that must not take the previous config away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryConfigStore } from '../../../src/control/config/index.js';
import { MemoryServiceRegistry } from '../../../src/control/registry/index.js';
import type { Service, ServiceInstance } from '../../../src/control/model/service.js';
import type { XdsGenerator } from '../../../src/control/model/generator.js';
import type { Proxy } from '../../../src/control/model/proxy.js';
import type { PushRequest } from '../../../src/control/model/push-request.js';
import { DiscoveryServer } from '../../../src/control/server/discovery-server.js';
import type { Node } from '../../../src/xds/ads-service.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER } from '../../../src/xds/type-urls.js';
import { FakeClock, flush } from './fake-clock.js';

const HOST = 'reviews.default.svc.cluster.local';

interface FakePush {
  readonly version: string;
  readonly serial: number;
  readonly virtualServices: readonly string[];
  readonly endpoints: readonly string[];
  affects(proxy: Proxy, request: PushRequest): boolean;
}

function service(): Service {
  return { hostname: HOST, namespace: 'default', ports: [{ name: 'http', number: 9080, protocol: 'HTTP' }], resolution: 'STATIC', location: 'MESH_INTERNAL', addresses: [], exportTo: ['*'], source: { registry: 'memory', namespace: 'default', name: 'reviews' } };
}

function instance(address: string): ServiceInstance {
  const s = service();
  return { hostname: HOST, namespace: 'default', servicePort: s.ports[0]!, address, port: 9080, labels: { app: 'reviews' }, locality: { region: '', zone: '', subzone: '' }, weight: 1, tlsMode: 'istio', healthStatus: 'HEALTHY', source: s.source };
}

function virtualService(name: string): Parameters<MemoryConfigStore['set']>[0] {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: 'default' }, spec: { hosts: [name], http: [{ route: [{ destination: { host: name } }] }] } };
}

/** A replica of `<app>-v1` (pod `<app>-v1-<suffix>`), with the metadata Istio's injector sets. */
function node(pod: string, app: string): Node {
  return {
    id: `sidecar~10.0.0.1~${pod}.default~default.svc.cluster.local`,
    metadata: { fields: { WORKLOAD_NAME: { string_value: `${app}-v1` }, NAME: { string_value: pod }, LABELS: { struct_value: { fields: { app: { string_value: app } } } } } },
  };
}

function setup(options: { failBuild?: () => boolean; failCds?: () => boolean; initial?: Parameters<MemoryConfigStore['set']> } = {}) {
  const store = new MemoryConfigStore();
  if (options.initial) store.set(...options.initial);
  const registry = new MemoryServiceRegistry();
  registry.setService(service(), [instance('10.0.1.1')]);
  const clock = new FakeClock();
  const calls: Array<{ type: string; proxy: string; serial: number }> = [];
  let serial = 0;
  // Only proxies labelled app=productpage are affected by anything but a "global" request.
  const build = (): FakePush => {
    if (options.failBuild?.()) throw new Error('index build failed');
    const s = ++serial;
    return {
      version: `v${s}`,
      serial: s,
      virtualServices: store.list('VirtualService').map((vs) => vs.metadata.name),
      endpoints: registry.instances(HOST).map((i) => i.address),
      affects: (proxy) => proxy.labels['app'] === 'productpage',
    };
  };
  const generator = (typeUrl: string, make: (push: FakePush) => Array<{ name: string; resource: object }>): XdsGenerator<FakePush> => ({
    typeUrl,
    generate: (proxy, push) => {
      calls.push({ type: typeUrl, proxy: proxy.podName, serial: push.serial });
      return make(push);
    },
  });
  const generators = new Map<string, XdsGenerator<FakePush>>([
    [CLUSTER, generator(CLUSTER, (push) => {
      if (options.failCds?.()) throw new Error('cds generator failed');
      return push.virtualServices.map((name) => ({ name, resource: { name, type: 'EDS' } }));
    })],
    [CLUSTER_LOAD_ASSIGNMENT, generator(CLUSTER_LOAD_ASSIGNMENT, (push) => [{ name: 'reviews', resource: { cluster_name: 'reviews', endpoints: [{ lb_endpoints: push.endpoints.map((address) => ({ endpoint: { address: { socket_address: { address, port_value: 9080 } } } })) }] } }])],
    [LISTENER, generator(LISTENER, () => [{ name: 'virtualOutbound', resource: { name: 'virtualOutbound' } }])],
  ]);
  const logs: string[] = [];
  const server = new DiscoveryServer<FakePush>({
    store,
    registry,
    buildPushContext: build,
    generators,
    debounce: { afterMs: 100, maxMs: 1000 },
    clock,
    logger: { info: (m) => logs.push(m), warn: (m) => logs.push(`WARN ${m}`) },
  });
  server.start();
  let streams = 0;
  // What the AdsServer does for a stream's first request: nodeKey(node), then a 'connect' event.
  const connect = (n: Node): string => {
    const streamId = `s${++streams}`;
    const nodeKey = server.cache.nodeKey(n);
    server.ads.emit('connect', { streamId, mode: 'sotw', nodeKey, node: { id: n.id ?? '', cluster: '', metadata: {} }, peer: 'test' });
    return streamId;
  };
  const disconnect = (n: Node, streamId: string) => server.ads.emit('disconnect', { streamId, mode: 'sotw', nodeKey: n.id ?? '', reason: 'test' });
  const names = (n: Node, typeUrl: string) => [...(server.cache.resources(n.id ?? '', typeUrl)?.resources.keys() ?? [])].sort();
  return { store, registry, clock, calls, server, logs, connect, disconnect, names };
}

test('a new proxy gets every type; identical proxies share one generation per type (cache hits)', async (t) => {
  const f = setup({ initial: [virtualService('reviews')] });
  t.after(() => f.server.close());
  const a = node('productpage-v1-aaa', 'productpage');
  const b = node('productpage-v1-bbb', 'productpage');
  f.connect(a);
  f.connect(b);
  await flush();
  await f.server.idle();
  assert.deepEqual(f.names(a, CLUSTER), ['reviews']);
  assert.deepEqual(f.names(b, LISTENER), ['virtualOutbound']);
  assert.equal(f.calls.filter((c) => c.type === CLUSTER).length, 1, 'the second replica reused the first one\'s clusters');
  assert.deepEqual(f.server.xdsCacheStats().hits, 3);
  assert.equal(f.server.metrics.cacheReads.get({ type: 'hit' }), 3);
  assert.equal(f.server.metrics.connected.get(), 2);
});

test('a config change is debounced, builds one PushContext and reaches only the affected proxies', async (t) => {
  const f = setup();
  t.after(() => f.server.close());
  const productpage = node('productpage-v1-aaa', 'productpage');
  const ratings = node('ratings-v1-aaa', 'ratings');
  f.connect(productpage);
  f.connect(ratings);
  await flush();
  await f.server.idle();
  f.calls.length = 0;
  f.store.set(virtualService('reviews'));
  f.store.set(virtualService('ratings'));
  await f.clock.advance(99);
  assert.equal(f.calls.length, 0, 'nothing before the quiet period');
  await f.clock.advance(1);
  await f.server.idle();
  assert.equal(f.server.pushGeneration, 2, 'two changes, one new PushContext');
  assert.deepEqual(f.names(productpage, CLUSTER), ['ratings', 'reviews']);
  assert.deepEqual(f.names(ratings, CLUSTER), [], 'ratings is not affected and keeps its config');
  assert.ok(f.calls.every((c) => c.proxy === 'productpage-v1-aaa'));
  assert.equal(f.server.metrics.configEvents.get({ type: 'VirtualService', event: 'add' }), 2);
  assert.equal(f.server.metrics.convergence.count(), 3, 'two initial pushes and one config push');
});

test('an endpoint-only registry change regenerates EDS only', async (t) => {
  const f = setup();
  t.after(() => f.server.close());
  const productpage = node('productpage-v1-aaa', 'productpage');
  f.connect(productpage);
  await flush();
  await f.server.idle();
  f.calls.length = 0;
  f.registry.setInstances(HOST, 'default', [instance('10.0.1.1'), instance('10.0.1.2')]);
  await f.clock.advance(100);
  await f.server.idle();
  assert.deepEqual(f.calls.map((c) => c.type), [CLUSTER_LOAD_ASSIGNMENT]);
  const cla = f.server.cache.resources(productpage.id!, CLUSTER_LOAD_ASSIGNMENT)!.resources.get('reviews');
  assert.ok(cla);
  assert.equal(f.server.metrics.pushTriggers.get({ type: 'endpoint' }), 1);
});

test('a proxy whose first generation fails gets nothing (not an empty config) until a later push succeeds', async (t) => {
  let fail = true;
  const f = setup({ failCds: () => fail });
  t.after(() => f.server.close());
  const productpage = node('productpage-v1-aaa', 'productpage');
  f.connect(productpage);
  await flush();
  await f.server.idle();
  assert.equal(f.server.cache.resources(productpage.id!, LISTENER), undefined, 'the stream keeps waiting');
  assert.equal(f.server.metrics.generateErrors.get({ type: 'cds' }), 1);
  assert.ok(f.logs.some((l) => l.startsWith('WARN generating CDS for') && l.includes('cds generator failed')));
  fail = false;
  f.store.set(virtualService('reviews'));
  await f.clock.advance(100);
  await f.server.idle();
  assert.deepEqual(f.names(productpage, CLUSTER), ['reviews']);
});

test('a PushContext that cannot be built is counted and the previous one keeps serving', async (t) => {
  let fail = false;
  const f = setup({ failBuild: () => fail });
  t.after(() => f.server.close());
  const productpage = node('productpage-v1-aaa', 'productpage');
  f.connect(productpage);
  await flush();
  await f.server.idle();
  fail = true;
  f.store.set(virtualService('reviews'));
  await f.clock.advance(100);
  await f.server.idle();
  assert.equal(f.server.metrics.pushContextErrors.get(), 1);
  assert.equal(f.server.pushContext?.version, 'v1');
  assert.deepEqual(f.names(productpage, LISTENER), ['virtualOutbound']);
});

test('non-Istio node ids are refused with a clear log; the last stream of a proxy going away forgets it', async (t) => {
  const f = setup();
  t.after(() => f.server.close());
  f.connect({ id: 'envoy-1' });
  assert.ok(f.logs.some((l) => l.startsWith('WARN refusing xDS stream') && l.includes('"envoy-1"') && l.includes('sidecar~')));
  const productpage = node('productpage-v1-aaa', 'productpage');
  const s1 = f.connect(productpage);
  const s2 = f.connect(productpage);
  await flush();
  await f.server.idle();
  f.disconnect(productpage, s1);
  assert.equal(f.server.connectedProxies().length, 1, 'one stream still open');
  assert.deepEqual(f.names(productpage, LISTENER), ['virtualOutbound']);
  f.disconnect(productpage, s2);
  assert.equal(f.server.connectedProxies().length, 0);
  assert.equal(f.server.cache.resources(productpage.id!, LISTENER), undefined, 'its snapshot is cleared');
});
