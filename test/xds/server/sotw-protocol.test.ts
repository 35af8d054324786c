// State-of-the-world ADS scenarios over real gRPC: versions and nonces, ACK/NACK, stale nonces, wildcard and named subscriptions, pushes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CDS, EDS, LDS, NODE, RDS, cluster, endpoints, eventually, listener, namesOf, sotwBarrier, startHarness } from './ads-harness.js';

test('an initial CDS request is answered with the whole set, a version and a nonce; the ACK is recorded', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setSnapshot(NODE.id, { [CDS]: [cluster('reviews'), cluster('ratings')] });
  const stream = h.sotw();

  stream.send({ node: NODE, type_url: CDS });
  const response = await stream.next();
  assert.equal(response.type_url, CDS);
  assert.deepEqual(namesOf(response.resources), ['ratings', 'reviews']);
  assert.equal(response.version_info, h.cache.resources(NODE.id, CDS)!.version);
  assert.ok(response.nonce, 'a response carries a nonce');

  stream.send({ type_url: CDS, version_info: response.version_info, response_nonce: response.nonce });
  await sotwBarrier(stream, 'ack');
  const [status] = h.server.streams();
  assert.equal(status?.mode, 'sotw');
  assert.equal(status?.nodeKey, NODE.id);
  assert.equal(status?.node.cluster, NODE.cluster);
  const cds = status?.types[CDS];
  assert.deepEqual(cds?.subscribed, { wildcard: true, names: [] });
  assert.equal(cds?.lastSentVersion, response.version_info);
  assert.equal(cds?.lastSentNonce, response.nonce);
  assert.equal(cds?.lastAckedVersion, response.version_info);
  assert.equal(cds?.ackCount, 1);
  assert.equal(cds?.nackCount, 0);
});

test('every response on a stream has a fresh nonce', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setSnapshot(NODE.id, {}); // ready, with nothing in it: the server answers with empty sets
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  const nonces = new Set<string>();
  let response = await stream.next();
  nonces.add(response.nonce ?? '');
  for (let i = 2; i <= 5; i++) {
    h.cache.setResources(NODE.id, CDS, [cluster(`c${i}`)]);
    response = await stream.next();
    assert.deepEqual(namesOf(response.resources), [`c${i}`]);
    nonces.add(response.nonce ?? '');
  }
  assert.equal(nonces.size, 5);
});

test('a NACK is recorded with its message, the ACKed version is kept, and the rejected version is not resent', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('reviews')]);
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  const v1 = await stream.next();
  stream.send({ type_url: CDS, version_info: v1.version_info, response_nonce: v1.nonce });
  // Without this the next push could overtake the ACK, which would then (rightly) be stale.
  await sotwBarrier(stream, 'ack-v1');

  h.cache.setResources(NODE.id, CDS, [cluster('reviews', 0)]);
  const v2 = await stream.next();
  assert.notEqual(v2.version_info, v1.version_info);
  stream.send({
    type_url: CDS,
    version_info: v1.version_info,
    response_nonce: v2.nonce,
    error_detail: { code: 3, message: 'cluster reviews: connect_timeout: must be greater than 0' },
  });
  // Nothing comes back for the NACK: the barrier's response is the next one.
  await sotwBarrier(stream, 'nack');

  const cds = h.server.streams()[0]?.types[CDS];
  assert.equal(cds?.nackCount, 1);
  assert.equal(cds?.lastAckedVersion, v1.version_info);
  assert.equal(cds?.lastSentVersion, v2.version_info);
  assert.equal(cds?.lastNack?.nonce, v2.nonce);
  assert.equal(cds?.lastNack?.version, v1.version_info);
  assert.equal(cds?.lastNack?.message, 'cluster reviews: connect_timeout: must be greater than 0');
  assert.ok(cds?.lastNack?.at instanceof Date);

  // A fixed version is pushed and ACKed normally afterwards.
  h.cache.setResources(NODE.id, CDS, [cluster('reviews', 2)]);
  const v3 = await stream.next();
  stream.send({ type_url: CDS, version_info: v3.version_info, response_nonce: v3.nonce });
  await sotwBarrier(stream, 'ack-after-nack');
  assert.equal(h.server.streams()[0]?.types[CDS]?.lastAckedVersion, v3.version_info);
});

test('a request with a stale nonce is neither an ACK nor a NACK', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  const first = await stream.next();
  h.cache.setResources(NODE.id, CDS, [cluster('b')]);
  const second = await stream.next();

  // The client answers the first response after the second was sent: its nonce is stale.
  stream.send({ type_url: CDS, version_info: first.version_info, response_nonce: first.nonce, error_detail: { message: 'late NACK' } });
  stream.send({ type_url: CDS, version_info: first.version_info, response_nonce: first.nonce });
  await sotwBarrier(stream, 'stale');
  let cds = h.server.streams()[0]?.types[CDS];
  assert.equal(cds?.ackCount, 0);
  assert.equal(cds?.nackCount, 0);
  assert.equal(cds?.lastAckedVersion, '');

  stream.send({ type_url: CDS, version_info: second.version_info, response_nonce: second.nonce });
  await sotwBarrier(stream, 'current');
  cds = h.server.streams()[0]?.types[CDS];
  assert.equal(cds?.ackCount, 1);
  assert.equal(cds?.lastAckedVersion, second.version_info);
});

