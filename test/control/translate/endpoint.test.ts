// EDS builder: locality grouping and weights, subset filtering, health, metadata, ordering, and codec/client acceptance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalityLoadBalancerSetting } from '../../../src/api/index.js';
import type { ServiceInstance, ServicePort, HealthStatus, TlsMode } from '../../../src/control/model/service.js';
import { buildClusterLoadAssignment, type ClusterLoadAssignment } from '../../../src/control/translate/endpoint/index.js';
import { decodeMessage, encodeMessage, packAny, toJson } from '../../../src/xds/codec.js';
import { clusterLoadAssignmentResourceType } from '../../../src/xds/client/resource-types/index.js';

const REVIEWS = 'reviews.default.svc.cluster.local';
const HTTP: ServicePort = { name: 'http', number: 9080, protocol: 'HTTP' };
const CLA = 'envoy.config.endpoint.v3.ClusterLoadAssignment';

interface InstanceSpec {
  name: string;
  address: string;
  port?: number;
  version?: string;
  locality?: string;
  weight?: number;
  health?: HealthStatus;
  tlsMode?: TlsMode;
  servicePort?: ServicePort;
  hostname?: string;
}

function instance(spec: InstanceSpec): ServiceInstance {
  const [region = '', zone = '', subzone = ''] = (spec.locality ?? '').split('/');
  return {
    hostname: spec.hostname ?? REVIEWS,
    namespace: 'default',
    servicePort: spec.servicePort ?? HTTP,
    address: spec.address,
    port: spec.port ?? 9080,
    labels: { app: 'reviews', ...(spec.version ? { version: spec.version } : {}) },
    locality: { region, zone, subzone },
    weight: spec.weight ?? 1,
    serviceAccount: 'bookinfo-reviews',
    tlsMode: spec.tlsMode ?? 'istio',
    healthStatus: spec.health ?? 'HEALTHY',
    source: { registry: 'ServiceEntry', kind: 'WorkloadEntry', namespace: 'default', name: spec.name },
  };
}

/** Reviews v1/v2/v3 across two zones, with weights. */
const REVIEWS_INSTANCES: ServiceInstance[] = [
  instance({ name: 'reviews-v3', address: '10.0.1.3', version: 'v3', locality: 'us-east/zone-a', weight: 5 }),
  instance({ name: 'reviews-v1', address: '10.0.1.1', version: 'v1', locality: 'us-east/zone-a', weight: 2 }),
  instance({ name: 'reviews-v2', address: '10.0.1.2', version: 'v2', locality: 'us-east/zone-b/rack-1', weight: 3 }),
  instance({ name: 'reviews-v2b', address: '10.0.1.4', version: 'v2', locality: 'us-east/zone-b/rack-1' }),
];

function addresses(cla: ClusterLoadAssignment): string[][] {
  return (cla.endpoints ?? []).map((l) => (l.lb_endpoints ?? []).map((e) => e.endpoint!.address!.socket_address!.address!));
}

test('endpoints are grouped by locality (sorted), each locality weighted by the sum of its endpoint weights', () => {
  const cla = buildClusterLoadAssignment(`outbound|9080||${REVIEWS}`, REVIEWS_INSTANCES);
  assert.equal(cla.cluster_name, `outbound|9080||${REVIEWS}`);
  assert.equal(cla.endpoints?.length, 2);
  const [a, b] = cla.endpoints!;
  assert.deepEqual(a!.locality, { region: 'us-east', zone: 'zone-a' });
  assert.deepEqual(a!.load_balancing_weight, { value: 7 });
  assert.deepEqual(b!.locality, { region: 'us-east', zone: 'zone-b', sub_zone: 'rack-1' });
  assert.deepEqual(b!.load_balancing_weight, { value: 4 });
  assert.deepEqual(addresses(cla), [['10.0.1.1', '10.0.1.3'], ['10.0.1.2', '10.0.1.4']]);
  const first = a!.lb_endpoints![0]!;
  assert.deepEqual(first.endpoint, { address: { socket_address: { address: '10.0.1.1', port_value: 9080 } } });
  assert.deepEqual(first.load_balancing_weight, { value: 2 });
  assert.equal(first.health_status, 'HEALTHY');
  assert.deepEqual(first.metadata, {
    filter_metadata: {
      'envoy.transport_socket_match': { fields: { tlsMode: { string_value: 'istio' } } },
      istio: { fields: { workload: { string_value: 'reviews-v1;default;reviews;v1;' } } },
    },
  });
});

