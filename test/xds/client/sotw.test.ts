// State-of-the-World ADS as the proxy speaks it: first request, ACK, per-resource NACK, removal semantics, subscription changes.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { XdsValidationError } from '../../../src/common/errors.js';
import { WILDCARD, ClusterResourceType, type XdsResourceType, clusterResourceType, listenerResourceType, clusterLoadAssignmentResourceType, type Cluster, type ResourceUpdate, type XdsClient } from '../../../src/xds/client/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER } from '../../../src/xds/type-urls.js';
import { FakeControlPlane } from '../../support/fake-control-plane.js';
import { NODE, clientOf, cluster, listener, loadAssignment } from './fixtures.js';

let fake: FakeControlPlane;
let client: XdsClient;

beforeEach(async () => {
  fake = await FakeControlPlane.start();
  client = clientOf(fake);
});

afterEach(async () => {
  client.close();
  await fake.close();
});

test('the first request carries the node, user agent "trellis" and the subscribed names; later requests carry no node', async () => {
  client.subscribe(CLUSTER, WILDCARD);
  const first = await fake.nextSotwRequest();
  assert.equal(first.type_url, CLUSTER);
  assert.deepEqual(first.resource_names ?? [], [], 'CDS wildcard is an empty resource_names list');
  assert.equal(first.version_info ?? '', '');
  assert.equal(first.response_nonce ?? '', '');
  assert.equal(first.node?.id, NODE.id);
  assert.equal(first.node?.cluster, NODE.cluster);
  assert.deepEqual(first.node?.metadata, NODE.metadata);
  assert.equal(first.node?.user_agent_name, 'trellis');

  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews', 'ratings']);
  const eds = await fake.nextSotwRequest();
  assert.equal(eds.type_url, CLUSTER_LOAD_ASSIGNMENT);
  assert.deepEqual(eds.resource_names, ['ratings', 'reviews']);
  assert.equal(eds.node, undefined, 'the node is sent once per stream');
});

test('an accepted response is ACKed with its nonce and version, and applied', async () => {
  const updates: ResourceUpdate<Cluster>[] = [];
  client.onApply(clusterResourceType, (update) => void updates.push(update));
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews'), cluster('ratings')] });

  const ack = await fake.nextSotwRequest();
  assert.equal(ack.type_url, CLUSTER);
  assert.equal(ack.response_nonce, 'n1');
  assert.equal(ack.version_info, 'v1');
  assert.equal(ack.error_detail, undefined);
  assert.deepEqual([...client.resources(clusterResourceType).keys()].sort(), ['ratings', 'reviews']);
  assert.equal(updates.length, 1);
  assert.deepEqual([...updates[0]!.changed.keys()].sort(), ['ratings', 'reviews']);
  assert.equal(updates[0]!.versionInfo, 'v1');
  const status = client.status().types.find((t) => t.typeUrl === CLUSTER)!;
  assert.equal(status.versionInfo, 'v1');
  assert.equal(status.nonce, 'n1');
  assert.equal(status.lastNack, undefined);
  assert.equal(client.status().connected, true);
});

test('invalid resources are NACKed by name with the last good version; valid ones of the same response apply', async () => {
  const nacks: string[] = [];
  client.on('nack', (event) => nacks.push(event.message));
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews'), cluster('ratings')] });
  await fake.nextSotwRequest();

  fake.respond({
    type_url: CLUSTER,
    version_info: 'v2',
    nonce: 'n2',
    resources: [
      cluster('reviews', { connect_timeout: { seconds: 5 } }), // valid change
      cluster('ratings', { connect_timeout: { seconds: -1 } }), // invalid: keeps its v1
      cluster(''), // no name
      listener('details', 9080), // an Any of another type
      cluster('details'),
    ],
  });
  const nack = await fake.nextSotwRequest();
  assert.equal(nack.response_nonce, 'n2');
  assert.equal(nack.version_info, 'v1', 'a NACK carries the last accepted version');
  assert.equal(nack.error_detail?.code, 3, 'INVALID_ARGUMENT');
  const message = nack.error_detail?.message ?? '';
  assert.match(message, /CDS resource "ratings": connect_timeout: must be greater than 0s/);
  assert.match(message, /CDS resources\[2\]: name: must not be empty/);
  assert.match(message, /CDS resources\[3\]: type_url: expected type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster, got type\.googleapis\.com\/envoy\.config\.listener\.v3\.Listener/);

  const clusters = client.resources(clusterResourceType);
  assert.deepEqual(clusters.get('reviews')?.connect_timeout, { seconds: 5 }, 'the valid change applied');
  assert.deepEqual(clusters.get('ratings')?.connect_timeout, { seconds: 1 }, 'the refused resource keeps its last good version');
  assert.ok(clusters.has('details'), 'a valid new resource applied');
  const status = client.status().types.find((t) => t.typeUrl === CLUSTER)!;
  assert.equal(status.versionInfo, 'v1');
  assert.equal(status.lastNack?.message, message);
  assert.equal(status.lastNack?.rejectedVersion, 'v2');
  assert.deepEqual(nacks, [message]);
});

