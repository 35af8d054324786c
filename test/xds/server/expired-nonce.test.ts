// Requests answering a nonce that is no longer the latest (a response overtook the ACK) raise 'expired-nonce', SotW and delta; current ones do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExpiredNonceEvent } from '../../../src/xds/server/ads-events.js';
import { CDS, EDS, NODE, cluster, deltaBarrier, endpoints, sotwBarrier, startHarness } from './ads-harness.js';

test('SotW: an ACK of an older nonce is an expired nonce, the current ACK is not', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const expired: ExpiredNonceEvent[] = [];
  h.server.on('expired-nonce', (e) => expired.push(e));
  h.cache.setResources(NODE.id, CDS, [cluster('reviews')]);
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  const v1 = await stream.next();
  h.cache.setResources(NODE.id, CDS, [cluster('reviews', 2)]);
  const v2 = await stream.next();
  // The client answers v1 after v2 was sent: stale.
  stream.send({ type_url: CDS, version_info: v1.version_info, response_nonce: v1.nonce });
  await sotwBarrier(stream, 'stale');
  assert.deepEqual(expired.map((e) => [e.typeUrl, e.nonce, e.nodeKey]), [[CDS, v1.nonce, NODE.id]]);
  stream.send({ type_url: CDS, version_info: v2.version_info, response_nonce: v2.nonce });
  await sotwBarrier(stream, 'current');
  assert.equal(expired.length, 1);
  assert.equal(h.server.streams()[0]?.types[CDS]?.ackCount, 1);
});

test('delta: a request with a stale nonce is an expired nonce', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const expired: ExpiredNonceEvent[] = [];
  h.server.on('expired-nonce', (e) => expired.push(e));
  h.cache.setResources(NODE.id, EDS, [endpoints('reviews', '10.1.0.1')]);
  const stream = h.delta();
  stream.send({ node: NODE, type_url: EDS, resource_names_subscribe: ['reviews'] });
  const first = await stream.next();
  h.cache.updateResources(NODE.id, EDS, { upsert: [endpoints('reviews', '10.1.0.2')] });
  const second = await stream.next();
  stream.send({ type_url: EDS, response_nonce: first.nonce });
  await deltaBarrier(stream, 'stale');
  assert.deepEqual(expired.map((e) => [e.typeUrl, e.nonce]), [[EDS, first.nonce]]);
  stream.send({ type_url: EDS, response_nonce: second.nonce });
  await deltaBarrier(stream, 'current');
  assert.equal(expired.length, 1);
});