test('subset labels keep only the instances that carry all of them', () => {
  const v2 = buildClusterLoadAssignment(`outbound|9080|v2|${REVIEWS}`, REVIEWS_INSTANCES, { subsetLabels: { version: 'v2' } });
  assert.deepEqual(addresses(v2), [['10.0.1.2', '10.0.1.4']]);
  assert.deepEqual(v2.endpoints![0]!.load_balancing_weight, { value: 4 });
  const both = buildClusterLoadAssignment(`outbound|9080|v1|${REVIEWS}`, REVIEWS_INSTANCES, { subsetLabels: { version: 'v1', app: 'reviews' } });
  assert.deepEqual(addresses(both), [['10.0.1.1']]);
  const none = buildClusterLoadAssignment(`outbound|9080|v9|${REVIEWS}`, REVIEWS_INSTANCES, { subsetLabels: { version: 'v9' } });
  assert.deepEqual(none, { cluster_name: `outbound|9080|v9|${REVIEWS}` });
});

test('only the instances of the cluster\'s host and service port are used', () => {
  const other: ServicePort = { name: 'admin', number: 9090, protocol: 'HTTP' };
  const mixed = [
    ...REVIEWS_INSTANCES,
    instance({ name: 'reviews-admin', address: '10.0.1.1', port: 19090, servicePort: other }),
    instance({ name: 'ratings-v1', address: '10.0.2.1', hostname: 'ratings.default.svc.cluster.local' }),
  ];
  assert.deepEqual(addresses(buildClusterLoadAssignment(`outbound|9090||${REVIEWS}`, mixed)), [['10.0.1.1']]);
  assert.equal(buildClusterLoadAssignment(`outbound|9090||${REVIEWS}`, mixed).endpoints![0]!.lb_endpoints![0]!.endpoint!.address!.socket_address!.port_value, 19090);
  assert.equal(addresses(buildClusterLoadAssignment(`outbound|9080||${REVIEWS}`, mixed)).flat().length, 4);
});

test('like istiod: UNHEALTHY and DRAINING endpoints are dropped unless asked for, DNS names are not EDS endpoints, UNKNOWN health is left unset', () => {
  const list = [
    instance({ name: 'ok', address: '10.0.0.1' }),
    instance({ name: 'sick', address: '10.0.0.2', health: 'UNHEALTHY' }),
    instance({ name: 'leaving', address: '10.0.0.3', health: 'DRAINING' }),
    instance({ name: 'dns', address: 'reviews.example.com' }),
    instance({ name: 'unknown', address: '10.0.0.4', health: 'UNKNOWN' }),
  ];
  const name = `outbound|9080||${REVIEWS}`;
  assert.deepEqual(addresses(buildClusterLoadAssignment(name, list)), [['10.0.0.1', '10.0.0.4']]);
  const all = buildClusterLoadAssignment(name, list, { sendUnhealthyEndpoints: true, includeDraining: true });
  const statuses = all.endpoints![0]!.lb_endpoints!.map((e) => [e.endpoint!.address!.socket_address!.address, e.health_status]);
  assert.deepEqual(statuses, [['10.0.0.1', 'HEALTHY'], ['10.0.0.2', 'UNHEALTHY'], ['10.0.0.3', 'DRAINING'], ['10.0.0.4', undefined]]);
  assert.deepEqual(buildClusterLoadAssignment(name, []), { cluster_name: name });
});

test('tlsMode metadata only for sidecar endpoints, and not when mTLS to them is off; canonical revision "latest" is left out', () => {
  const plain = instance({ name: 'legacy', address: '10.0.0.9', tlsMode: 'disabled' });
  const name = `outbound|9080||${REVIEWS}`;
  const cla = buildClusterLoadAssignment(name, [plain]);
  assert.deepEqual(cla.endpoints![0]!.lb_endpoints![0]!.metadata, { filter_metadata: { istio: { fields: { workload: { string_value: 'legacy;default;reviews;;' } } } } });
  const off = buildClusterLoadAssignment(name, REVIEWS_INSTANCES, { mtlsEnabled: false, clusterId: 'Kubernetes' });
  for (const lb of off.endpoints!.flatMap((l) => l.lb_endpoints!)) {
    assert.equal(lb.metadata?.filter_metadata?.['envoy.transport_socket_match'], undefined);
    assert.match(lb.metadata!.filter_metadata!['istio']!.fields!['workload']!.string_value!, /;Kubernetes$/);
  }
});