test('a custom decode problem becomes the NACK reason, with every problem listed', async () => {
  class MeshClusters extends ClusterResourceType {
    override decode(any: Parameters<ClusterResourceType['decode']>[0], name: string): Cluster {
      const value = super.decode(any, name);
      const problems: string[] = [];
      if (!name.includes('.')) problems.push('name: expected a fully-qualified name like "outbound|9080||reviews.default.svc.cluster.local"');
      if (value.lb_policy === 'MAGLEV') problems.push('lb_policy: MAGLEV is not supported');
      if (problems.length > 0) throw new XdsValidationError(problems);
      return value;
    }
  }
  client.register(new MeshClusters());
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews', { lb_policy: 'MAGLEV' }), cluster('outbound|9080||ratings.default.svc.cluster.local')] });
  const nack = await fake.nextSotwRequest();
  assert.equal(nack.error_detail?.message, 'CDS resource "reviews": name: expected a fully-qualified name like "outbound|9080||reviews.default.svc.cluster.local"; lb_policy: MAGLEV is not supported');
  assert.equal(nack.version_info ?? '', '');
  assert.deepEqual([...client.resources(CLUSTER).keys()], ['outbound|9080||ratings.default.svc.cluster.local']);
});

test('an apply hook that throws refuses the whole update: NACKed, nothing kept, the client carries on', async () => {
  let refuse = true;
  client.onApply(listenerResourceType, () => {
    if (refuse) throw new Error('port 15001 is already bound');
  });
  client.subscribe(LISTENER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: LISTENER, version_info: 'v1', nonce: 'n1', resources: [listener('virtualOutbound', 15001)] });
  const nack = await fake.nextSotwRequest();
  assert.equal(nack.error_detail?.message, 'LDS update: not applied: port 15001 is already bound');
  assert.equal(client.resources(LISTENER).size, 0);

  refuse = false;
  fake.respond({ type_url: LISTENER, version_info: 'v2', nonce: 'n2', resources: [listener('virtualOutbound', 15001)] });
  const ack = await fake.nextSotwRequest();
  assert.equal(ack.version_info, 'v2');
  assert.equal(ack.error_detail, undefined);
  assert.equal(client.resources(LISTENER).size, 1);
});

test('an async apply hook is awaited before the ACK', async () => {
  let applied = false;
  client.onApply(listenerResourceType, async () => {
    await new Promise((resolve) => setTimeout(resolve, 10));
    applied = true;
  });
  client.subscribe(LISTENER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: LISTENER, version_info: 'v1', nonce: 'n1', resources: [listener('a', 8080)] });
  const ack = await fake.nextSotwRequest();
  assert.equal(ack.version_info, 'v1');
  assert.equal(applied, true);
});

test('LDS: a listener absent from a response is removed', async () => {
  const removed: string[][] = [];
  client.onApply(listenerResourceType, (update) => void removed.push([...update.removed]));
  client.subscribe(LISTENER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: LISTENER, version_info: 'v1', nonce: 'n1', resources: [listener('a', 8080), listener('b', 8081)] });
  await fake.nextSotwRequest();
  fake.respond({ type_url: LISTENER, version_info: 'v2', nonce: 'n2', resources: [listener('a', 8080)] });
  const ack = await fake.nextSotwRequest();
  assert.equal(ack.version_info, 'v2');
  assert.deepEqual([...client.resources(LISTENER).keys()], ['a']);
  assert.deepEqual(removed, [[], ['b']]);
});

test('LDS: a listener refused in a response is not removed, it keeps its last good version', async () => {
  client.subscribe(LISTENER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: LISTENER, version_info: 'v1', nonce: 'n1', resources: [listener('a', 8080), listener('b', 8081)] });
  await fake.nextSotwRequest();
  fake.respond({ type_url: LISTENER, version_info: 'v2', nonce: 'n2', resources: [listener('a', 8080), listener('b', 70000)] });
  const nack = await fake.nextSotwRequest();
  assert.match(nack.error_detail?.message ?? '', /LDS resource "b": address\.socket_address\.port_value: must be at most 65535, got 70000/);
  assert.deepEqual([...client.resources(LISTENER).keys()].sort(), ['a', 'b']);
});

