// ServiceEntryRegistry: Bookinfo from its fixture, short names, workloadSelector, endpoint ports, and service vs endpoint-only changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { FileConfigStore, MemoryConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry, isEndpointOnlyChange, type RegistryChange } from '../../../src/control/registry/index.js';
import { TempDir, resources, serviceEntryYaml, waitFor, workloadEntryYaml } from '../support.js';

const BOOKINFO = fileURLToPath(new URL('../../../../test/fixtures/bookinfo/', import.meta.url));

function storeWith(yaml: string): MemoryConfigStore {
  const store = new MemoryConfigStore();
  store.set(...resources(yaml));
  return store;
}

function recorder(registry: ServiceEntryRegistry): RegistryChange[] {
  const changes: RegistryChange[] = [];
  registry.onChange((c) => changes.push(c));
  return changes;
}

const sorted = (set: ReadonlySet<string>) => [...set].sort();

test('Bookinfo: four services with their ports, and one instance per WorkloadEntry the service selects', async () => {
  const store = new FileConfigStore({ dir: BOOKINFO, watch: false });
  await store.start();
  try {
    assert.deepEqual(store.problems(), []);
    const registry = new ServiceEntryRegistry(store);
    assert.deepEqual(registry.services().map((s) => s.hostname), [
      'details.default.svc.cluster.local',
      'productpage.default.svc.cluster.local',
      'ratings.default.svc.cluster.local',
      'reviews.default.svc.cluster.local',
    ]);
    const reviews = registry.getService('reviews', 'default')!;
    assert.deepEqual(reviews.ports, [{ name: 'http', number: 9080, protocol: 'HTTP' }]);
    assert.equal(reviews.resolution, 'STATIC');
    assert.equal(reviews.location, 'MESH_INTERNAL');
    assert.deepEqual(reviews.exportTo, ['*']);
    assert.deepEqual({ kind: reviews.source.kind, name: reviews.source.name }, { kind: 'ServiceEntry', name: 'reviews' });
    assert.match(reviews.source.origin!.source, /services\.yaml$/);

    const instances = registry.instances('reviews', { namespace: 'default', port: 9080 });
    assert.deepEqual(instances.map((i) => `${i.address}:${i.port} ${i.labels.version} ${i.serviceAccount} ${i.tlsMode} w${i.weight}`), [
      '127.0.0.1:19082 v1 bookinfo-reviews istio w1',
      '127.0.0.1:19083 v2 bookinfo-reviews istio w1',
      '127.0.0.1:19084 v3 bookinfo-reviews istio w1',
    ]);
    assert.deepEqual(instances.map((i) => i.source.name), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
    assert.deepEqual(registry.instances('productpage.default.svc.cluster.local').map((i) => `${i.address}:${i.port}`), ['127.0.0.1:19080']);
    assert.deepEqual(registry.instances('details', { namespace: 'default' }).map((i) => i.port), [19081]);
    assert.deepEqual(registry.instances('ratings', { namespace: 'default' }).map((i) => i.port), [19085]);
    assert.deepEqual(registry.instances('reviews', { namespace: 'default', port: 9999 }), []);
    assert.deepEqual(registry.instances('reviews', { namespace: 'other' }), [], 'a short name resolves in the namespace that names it');
    registry.close();
  } finally {
    await store.close();
  }
});

test('short host names resolve within the ServiceEntry\'s namespace, under a configurable domain suffix', () => {
  const store = storeWith(serviceEntryYaml('reviews', 'hosts: [reviews, api.example.com, "*.wild.example.com"]\nlocation: MESH_INTERNAL\nports: [{number: 9080, name: http, protocol: HTTP}]', 'shop'));
  const registry = new ServiceEntryRegistry(store);
  assert.deepEqual(registry.services().map((s) => s.hostname), ['*.wild.example.com', 'api.example.com', 'reviews.shop.svc.cluster.local']);
  assert.equal(registry.getService('reviews', 'shop')?.hostname, 'reviews.shop.svc.cluster.local');
  assert.equal(registry.getService('reviews', 'default'), undefined);
  assert.equal(registry.getService('reviews'), undefined, 'without a namespace a short name is taken literally');
  assert.equal(registry.getService('api.example.com', 'anywhere')?.namespace, 'shop');

  const custom = new ServiceEntryRegistry(store, { domainSuffix: 'corp.internal' });
  assert.equal(custom.getService('reviews', 'shop')?.hostname, 'reviews.shop.svc.corp.internal');
});

test('workloadSelector selects WorkloadEntries of its own namespace by label; ports by name, else targetPort, else the port', () => {
  const store = storeWith([
    serviceEntryYaml('api', `hosts: [api.shop.svc.cluster.local]
location: MESH_INTERNAL
resolution: STATIC
ports:
- {number: 80, name: http, protocol: HTTP, targetPort: 8080}
- {number: 9090, name: grpc-admin}
- {number: 5000, name: metrics}
workloadSelector:
  labels: {app: api}`, 'shop'),
    workloadEntryYaml('api-1', `address: 10.0.0.1
ports: {http: 18080}
labels: {app: api, version: v1}
locality: us-east1/us-east1-b/rack7
weight: 5
serviceAccount: api
network: net-a`, 'shop'),
    workloadEntryYaml('api-2', 'address: 10.0.0.2\nlabels: {app: api, version: v2, security.istio.io/tlsMode: disabled}', 'shop'),
    workloadEntryYaml('web-1', 'address: 10.0.0.3\nlabels: {app: web}', 'shop'),
    workloadEntryYaml('api-elsewhere', 'address: 10.9.9.9\nlabels: {app: api}', 'other'),
  ].join(''));
  const registry = new ServiceEntryRegistry(store);
  const service = registry.getService('api.shop.svc.cluster.local')!;
  assert.deepEqual(service.ports.map((p) => `${p.name}/${p.number}/${p.protocol}`), ['http/80/HTTP', 'grpc-admin/9090/GRPC', 'metrics/5000/TCP']);
  const list = registry.instances('api.shop.svc.cluster.local');
  assert.deepEqual(list.map((i) => `${i.servicePort.name} ${i.address}:${i.port}`), [
    'http 10.0.0.1:18080',
    'http 10.0.0.2:8080',
    'grpc-admin 10.0.0.1:9090',
    'grpc-admin 10.0.0.2:9090',
    'metrics 10.0.0.1:5000',
    'metrics 10.0.0.2:5000',
  ]);
  const one = list[0]!;
  assert.deepEqual(one.locality, { region: 'us-east1', zone: 'us-east1-b', subzone: 'rack7' });
  assert.equal(one.weight, 5);
  assert.equal(one.serviceAccount, 'api');
  assert.equal(one.network, 'net-a');
  assert.equal(one.tlsMode, 'istio', 'a workload with a service account speaks Istio mTLS');
  assert.equal(one.healthStatus, 'HEALTHY');
  const two = list[1]!;
  assert.equal(two.tlsMode, 'disabled', 'the tlsMode label wins');
  assert.equal(two.weight, 1);
  assert.deepEqual(two.locality, { region: '', zone: '', subzone: '' });
  assert.equal(two.serviceAccount, undefined);
});

test('inline endpoints, DNS without endpoints, NONE, and MESH_EXTERNAL', () => {
  const store = storeWith([
    serviceEntryYaml('inline', `hosts: [db.internal]
location: MESH_INTERNAL
resolution: STATIC
ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
endpoints:
- {address: 10.1.0.1, labels: {role: primary}}
- {address: 10.1.0.2, ports: {tcp-pg: 6432}, weight: 3}`),
    serviceEntryYaml('external', `hosts: [api.github.com]
location: MESH_EXTERNAL
resolution: DNS
ports: [{number: 443, name: https, protocol: HTTPS}]`),
    serviceEntryYaml('passthrough', `hosts: ["*.google.com"]
resolution: NONE
ports: [{number: 443, name: tls, protocol: TLS}]`),
  ].join(''));
  const registry = new ServiceEntryRegistry(store);
  assert.deepEqual(registry.instances('db.internal').map((i) => `${i.address}:${i.port} w${i.weight} ${i.source.name}`), ['10.1.0.1:5432 w1 inline', '10.1.0.2:6432 w3 inline']);
  const github = registry.instances('api.github.com');
  assert.deepEqual(github.map((i) => `${i.address}:${i.port} ${i.tlsMode}`), ['api.github.com:443 disabled'], 'DNS without endpoints resolves the host itself');
  assert.equal(registry.getService('api.github.com')?.location, 'MESH_EXTERNAL');
  assert.equal(registry.getService('*.google.com')?.resolution, 'NONE');
  assert.deepEqual(registry.instances('*.google.com'), []);
});

test('a WorkloadEntry that moves, changes weight or labels is an endpoint-only change; a port or resolution change is a service change', () => {
  const store = storeWith([
    serviceEntryYaml('reviews', 'hosts: [reviews]\nlocation: MESH_INTERNAL\nresolution: STATIC\nports: [{number: 9080, name: http, protocol: HTTP}]\nworkloadSelector: {labels: {app: reviews}}'),
    serviceEntryYaml('ratings', 'hosts: [ratings]\nlocation: MESH_INTERNAL\nresolution: STATIC\nports: [{number: 9080, name: http, protocol: HTTP}]\nworkloadSelector: {labels: {app: ratings}}'),
    workloadEntryYaml('reviews-v1', 'address: 10.0.0.1\nlabels: {app: reviews, version: v1}'),
    workloadEntryYaml('ratings-v1', 'address: 10.0.0.9\nlabels: {app: ratings}'),
  ].join(''));
  const registry = new ServiceEntryRegistry(store);
  const changes = recorder(registry);
  const REVIEWS = 'reviews.default.svc.cluster.local';
  const we = (spec: string) => resources(workloadEntryYaml('reviews-v1', spec))[0]!;

  store.set(we('address: 10.0.0.2\nlabels: {app: reviews, version: v1}'));
  assert.equal(changes.length, 1);
  assert.deepEqual(sorted(changes[0]!.services), []);
  assert.deepEqual(sorted(changes[0]!.endpoints), [REVIEWS]);
  assert.ok(isEndpointOnlyChange(changes[0]!));
  assert.equal(registry.instances(REVIEWS)[0]!.address, '10.0.0.2');

  store.set(we('address: 10.0.0.2\nweight: 7\nlabels: {app: reviews, version: v1}'));
  store.set(we('address: 10.0.0.2\nweight: 7\nlabels: {app: reviews, version: v2}'));
  assert.equal(changes.length, 3);
  assert.ok(changes.slice(1).every((c) => isEndpointOnlyChange(c) && sorted(c.endpoints).join() === REVIEWS));

  // Relabelled out of reviews and into ratings: the endpoints of both change, and no service does.
  store.set(we('address: 10.0.0.2\nlabels: {app: ratings}'));
  assert.deepEqual(sorted(changes[3]!.endpoints), ['ratings.default.svc.cluster.local', REVIEWS]);
  assert.ok(isEndpointOnlyChange(changes[3]!));
  assert.deepEqual(registry.instances(REVIEWS), []);

  // A WorkloadEntry no ServiceEntry selects, and other kinds: no change at all.
  store.set(...resources(workloadEntryYaml('stray', 'address: 10.0.0.50\nlabels: {app: nobody}')));
  store.set(...resources('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: default}\nspec: {host: reviews}\n'));
  assert.equal(changes.length, 4);

  store.set(...resources(serviceEntryYaml('reviews', 'hosts: [reviews]\nlocation: MESH_INTERNAL\nresolution: STATIC\nports: [{number: 9081, name: http, protocol: HTTP}]\nworkloadSelector: {labels: {app: reviews}}')));
  assert.deepEqual(sorted(changes[4]!.services), [REVIEWS]);
  assert.ok(!isEndpointOnlyChange(changes[4]!));

  store.delete('ServiceEntry', 'default', 'reviews');
  assert.deepEqual(sorted(changes[5]!.services), [REVIEWS]);
  assert.equal(registry.getService(REVIEWS), undefined);
  registry.close();
});

test('live: editing a WorkloadEntry file reaches the registry as an endpoint-only change', async () => {
  const dir = await TempDir.create();
  const store = new FileConfigStore({ dir: dir.path, debounceMs: 50 });
  try {
    await dir.write('services.yaml', serviceEntryYaml('reviews', 'hosts: [reviews]\nlocation: MESH_INTERNAL\nresolution: STATIC\nports: [{number: 9080, name: http, protocol: HTTP}]\nworkloadSelector: {labels: {app: reviews}}'));
    await dir.write('workloads/reviews-v1.yaml', workloadEntryYaml('reviews-v1', 'address: 10.0.0.1\nlabels: {app: reviews}'));
    await store.start();
    const registry = new ServiceEntryRegistry(store);
    const changes = recorder(registry);
    await dir.write('workloads/reviews-v1.yaml', workloadEntryYaml('reviews-v1', 'address: 10.0.0.77\nlabels: {app: reviews}'));
    await waitFor('the new address', () => registry.instances('reviews', { namespace: 'default' })[0]?.address === '10.0.0.77');
    assert.ok(changes.length >= 1 && changes.every(isEndpointOnlyChange));

    // An invalid edit changes nothing: the last valid WorkloadEntry keeps its endpoint.
    await dir.write('workloads/reviews-v1.yaml', workloadEntryYaml('reviews-v1', 'address: not an address!\nlabels: {app: reviews}'));
    await waitFor('the problem', () => store.problems().some((p) => p.resource === 'WorkloadEntry default/reviews-v1' && p.path === 'spec.address'));
    assert.equal(registry.instances('reviews', { namespace: 'default' })[0]?.address, '10.0.0.77');

    await dir.remove('workloads');
    await waitFor('no endpoints', () => registry.instances('reviews', { namespace: 'default' }).length === 0);
    assert.ok(registry.getService('reviews', 'default'), 'the service stays');
    registry.close();
  } finally {
    await store.close();
    await dir.dispose();
  }
});
