// MemoryServiceRegistry and AggregateServiceRegistry: programmatic services, change sets, precedence and merged endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregateServiceRegistry, MemoryServiceRegistry, isEndpointOnlyChange, type RegistryChange, type Service, type ServiceInstance } from '../../../src/control/registry/index.js';
import { hostMatches, resolveHostname } from '../../../src/control/model/hostname.js';

function service(hostname: string, namespace = 'default', port = 80): Service {
  return {
    hostname, namespace, ports: [{ name: 'http', number: port, protocol: 'HTTP' }], resolution: 'STATIC', location: 'MESH_INTERNAL',
    addresses: [], exportTo: ['*'], source: { registry: 'memory', namespace, name: hostname },
  };
}

function instance(svc: Service, address: string): ServiceInstance {
  return {
    hostname: svc.hostname, namespace: svc.namespace, servicePort: svc.ports[0]!, address, port: 8080, labels: {},
    locality: { region: '', zone: '', subzone: '' }, weight: 1, tlsMode: 'disabled', healthStatus: 'HEALTHY', source: svc.source,
  };
}

test('resolveHostname and hostMatches follow Istio', () => {
  assert.equal(resolveHostname('reviews', 'default'), 'reviews.default.svc.cluster.local');
  assert.equal(resolveHostname('reviews', 'prod', 'example.internal'), 'reviews.prod.svc.example.internal');
  assert.equal(resolveHostname('reviews.prod', 'default'), 'reviews.prod', 'a dotted name is taken as written');
  assert.equal(resolveHostname('*', 'default'), '*');
  assert.equal(resolveHostname('*.example.com', 'default'), '*.example.com');
  assert.equal(resolveHostname('10.0.0.1', 'default'), '10.0.0.1');
  assert.equal(resolveHostname('::1', 'default'), '::1');
  assert.ok(hostMatches('*.example.com', 'a.b.example.com'));
  assert.ok(!hostMatches('*.example.com', 'example.com'));
  assert.ok(hostMatches('*', 'anything'));
  assert.ok(!hostMatches('a.example.com', 'b.example.com'));
});

test('memory registry: service and endpoint changes are told apart', () => {
  const registry = new MemoryServiceRegistry();
  const changes: RegistryChange[] = [];
  registry.onChange((c) => changes.push(c));
  const svc = service('a.default.svc.cluster.local');
  registry.setService(svc, [instance(svc, '10.0.0.1')]);
  assert.deepEqual([...changes[0]!.services], [svc.hostname]);
  registry.setInstances(svc.hostname, 'default', [instance(svc, '10.0.0.2')]);
  assert.ok(isEndpointOnlyChange(changes[1]!));
  registry.setService({ ...svc });
  assert.equal(changes.length, 2, 'an identical definition is no change');
  assert.equal(registry.instances('a', { namespace: 'default' })[0]?.address, '10.0.0.2', 'setService without instances keeps them');
  registry.deleteService(svc.hostname, 'default');
  assert.deepEqual([...changes[2]!.services], [svc.hostname]);
  assert.deepEqual([...changes[2]!.endpoints], [svc.hostname]);
  assert.deepEqual(registry.services(), []);
});

test('aggregate registry: the first registry\'s service wins, endpoints of all registries are merged, changes pass through', () => {
  const first = new MemoryServiceRegistry({ name: 'first' });
  const second = new MemoryServiceRegistry({ name: 'second' });
  const shared1 = service('shared.example.com', 'default', 80);
  const shared2 = service('shared.example.com', 'default', 8080);
  first.setService(shared1, [instance(shared1, '10.0.0.1')]);
  second.setService(shared2, [instance(shared2, '10.0.0.2')]);
  second.setService(service('only.example.com', 'other'));
  const agg = new AggregateServiceRegistry([first, second]);
  const changes: RegistryChange[] = [];
  agg.onChange((c) => changes.push(c));
  assert.deepEqual(agg.services().map((s) => `${s.hostname} ${s.ports[0]!.number}`), ['only.example.com 80', 'shared.example.com 80']);
  assert.equal(agg.getService('shared.example.com')?.ports[0]?.number, 80);
  assert.deepEqual(agg.instances('shared.example.com').map((i) => i.address), ['10.0.0.1', '10.0.0.2']);
  second.setInstances('shared.example.com', 'default', []);
  assert.equal(changes.length, 1);
  assert.ok(isEndpointOnlyChange(changes[0]!));
  assert.deepEqual(agg.instances('shared.example.com').map((i) => i.address), ['10.0.0.1']);
  agg.close();
});
