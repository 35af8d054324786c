// Incremental (delta) ADS scenarios over real gRPC: subscribe, unsubscribe, removed_resources, reconnect with initial versions, wildcard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeltaDiscoveryResponse } from '../../../src/xds/ads-service.js';
import { CDS, EDS, NODE, cluster, deltaBarrier, endpoints, eventually, startHarness } from './ads-harness.js';

function names(response: DeltaDiscoveryResponse): string[] {
  return (response.resources ?? []).map((r) => r.name ?? '').sort();
}

test('delta: subscribing sends the resources with per-resource versions; a missing name is reported removed once', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, EDS, [endpoints('reviews', '10.1.0.1'), endpoints('ratings', '10.1.0.2')]);
  const stream = h.delta();

  stream.send({ node: NODE, type_url: EDS, resource_names_subscribe: ['reviews', 'details'] });
  const first = await stream.next();
  assert.deepEqual(names(first), ['reviews']);
  assert.equal(first.resources?.[0]?.version, h.cache.resources(NODE.id, EDS)!.resources.get('reviews')?.version);
  assert.deepEqual(first.removed_resources, ['details']);
  assert.equal(first.system_version_info, h.cache.resources(NODE.id, EDS)!.version);
  assert.ok(first.nonce);
  stream.send({ type_url: EDS, response_nonce: first.nonce });
  await deltaBarrier(stream, 'ack');

  // Only the changed resource is sent; "details" is not reported again; "ratings" is not subscribed.
  h.cache.updateResources(NODE.id, EDS, { upsert: [endpoints('reviews', '10.1.0.3'), endpoints('ratings', '10.1.0.9')] });
  const update = await stream.next();
  assert.deepEqual(names(update), ['reviews']);
  assert.deepEqual(update.removed_resources ?? [], []);

  // A missing name that springs into existence is sent.
  h.cache.updateResources(NODE.id, EDS, { upsert: [endpoints('details', '10.1.0.4')] });
  assert.deepEqual(names(await stream.next()), ['details']);

  // Deletion is a removed_resources entry.
  h.cache.updateResources(NODE.id, EDS, { remove: ['reviews'] });
  const deletion = await stream.next();
  assert.deepEqual(names(deletion), []);
  assert.deepEqual(deletion.removed_resources, ['reviews']);
  const status = h.server.streams()[0];
  assert.equal(status?.mode, 'delta');
  assert.equal(status?.types[EDS]?.ackCount, 1);
});

test('delta: unsubscribed resources are no longer pushed; subscribing again resends them', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, EDS, [endpoints('reviews', '10.1.0.1'), endpoints('ratings', '10.1.0.2')]);
  const stream = h.delta();
  stream.send({ node: NODE, type_url: EDS, resource_names_subscribe: ['reviews', 'ratings'] });
  const first = await stream.next();
  assert.deepEqual(names(first), ['ratings', 'reviews']);

  stream.send({ type_url: EDS, response_nonce: first.nonce, resource_names_unsubscribe: ['ratings'] });
  await deltaBarrier(stream, 'unsubscribe');
  assert.deepEqual(h.server.streams()[0]?.types[EDS]?.subscribed, { wildcard: false, names: ['reviews'] });
  h.cache.updateResources(NODE.id, EDS, { upsert: [endpoints('ratings', '10.1.0.9')] });
  await deltaBarrier(stream, 'unsubscribed-update');

  // The spec: a (re)subscribed resource must be sent even if the server thinks the client has it.
  stream.send({ type_url: EDS, resource_names_subscribe: ['ratings', 'reviews'] });
  const again = await stream.next();
  assert.deepEqual(names(again), ['ratings', 'reviews']);
});

test('delta: a reconnect with initial_resource_versions gets only what changed, and removals for what is gone', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a'), cluster('b'), cluster('c')]);
  const first = h.delta();
  first.send({ node: NODE, type_url: CDS });
  const initial = await first.next();
  assert.deepEqual(names(initial), ['a', 'b', 'c']);
  const had = Object.fromEntries((initial.resources ?? []).map((r) => [r.name ?? '', r.version ?? '']));
  first.cancel();

  // While disconnected: b changes, c is deleted, d appears.
  h.cache.setResources(NODE.id, CDS, [cluster('a'), cluster('b', 5), cluster('d')]);
  const again = h.delta();
  again.send({ node: NODE, type_url: CDS, resource_names_subscribe: ['*'], initial_resource_versions: had });
  const resync = await again.next();
  assert.deepEqual(names(resync), ['b', 'd']);
  assert.deepEqual(resync.removed_resources, ['c']);
});