test('EDS: an assignment absent from a response is kept (absence does not mean removal)', async () => {
  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews', 'ratings']);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER_LOAD_ASSIGNMENT, version_info: 'v1', nonce: 'n1', resources: [loadAssignment('reviews', 9080), loadAssignment('ratings', 9080)] });
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER_LOAD_ASSIGNMENT, version_info: 'v2', nonce: 'n2', resources: [loadAssignment('reviews', 9081)] });
  const ack = await fake.nextSotwRequest();
  assert.equal(ack.version_info, 'v2');
  const assignments = client.resources(clusterLoadAssignmentResourceType);
  assert.deepEqual([...assignments.keys()].sort(), ['ratings', 'reviews']);
  assert.equal(assignments.get('reviews')?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address?.port_value, 9081);
});

test('EDS: resources nobody subscribed to are ignored, not kept and not NACKed', async () => {
  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews']);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER_LOAD_ASSIGNMENT, version_info: 'v1', nonce: 'n1', resources: [loadAssignment('reviews', 9080), loadAssignment('productpage', 9080)] });
  const ack = await fake.nextSotwRequest();
  assert.equal(ack.error_detail, undefined);
  assert.deepEqual([...client.resources(CLUSTER_LOAD_ASSIGNMENT).keys()], ['reviews']);
});

test('subscribing and unsubscribing on a live stream sends the full name list with the current version and nonce', async () => {
  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews']);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER_LOAD_ASSIGNMENT, version_info: 'v1', nonce: 'n1', resources: [loadAssignment('reviews', 9080)] });
  await fake.nextSotwRequest();

  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['ratings', 'reviews']);
  const more = await fake.nextSotwRequest();
  assert.deepEqual(more.resource_names, ['ratings', 'reviews']);
  assert.equal(more.version_info, 'v1');
  assert.equal(more.response_nonce, 'n1');

  client.unsubscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews']);
  const fewer = await fake.nextSotwRequest();
  assert.deepEqual(fewer.resource_names, ['ratings']);
  assert.equal(client.resources(CLUSTER_LOAD_ASSIGNMENT).has('reviews'), false, 'an unsubscribed resource is forgotten');

  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['ratings']); // already watched: nothing to tell
  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['details']);
  const next = await fake.nextSotwRequest();
  assert.deepEqual(next.resource_names, ['details', 'ratings'], 'subscribing to a name already watched sent no request');
});

test('a response for a type nobody watches is ignored, as Envoy does', async () => {
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig', version_info: 'v1', nonce: 'x1', resources: [] });
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews')] });
  const next = await fake.nextSotwRequest();
  assert.equal(next.type_url, CLUSTER);
  assert.equal(next.response_nonce, 'n1');
});

test('subscribing to an unregistered type fails loudly', () => {
  assert.throws(() => client.subscribe('type.googleapis.com/example.Unknown', ['a']), { code: 'TRELLIS_XDS_INVALID_SUBSCRIPTION', message: /no resource type is registered for type\.googleapis\.com\/example\.Unknown/ });
  assert.throws(() => client.subscribe(CLUSTER, ['*']), { code: 'TRELLIS_XDS_INVALID_SUBSCRIPTION', message: /subscribe with WILDCARD/ });
});

test('a response with a resource repeated is NACKed for the repeat', async () => {
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews'), cluster('reviews', { connect_timeout: { seconds: 3 } })] });
  const nack = await fake.nextSotwRequest();
  assert.match(nack.error_detail?.message ?? '', /CDS resource "reviews": appears more than once in the response \(resources\[1\]\)/);
  assert.deepEqual(client.resources(clusterResourceType).get('reviews')?.connect_timeout, { seconds: 1 }, 'the first copy is kept');
});

test('a resource type whose own code throws anything never crashes the client: the response is NACKed', async () => {
  const brittle: XdsResourceType<object> = {
    typeUrl: CLUSTER,
    allResourcesRequiredInSotW: true,
    nameOf: (any) => {
      if ((any.value?.length ?? 0) > 40) throw new TypeError('cannot read properties of undefined');
      return clusterResourceType.nameOf(any);
    },
    decode: () => {
      throw new RangeError('not an XdsValidationError');
    },
  };
  client.register(brittle);
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews')] });
  assert.equal((await fake.nextSotwRequest()).error_detail?.message, 'CDS resource "reviews": not an XdsValidationError');
  fake.respond({ type_url: CLUSTER, version_info: 'v2', nonce: 'n2', resources: [cluster('a-cluster-name-long-enough-to-trip-nameOf')] });
  const nack = await fake.nextSotwRequest();
  assert.equal(nack.response_nonce, 'n2');
  assert.equal(nack.error_detail?.message, 'CDS response: could not be processed: cannot read properties of undefined');
});
