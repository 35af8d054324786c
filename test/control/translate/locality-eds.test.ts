// Locality-aware EDS through the generators: each proxy's priorities follow its own locality (and share per locality),
// outlierDetection turns failover on, `enabled: false` and the mesh default decide, distribute sets CDS's locality weighting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../src/control/registry/index.js';
import { buildPushContext, type PushContext } from '../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../../../src/control/model/mesh-config.js';
import { proxyFromNode, type Proxy } from '../../../src/control/model/proxy.js';
import type { PushRequest } from '../../../src/control/model/push-request.js';
import { createGenerators } from '../../../src/control/translate/generators/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT } from '../../../src/xds/type-urls.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
type Cluster = envoy.config.cluster.v3.Cluster;

const REQUEST: PushRequest = { full: true, configsUpdated: [], reasons: ['test'], start: 0 };
const generators = createGenerators();
const CLUSTER_NAME = 'outbound|8080||zonal.default.svc.cluster.local';

const REGISTRY = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: zonal, namespace: default }
spec:
  hosts: [zonal.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: zonal } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: zonal-a, namespace: default }
spec: { address: 10.0.0.1, labels: { app: zonal }, locality: r1/za }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: zonal-b, namespace: default }
spec: { address: 10.0.0.2, labels: { app: zonal }, locality: r1/zb }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: zonal-c, namespace: default }
spec: { address: 10.0.0.3, labels: { app: zonal }, locality: r2/zc }
`;

function rule(trafficPolicy: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: zonal, namespace: default }
spec:
  host: zonal
  trafficPolicy:
${trafficPolicy.replace(/^/gm, '    ')}
`;
}

const OUTLIER = 'outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s }';

async function push(files: Record<string, string>, mesh: Partial<MeshConfig> = {}): Promise<PushContext> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-locality-eds-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const store = new FileConfigStore({ dir, watch: false });
    await store.start();
    assert.deepEqual(store.problems(), []);
    const registry = new ServiceEntryRegistry(store);
    const context = buildPushContext({ store, registry, mesh: { ...DEFAULT_MESH_CONFIG, ...mesh } });
    registry.close();
    await store.close();
    return context;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function caller(name: string, locality: { region: string; zone: string }): Proxy {
  return proxyFromNode({
    id: `sidecar~127.0.0.1~${name}.default~default.svc.cluster.local`,
    locality,
    metadata: { fields: { NAMESPACE: { string_value: 'default' }, LABELS: { struct_value: { fields: { app: { string_value: name } } } } } },
  });
}

function assignment(proxy: Proxy, context: PushContext): ClusterLoadAssignment {
  const found = generators.get(CLUSTER_LOAD_ASSIGNMENT)!.generate(proxy, context, REQUEST).find((r) => r.name === CLUSTER_NAME);
  assert.ok(found, `EDS has ${CLUSTER_NAME}`);
  return found.resource as ClusterLoadAssignment;
}

/** Each locality's zone with its priority, in the order sent. */
function ranks(cla: ClusterLoadAssignment): string[] {
  return (cla.endpoints ?? []).map((l) => `${l.locality?.zone}:${l.priority ?? 0}`);
}

test('with outlierDetection, each caller gets priorities by proximity to its own locality; callers of one locality share the assignment', async () => {
  const context = await push({ 'registry.yaml': REGISTRY, 'dr.yaml': rule(OUTLIER) });
  assert.deepEqual(ranks(assignment(caller('in-a', { region: 'r1', zone: 'za' }), context)), ['za:0', 'zb:1', 'zc:2']);
  assert.deepEqual(ranks(assignment(caller('in-b', { region: 'r1', zone: 'zb' }), context)), ['zb:0', 'za:1', 'zc:2']);
  assert.deepEqual(ranks(assignment(caller('in-c', { region: 'r2', zone: 'zc' }), context)), ['zc:0', 'za:1', 'zb:1']);
  // Two callers in zone a: one shared, interned assignment.
  assert.equal(assignment(caller('in-a', { region: 'r1', zone: 'za' }), context), assignment(caller('other-in-a', { region: 'r1', zone: 'za' }), context));
});