test('delta: a reconnect that has everything still gets an (empty) first response', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const version = h.cache.resources(NODE.id, CDS)!.resources.get('a')?.version ?? '';
  const stream = h.delta();
  stream.send({ node: NODE, type_url: CDS, initial_resource_versions: { a: version } });
  const response = await stream.next();
  assert.deepEqual(names(response), []);
  assert.deepEqual(response.removed_resources ?? [], []);
});

test('delta wildcard: "*" subscribes to everything, new resources are pushed, unsubscribing "*" stops it', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const stream = h.delta();
  stream.send({ node: NODE, type_url: CDS, resource_names_subscribe: ['*'] });
  const first = await stream.next();
  assert.deepEqual(names(first), ['a']);
  assert.deepEqual(h.server.streams()[0]?.types[CDS]?.subscribed, { wildcard: true, names: [] });

  h.cache.updateResources(NODE.id, CDS, { upsert: [cluster('b')] });
  const added = await stream.next();
  assert.deepEqual(names(added), ['b'], 'only the new cluster, not the whole set');

  h.cache.updateResources(NODE.id, CDS, { remove: ['a'] });
  assert.deepEqual((await stream.next()).removed_resources, ['a']);

  stream.send({ type_url: CDS, resource_names_unsubscribe: ['*'] });
  await deltaBarrier(stream, 'unsubscribe-wildcard');
  h.cache.updateResources(NODE.id, CDS, { upsert: [cluster('c')] });
  await deltaBarrier(stream, 'after-wildcard');
  assert.deepEqual(h.server.streams()[0]?.types[CDS]?.subscribed, { wildcard: false, names: [] });
});

test('delta: legacy wildcard (empty first subscribe) for CDS, but not for EDS', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setSnapshot(NODE.id, { [CDS]: [cluster('a')], [EDS]: [endpoints('a', '10.1.0.1')] });
  const stream = h.delta();
  stream.send({ node: NODE, type_url: CDS });
  assert.deepEqual(names(await stream.next()), ['a']);
  stream.send({ type_url: EDS });
  const eds = await stream.next();
  assert.deepEqual(names(eds), []);
  assert.deepEqual(h.server.streams()[0]?.types[EDS]?.subscribed, { wildcard: false, names: [] });
});

test('delta: a NACK is recorded and the rejected resource is not resent; a stale nonce is ignored', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const stream = h.delta();
  stream.send({ node: NODE, type_url: CDS, resource_names_subscribe: ['a'] });
  const first = await stream.next();
  stream.send({ type_url: CDS, response_nonce: first.nonce });
  await deltaBarrier(stream, 'ack');

  h.cache.setResources(NODE.id, CDS, [cluster('a', 0)]);
  const bad = await stream.next();
  stream.send({ type_url: CDS, response_nonce: bad.nonce, error_detail: { message: 'cluster a: connect_timeout must be positive' } });
  stream.send({ type_url: CDS, response_nonce: first.nonce, error_detail: { message: 'stale' } });
  await deltaBarrier(stream, 'nack');
  const cds = h.server.streams()[0]?.types[CDS];
  assert.equal(cds?.nackCount, 1);
  assert.equal(cds?.lastNack?.message, 'cluster a: connect_timeout must be positive');
  assert.equal(cds?.lastNack?.nonce, bad.nonce);
  assert.equal(cds?.lastAckedVersion, first.system_version_info);
  assert.equal(cds?.sentCount, 2);
});

test('delta: a node the source has nothing for yet gets no answer until its config is set', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const stream = h.delta();
  stream.send({ node: NODE, type_url: CDS, initial_resource_versions: { a: 'old' } });
  await eventually('subscription registered', () => h.server.streams()[0]?.types[CDS] !== undefined);
  assert.equal(h.server.streams()[0]?.types[CDS]?.sentCount, 0);
  h.cache.setResources(NODE.id, CDS, [cluster('b')]);
  const first = await stream.next();
  assert.deepEqual(first.resources?.map((r) => r.name), ['b']);
  assert.deepEqual(first.removed_resources, ['a'], 'what the client had and the new config lacks is removed, once the config exists');
});
