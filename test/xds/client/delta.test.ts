// Delta (incremental) ADS as the proxy speaks it: wildcard "*", subscribe/unsubscribe diffs, removed_resources, per-resource versions, NACK.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { WILDCARD, clusterResourceType, type ResourceUpdate, type Cluster, type XdsClient } from '../../../src/xds/client/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER } from '../../../src/xds/type-urls.js';
import { FakeControlPlane } from '../../support/fake-control-plane.js';
import { NODE, clientOf, cluster, listener, loadAssignment } from './fixtures.js';

let fake: FakeControlPlane;
let client: XdsClient;

beforeEach(async () => {
  fake = await FakeControlPlane.start();
  client = clientOf(fake, { mode: 'delta' });
});

afterEach(async () => {
  client.close();
  await fake.close();
});

test('the first request subscribes "*" for a wildcard type and carries the node; no initial versions on a fresh start', async () => {
  client.subscribe(CLUSTER, WILDCARD);
  const first = await fake.nextDeltaRequest();
  assert.equal(first.type_url, CLUSTER);
  assert.deepEqual(first.resource_names_subscribe, ['*']);
  assert.deepEqual(first.initial_resource_versions ?? {}, {});
  assert.equal(first.node?.id, NODE.id);
  assert.equal(first.node?.user_agent_name, 'trellis');
  assert.equal(first.response_nonce ?? '', '');

  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews']);
  const eds = await fake.nextDeltaRequest();
  assert.deepEqual(eds.resource_names_subscribe, ['reviews']);
  assert.equal(eds.node, undefined);
});

test('a response is ACKed with its nonce alone, and per-resource versions are tracked', async () => {
  const updates: ResourceUpdate<Cluster>[] = [];
  client.onApply(clusterResourceType, (update) => void updates.push(update));
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextDeltaRequest();
  fake.respond({
    type_url: CLUSTER,
    system_version_info: 's1',
    nonce: 'd1',
    resources: [
      { name: 'reviews', version: 'r1', resource: cluster('reviews') },
      { name: 'ratings', version: 'r7', resource: cluster('ratings') },
    ],
  });
  const ack = await fake.nextDeltaRequest();
  assert.equal(ack.type_url, CLUSTER);
  assert.equal(ack.response_nonce, 'd1');
  assert.equal(ack.error_detail, undefined);
  assert.deepEqual(ack.resource_names_subscribe ?? [], [], 'an ACK changes no subscription');
  const status = client.status().types.find((t) => t.typeUrl === CLUSTER)!;
  assert.deepEqual(status.resourceVersions, { reviews: 'r1', ratings: 'r7' });
  assert.equal(status.versionInfo, 's1');
  assert.equal(updates.length, 1);
  assert.deepEqual([...updates[0]!.changed.keys()], ['reviews', 'ratings']);
});

test('subscribe and unsubscribe send only the difference', async () => {
  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews', 'ratings']);
  const first = await fake.nextDeltaRequest();
  assert.deepEqual(first.resource_names_subscribe, ['ratings', 'reviews']);

  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews', 'details']);
  const more = await fake.nextDeltaRequest();
  assert.deepEqual(more.resource_names_subscribe, ['details']);
  assert.deepEqual(more.resource_names_unsubscribe ?? [], []);

  client.unsubscribe(CLUSTER_LOAD_ASSIGNMENT, ['ratings']);
  const fewer = await fake.nextDeltaRequest();
  assert.deepEqual(fewer.resource_names_subscribe ?? [], []);
  assert.deepEqual(fewer.resource_names_unsubscribe, ['ratings']);
  assert.deepEqual(client.status().types.find((t) => t.typeUrl === CLUSTER_LOAD_ASSIGNMENT)?.subscribedNames, ['details', 'reviews']);
});

test('removed_resources removes what the client holds and is reported to the apply hook', async () => {
  const removed: string[][] = [];
  client.onApply(clusterResourceType, (update) => void removed.push([...update.removed]));
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextDeltaRequest();
  fake.respond({ type_url: CLUSTER, nonce: 'd1', resources: [{ name: 'reviews', version: '1', resource: cluster('reviews') }, { name: 'ratings', version: '1', resource: cluster('ratings') }] });
  await fake.nextDeltaRequest();
  fake.respond({ type_url: CLUSTER, nonce: 'd2', removed_resources: ['ratings', 'never-had-it'] });
  const ack = await fake.nextDeltaRequest();
  assert.equal(ack.response_nonce, 'd2');
  assert.deepEqual([...client.resources(CLUSTER).keys()], ['reviews']);
  assert.deepEqual(removed, [[], ['ratings']]);
});

test('a resource absent from a Delta response is kept, even for a wildcard type', async () => {
  client.subscribe(LISTENER, WILDCARD);
  await fake.nextDeltaRequest();
  fake.respond({ type_url: LISTENER, nonce: 'd1', resources: [{ name: 'a', version: '1', resource: listener('a', 8080) }, { name: 'b', version: '1', resource: listener('b', 8081) }] });
  await fake.nextDeltaRequest();
  fake.respond({ type_url: LISTENER, nonce: 'd2', resources: [{ name: 'a', version: '2', resource: listener('a', 8082) }] });
  await fake.nextDeltaRequest();
  assert.deepEqual([...client.resources(LISTENER).keys()].sort(), ['a', 'b']);
});

test('invalid resources are NACKed by name; valid ones apply; refused ones keep their last good version', async () => {
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextDeltaRequest();
  fake.respond({ type_url: CLUSTER, nonce: 'd1', resources: [{ name: 'reviews', version: '1', resource: cluster('reviews') }] });
  await fake.nextDeltaRequest();
  fake.respond({
    type_url: CLUSTER,
    nonce: 'd2',
    resources: [
      { name: 'reviews', version: '2', resource: loadAssignment('reviews', 9080) }, // an Any of another type
      { name: 'ratings', version: '1', resource: cluster('ratings') },
      { name: 'details', version: '1', resource: cluster('productpage') }, // wrapper and resource names disagree
      { name: 'empty', version: '1' },
    ],
  });
  const nack = await fake.nextDeltaRequest();
  assert.equal(nack.response_nonce, 'd2');
  assert.equal(nack.error_detail?.code, 3);
  const message = nack.error_detail?.message ?? '';
  assert.match(message, /CDS resource "reviews": type_url: expected type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster, got type\.googleapis\.com\/envoy\.config\.endpoint\.v3\.ClusterLoadAssignment/);
  assert.match(message, /CDS resource "details": name: "productpage" does not match the resource name "details"/);
  assert.match(message, /CDS resource "empty": resource: is required/);
  assert.deepEqual([...client.resources(CLUSTER).keys()].sort(), ['ratings', 'reviews']);
  assert.deepEqual(client.status().types.find((t) => t.typeUrl === CLUSTER)?.resourceVersions, { reviews: '1', ratings: '1' }, 'reviews stays at its last good version');
  assert.equal(client.status().types.find((t) => t.typeUrl === CLUSTER)?.lastNack?.nonce, 'd2');
});

test('unsubscribing from the wildcard sends "*" in resource_names_unsubscribe', async () => {
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextDeltaRequest();
  client.subscribe(CLUSTER, ['reviews']);
  assert.deepEqual((await fake.nextDeltaRequest()).resource_names_subscribe, ['reviews']);
  client.unsubscribe(CLUSTER, WILDCARD);
  const request = await fake.nextDeltaRequest();
  assert.deepEqual(request.resource_names_unsubscribe, ['*']);
});