test('no locality is an empty locality; a locality setting without outlier detection (no failover) changes nothing', () => {
  const list = [instance({ name: 'a', address: '10.0.0.1' }), instance({ name: 'b', address: '10.0.0.2', locality: 'eu' })];
  const name = `outbound|9080||${REVIEWS}`;
  const cla = buildClusterLoadAssignment(name, list);
  assert.deepEqual(cla.endpoints!.map((l) => l.locality), [{}, { region: 'eu' }]);
  const localityLb = { proxyLocality: { region: 'eu', zone: '', subzone: '' }, proxyLabels: {}, setting: { enabled: true }, enableFailover: false };
  assert.deepEqual(buildClusterLoadAssignment(name, list, { localityLb }), cla);
});

test('the order of the input does not matter: shuffled instances encode to the same bytes', () => {
  const name = `outbound|9080||${REVIEWS}`;
  const reference = encodeMessage(CLA, buildClusterLoadAssignment(name, REVIEWS_INSTANCES));
  for (const order of [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]]) {
    const shuffled = order.map((i) => REVIEWS_INSTANCES[i]!);
    assert.deepEqual(encodeMessage(CLA, buildClusterLoadAssignment(name, shuffled)), reference);
  }
});

test('every assignment round-trips through the codec and passes the xDS client\'s EDS validation', () => {
  const cases: [string, ClusterLoadAssignment][] = [
    ['all', buildClusterLoadAssignment(`outbound|9080||${REVIEWS}`, REVIEWS_INSTANCES)],
    ['v2', buildClusterLoadAssignment(`outbound|9080|v2|${REVIEWS}`, REVIEWS_INSTANCES, { subsetLabels: { version: 'v2' } })],
    ['empty', buildClusterLoadAssignment(`outbound|9080|v9|${REVIEWS}`, REVIEWS_INSTANCES, { subsetLabels: { version: 'v9' } })],
  ];
  for (const [label, cla] of cases) {
    const bytes = encodeMessage(CLA, cla);
    const decoded = decodeMessage<ClusterLoadAssignment>(CLA, bytes);
    assert.deepEqual(toJson(CLA, decoded), toJson(CLA, cla), label);
    assert.deepEqual(encodeMessage(CLA, decoded), bytes, label);
    const accepted = clusterLoadAssignmentResourceType.decode(packAny(CLA, cla), cla.cluster_name!);
    assert.equal(accepted.cluster_name, cla.cluster_name, label);
  }
});

/** Endpoints in five localities, for a caller in us-east/zone-a/rack-1. */
const SPREAD: ServiceInstance[] = [
  instance({ name: 'same', address: '10.0.0.1', locality: 'us-east/zone-a/rack-1' }),
  instance({ name: 'same-zone', address: '10.0.0.2', locality: 'us-east/zone-a/rack-2' }),
  instance({ name: 'same-region', address: '10.0.0.3', locality: 'us-east/zone-b/rack-1', weight: 3 }),
  instance({ name: 'us-west', address: '10.0.0.4', locality: 'us-west/zone-a' }),
  instance({ name: 'eu', address: '10.0.0.5', locality: 'eu-west/zone-a' }),
];
const CALLER = { region: 'us-east', zone: 'zone-a', subzone: 'rack-1' };

function priorities(cla: ClusterLoadAssignment): Array<[string, number]> {
  return (cla.endpoints ?? []).map((l) => [l.lb_endpoints![0]!.endpoint!.address!.socket_address!.address!, l.priority ?? 0]);
}

test('locality failover: priority 0 for the same subzone, 1 same zone, 2 same region, 3 elsewhere; sorted by priority', () => {
  const name = `outbound|9080||${REVIEWS}`;
  const cla = buildClusterLoadAssignment(name, SPREAD, { localityLb: { proxyLocality: CALLER, proxyLabels: {}, setting: { enabled: true }, enableFailover: true } });
  assert.deepEqual(priorities(cla), [['10.0.0.1', 0], ['10.0.0.2', 1], ['10.0.0.3', 2], ['10.0.0.5', 3], ['10.0.0.4', 3]]);
  // A caller in another region: everything of us-east is "another region" for it; priorities stay consecutive.
  const west = buildClusterLoadAssignment(name, SPREAD, { localityLb: { proxyLocality: { region: 'us-west', zone: 'zone-a', subzone: '' }, proxyLabels: {}, setting: {}, enableFailover: true } });
  assert.deepEqual(priorities(west), [['10.0.0.4', 0], ['10.0.0.5', 1], ['10.0.0.1', 1], ['10.0.0.2', 1], ['10.0.0.3', 1]]);
});