test('a stale request that changes resource names is applied and answered (envoyproxy/envoy#10363)', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setSnapshot(NODE.id, { [EDS]: [endpoints('reviews', '10.1.0.1'), endpoints('ratings', '10.1.0.2')] });
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: EDS, resource_names: ['reviews'] });
  const first = await stream.next();
  h.cache.updateResources(NODE.id, EDS, { upsert: [endpoints('reviews', '10.1.0.3')] });
  await stream.next();
  stream.send({ type_url: EDS, version_info: first.version_info, response_nonce: first.nonce, resource_names: ['reviews', 'ratings'] });
  const answer = await stream.next();
  assert.deepEqual(namesOf(answer.resources), ['ratings', 'reviews']);
});

test('EDS is named only: the requested resources that exist are sent, an empty list unsubscribes', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setSnapshot(NODE.id, { [EDS]: [endpoints('reviews', '10.1.0.1'), endpoints('ratings', '10.1.0.2')] });
  const stream = h.sotw();

  stream.send({ node: NODE, type_url: EDS, resource_names: ['reviews', 'details'] });
  const first = await stream.next();
  assert.deepEqual(namesOf(first.resources), ['reviews'], 'only requested resources that exist');

  // An update to a resource this stream did not ask for is not pushed.
  h.cache.updateResources(NODE.id, EDS, { upsert: [endpoints('ratings', '10.1.0.9')] });
  await sotwBarrier(stream, 'unrelated-update');

  // A resource that springs into existence later is pushed.
  h.cache.updateResources(NODE.id, EDS, { upsert: [endpoints('details', '10.1.0.4')] });
  const created = await stream.next();
  assert.deepEqual(namesOf(created.resources), ['details', 'reviews']);

  stream.send({ type_url: EDS, version_info: created.version_info, response_nonce: created.nonce, resource_names: [] });
  const afterUnsubscribe = await stream.next();
  assert.deepEqual(namesOf(afterUnsubscribe.resources), [], 'empty EDS list is not a wildcard');
  assert.deepEqual(h.server.streams()[0]?.types[EDS]?.subscribed, { wildcard: false, names: [] });
  h.cache.updateResources(NODE.id, EDS, { upsert: [endpoints('reviews', '10.1.0.7')] });
  await sotwBarrier(stream, 'after-unsubscribe');
});

test('LDS wildcard: legacy empty list, explicit "*", and names without "*" end wildcard', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, LDS, [listener('0.0.0.0_9080', 9080), listener('0.0.0.0_15001', 15001)]);
  const stream = h.sotw();

  stream.send({ node: NODE, type_url: LDS, resource_names: [] });
  const legacy = await stream.next();
  assert.deepEqual(namesOf(legacy.resources), ['0.0.0.0_15001', '0.0.0.0_9080']);

  // Envoy keeps sending empty lists in its ACKs: still wildcard, nothing to answer.
  stream.send({ type_url: LDS, version_info: legacy.version_info, response_nonce: legacy.nonce, resource_names: [] });
  await sotwBarrier(stream, 'legacy-ack');

  // Removing a listener pushes the whole set; its absence is the deletion.
  h.cache.updateResources(NODE.id, LDS, { remove: ['0.0.0.0_15001'] });
  const removed = await stream.next();
  assert.deepEqual(namesOf(removed.resources), ['0.0.0.0_9080']);

  stream.send({ type_url: LDS, version_info: removed.version_info, response_nonce: removed.nonce, resource_names: ['0.0.0.0_9080'] });
  const named = await stream.next();
  assert.deepEqual(namesOf(named.resources), ['0.0.0.0_9080']);
  assert.deepEqual(h.server.streams()[0]?.types[LDS]?.subscribed, { wildcard: false, names: ['0.0.0.0_9080'] });
  h.cache.updateResources(NODE.id, LDS, { upsert: [listener('0.0.0.0_8080', 8080)] });
  await sotwBarrier(stream, 'named-ignores-new');

  stream.send({ type_url: LDS, version_info: named.version_info, response_nonce: named.nonce, resource_names: ['*', '0.0.0.0_9080'] });
  const explicit = await stream.next();
  assert.deepEqual(namesOf(explicit.resources), ['0.0.0.0_8080', '0.0.0.0_9080']);
  assert.deepEqual(h.server.streams()[0]?.types[LDS]?.subscribed, { wildcard: true, names: ['0.0.0.0_9080'] });
});

test('RDS with an empty first request is not a wildcard', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, RDS, [{ name: '9080', resource: { name: '9080' } }]);
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: RDS, resource_names: [] });
  const response = await stream.next();
  assert.deepEqual(namesOf(response.resources), []);
  assert.deepEqual(h.server.streams()[0]?.types[RDS]?.subscribed, { wildcard: false, names: [] });
});