test('without outlierDetection there is no failover (Istio): every locality at priority 0, the same for every caller', async () => {
  const context = await push({ 'registry.yaml': REGISTRY, 'dr.yaml': rule('loadBalancer: { simple: ROUND_ROBIN }') });
  const a = assignment(caller('in-a', { region: 'r1', zone: 'za' }), context);
  assert.deepEqual(ranks(a), ['za:0', 'zb:0', 'zc:0']);
  assert.equal(assignment(caller('in-c', { region: 'r2', zone: 'zc' }), context), a);
});

test('failover regions re-rank; enabled: false (rule or mesh) turns it off; distribute weights localities and sets locality_weighted_lb_config', async () => {
  const failover = await push({ 'registry.yaml': REGISTRY, 'dr.yaml': rule(`${OUTLIER}\nloadBalancer:\n  localityLbSetting:\n    failover: [{ from: r2, to: r1 }]`) });
  assert.deepEqual(ranks(assignment(caller('in-c', { region: 'r2', zone: 'zc' }), failover)), ['zc:0', 'za:1', 'zb:1']);

  const off = await push({ 'registry.yaml': REGISTRY, 'dr.yaml': rule(`${OUTLIER}\nloadBalancer:\n  localityLbSetting: { enabled: false }`) });
  assert.deepEqual(ranks(assignment(caller('in-a', { region: 'r1', zone: 'za' }), off)), ['za:0', 'zb:0', 'zc:0']);
  const meshOff = await push({ 'registry.yaml': REGISTRY, 'dr.yaml': rule(OUTLIER) }, { localityLbSetting: { enabled: false } });
  assert.deepEqual(ranks(assignment(caller('in-a', { region: 'r1', zone: 'za' }), meshOff)), ['za:0', 'zb:0', 'zc:0']);

  const distribute = await push({ 'registry.yaml': REGISTRY, 'dr.yaml': rule(`loadBalancer:\n  localityLbSetting:\n    distribute: [{ from: r1/za/*, to: { r1/za/*: 70, r2/*: 30 } }]`) });
  const cla = assignment(caller('in-a', { region: 'r1', zone: 'za' }), distribute);
  assert.deepEqual((cla.endpoints ?? []).map((l) => `${l.locality?.zone}:${l.load_balancing_weight?.value}`), ['za:70', 'zc:30']);
  const clusters = generators.get(CLUSTER)!.generate(caller('in-a', { region: 'r1', zone: 'za' }), distribute, REQUEST).map((r) => r.resource as Cluster);
  assert.deepEqual(clusters.find((c) => c.name === CLUSTER_NAME)?.common_lb_config?.locality_weighted_lb_config, {});
  const plain = generators.get(CLUSTER)!.generate(caller('in-a', { region: 'r1', zone: 'za' }), failover, REQUEST).map((r) => r.resource as Cluster);
  assert.equal(plain.find((c) => c.name === CLUSTER_NAME)?.common_lb_config?.locality_weighted_lb_config, undefined);
});

test('the EDS cache key names the locality setting: callers of one locality under rules that differ only in distribute weights do not share; under the same rule they do', async () => {
  const selected = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: zonal-selected, namespace: default }
spec:
  host: zonal
  workloadSelector: { matchLabels: { app: selected } }
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute: [{ from: r1/za/*, to: { r1/za/*: 50, r2/*: 50 } }]
`;
  const context = await push({ 'registry.yaml': REGISTRY, 'dr.yaml': rule('loadBalancer:\n  localityLbSetting:\n    distribute: [{ from: r1/za/*, to: { r1/za/*: 70, r2/*: 30 } }]'), 'selected.yaml': selected });
  const weights = (cla: ClusterLoadAssignment) => (cla.endpoints ?? []).map((l) => `${l.locality?.zone}:${l.load_balancing_weight?.value}`);
  const plain = assignment(caller('plain', { region: 'r1', zone: 'za' }), context);
  assert.deepEqual(weights(plain), ['za:70', 'zc:30']);
  assert.deepEqual(weights(assignment(caller('selected', { region: 'r1', zone: 'za' }), context)), ['za:50', 'zc:50']);
  assert.equal(assignment(caller('plain-too', { region: 'r1', zone: 'za' }), context), plain);
});