test('locality failover: `failover` from the caller\'s region ranks its `to` region before every other region', () => {
  const name = `outbound|9080||${REVIEWS}`;
  const setting = { failover: [{ from: 'us-east', to: 'us-west' }] };
  const cla = buildClusterLoadAssignment(name, SPREAD, { localityLb: { proxyLocality: CALLER, proxyLabels: {}, setting, enableFailover: true } });
  assert.deepEqual(priorities(cla), [['10.0.0.1', 0], ['10.0.0.2', 1], ['10.0.0.3', 2], ['10.0.0.4', 3], ['10.0.0.5', 4]]);
  // A rule for another region does not apply to this caller.
  const other = buildClusterLoadAssignment(name, SPREAD, { localityLb: { proxyLocality: CALLER, proxyLabels: {}, setting: { failover: [{ from: 'eu-west', to: 'us-west' }] }, enableFailover: true } });
  assert.deepEqual(priorities(other), [['10.0.0.1', 0], ['10.0.0.2', 1], ['10.0.0.3', 2], ['10.0.0.5', 3], ['10.0.0.4', 3]]);
});

test('failoverPriority: endpoints matching the caller\'s labels in order come first, localities split by priority; key=value overrides', () => {
  const name = `outbound|9080||${REVIEWS}`;
  const list = [
    { ...instance({ name: 'a1', address: '10.0.0.1', locality: 'r1/z1' }), labels: { app: 'reviews', network: 'n1', tier: 'gold' } },
    { ...instance({ name: 'a2', address: '10.0.0.2', locality: 'r1/z1' }), labels: { app: 'reviews', network: 'n1', tier: 'silver' } },
    { ...instance({ name: 'b1', address: '10.0.0.3', locality: 'r2/z1' }), labels: { app: 'reviews', network: 'n2', tier: 'gold' } },
  ];
  const setting = { failoverPriority: ['network', 'tier'] };
  const cla = buildClusterLoadAssignment(name, list, { localityLb: { proxyLocality: { region: 'r1', zone: 'z1', subzone: '' }, proxyLabels: { network: 'n1', tier: 'gold' }, setting, enableFailover: true } });
  // Without `failover`, only the label priorities apply (Istio): both labels match 0, network only 1, none 2.
  assert.deepEqual(priorities(cla), [['10.0.0.1', 0], ['10.0.0.2', 1], ['10.0.0.3', 2]]);
  const override = buildClusterLoadAssignment(name, list, { localityLb: { proxyLocality: { region: 'r1', zone: 'z1', subzone: '' }, proxyLabels: { network: 'n1' }, setting: { failoverPriority: ['network=n2'] }, enableFailover: true } });
  assert.deepEqual(priorities(override), [['10.0.0.3', 0], ['10.0.0.1', 1]]);
  assert.deepEqual(addresses(override), [['10.0.0.3'], ['10.0.0.1', '10.0.0.2']]);
  // The topology labels come from the localities: failoverPriority can name them.
  const byZone = buildClusterLoadAssignment(name, list, { localityLb: { proxyLocality: { region: 'r2', zone: 'z1', subzone: '' }, proxyLabels: {}, setting: { failoverPriority: ['topology.kubernetes.io/region'] }, enableFailover: true } });
  assert.deepEqual(priorities(byZone), [['10.0.0.3', 0], ['10.0.0.1', 1]]);
});

test('distribute: the first rule whose `from` matches the caller sets locality weights (wildcards share by weight), unnamed localities get none', () => {
  const name = `outbound|9080||${REVIEWS}`;
  const setting: LocalityLoadBalancerSetting = { distribute: [
    { from: 'eu-west/*', to: { 'eu-west/*': 100 } },
    { from: 'us-east/zone-a/*', to: { 'us-east/zone-a/*': 80, 'us-east/zone-b/*': 20 } },
  ] };
  // Failover is not applied with distribute, even with outlier detection.
  const cla = buildClusterLoadAssignment(name, SPREAD, { localityLb: { proxyLocality: CALLER, proxyLabels: {}, setting, enableFailover: true } });
  assert.deepEqual((cla.endpoints ?? []).map((l) => [l.lb_endpoints![0]!.endpoint!.address!.socket_address!.address!, l.load_balancing_weight?.value, l.priority ?? 0]), [
    ['10.0.0.1', 40, 0],
    ['10.0.0.2', 40, 0],
    ['10.0.0.3', 20, 0],
  ]);
  // No rule for this caller: the assignment is the plain one.
  const plain = buildClusterLoadAssignment(name, SPREAD);
  assert.deepEqual(buildClusterLoadAssignment(name, SPREAD, { localityLb: { proxyLocality: { region: 'ap', zone: '', subzone: '' }, proxyLabels: {}, setting, enableFailover: true } }), plain);
});