test('an update reaches every subscribed stream of that node, and no stream of another node', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const other = { id: 'sidecar~10.0.0.2~reviews-v1.default~default.svc.cluster.local' };
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  h.cache.setResources(other.id, CDS, [cluster('x')]);
  const one = h.sotw();
  const two = h.sotw();
  const stranger = h.sotw();
  one.send({ node: NODE, type_url: CDS });
  two.send({ node: NODE, type_url: CDS });
  stranger.send({ node: other, type_url: CDS });
  await one.next();
  await two.next();
  assert.deepEqual(namesOf((await stranger.next()).resources), ['x']);

  h.cache.setResources(NODE.id, CDS, [cluster('a'), cluster('b')]);
  assert.deepEqual(namesOf((await one.next()).resources), ['a', 'b']);
  assert.deepEqual(namesOf((await two.next()).resources), ['a', 'b']);
  await sotwBarrier(stranger, 'other-node');
});

test('setting identical content again pushes nothing', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a'), cluster('b')]);
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  const first = await stream.next();
  stream.send({ type_url: CDS, version_info: first.version_info, response_nonce: first.nonce });
  h.cache.setResources(NODE.id, CDS, [cluster('b'), cluster('a')]);
  h.cache.setSnapshot(NODE.id, { [CDS]: [cluster('a'), cluster('b')] });
  await sotwBarrier(stream, 'identical');
  assert.equal(h.server.streams()[0]?.types[CDS]?.sentCount, 1);
});

test('a burst of updates is coalesced into the latest state', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setSnapshot(NODE.id, {}); // ready, with nothing in it: the server answers with empty sets
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  await stream.next();
  for (let i = 0; i < 50; i++) h.cache.setResources(NODE.id, CDS, [cluster(`burst-${i}`)]);
  const latest = await stream.next();
  assert.deepEqual(namesOf(latest.resources), ['burst-49']);
  await sotwBarrier(stream, 'burst');
});

test('a reconnect that already runs the current wildcard version gets no response; a changed set is then pushed', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const first = h.sotw();
  first.send({ node: NODE, type_url: CDS });
  const response = await first.next();
  first.cancel();

  const again = h.sotw();
  again.send({ node: NODE, type_url: CDS, version_info: response.version_info });
  await sotwBarrier(again, 'reconnect');
  h.cache.setResources(NODE.id, CDS, [cluster('a'), cluster('b')]);
  assert.deepEqual(namesOf((await again.next()).resources), ['a', 'b']);
});

test('ack and nack events are emitted for metrics', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const seen: string[] = [];
  h.server.on('connect', () => seen.push('connect'));
  h.server.on('sent', (e) => seen.push(`sent ${e.resourceCount}`));
  h.server.on('ack', () => seen.push('ack'));
  h.server.on('nack', (e) => seen.push(`nack ${e.message}`));
  h.server.on('disconnect', () => seen.push('disconnect'));
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  const r1 = await stream.next();
  stream.send({ type_url: CDS, version_info: r1.version_info, response_nonce: r1.nonce });
  await sotwBarrier(stream, 'ack');
  h.cache.setResources(NODE.id, CDS, [cluster('a', 0)]);
  const r2 = await stream.next();
  stream.send({ type_url: CDS, version_info: r1.version_info, response_nonce: r2.nonce, error_detail: { message: 'bad' } });
  await sotwBarrier(stream, 'events');
  stream.cancel();
  await eventually('disconnect event', () => seen.includes('disconnect'));
  assert.deepEqual(seen, ['connect', 'sent 1', 'ack', 'sent 0', 'sent 1', 'nack bad', 'sent 0', 'disconnect']);
});

test('a node the source has nothing for yet gets no answer (not an empty LDS that would wipe its listeners) until its config is set', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const stream = h.sotw();
  // A proxy reconnecting to a control plane that has just restarted and not generated its config yet.
  stream.send({ node: NODE, type_url: LDS, version_info: 'v-before-restart', resource_names: [] });
  stream.send({ type_url: CDS, version_info: 'v-before-restart', resource_names: [] });
  await eventually('both subscriptions registered', () => Object.keys(h.server.streams()[0]?.types ?? {}).length === 2);
  assert.equal(h.server.streams()[0]?.types[LDS]?.sentCount, 0);
  h.cache.setSnapshot(NODE.id, { [LDS]: [listener('0.0.0.0_9080', 9080)], [CDS]: [cluster('a')] });
  const first = await stream.next();
  const second = await stream.next();
  const byType = new Map([first, second].map((r) => [r.type_url, r]));
  assert.deepEqual(namesOf(byType.get(LDS)?.resources), ['0.0.0.0_9080'], 'the first LDS answer is the generated config');
  assert.deepEqual(namesOf(byType.get(CDS)?.resources), ['a']);
});
