// Bad input and hostile clients: malformed bytes, unknown types, missing node, NACK storms, never-ACKing and vanishing clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { ADS_SERVICE_DEFINITION, type DiscoveryRequest } from '../../../src/xds/ads-service.js';
import { encodeMessage } from '../../../src/xds/codec.js';
import { CDS, EDS, NODE, cluster, deltaBarrier, eventually, namesOf, sotwBarrier, startHarness } from './ads-harness.js';

const SOTW_PATH = ADS_SERVICE_DEFINITION.StreamAggregatedResources.path;
const DELTA_PATH = ADS_SERVICE_DEFINITION.DeltaAggregatedResources.path;
// Field 1 with wire type 7, which does not exist: no protobuf decoder accepts it.
const GARBAGE = Buffer.from([0x0f, 0xff, 0xff, 0xff, 0xff, 0xff]);

function encodedRequest(request: DiscoveryRequest): Buffer {
  return Buffer.from(encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', request));
}

test('malformed request bytes end that stream with INVALID_ARGUMENT; the server keeps serving and leaks no watch', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const errors: string[] = [];
  h.server.on('protocol-error', (e) => errors.push(e.message));

  const first = h.raw(SOTW_PATH);
  first.send(GARBAGE);
  const status = await first.status();
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.match(status.details, /malformed request: malformed envoy\.service\.discovery\.v3\.DiscoveryRequest/);

  // Garbage after a valid request on a delta stream: the watch the first request opened is cancelled.
  const delta = h.raw(DELTA_PATH);
  delta.send(Buffer.from(encodeMessage('envoy.service.discovery.v3.DeltaDiscoveryRequest', { node: NODE, type_url: CDS })));
  await delta.next();
  assert.equal(h.cache.watcherCount(), 1);
  delta.send(GARBAGE);
  assert.equal((await delta.status()).code, grpc.status.INVALID_ARGUMENT);
  await eventually('watch cancelled', () => h.cache.watcherCount() === 0);

  assert.equal(errors.length, 2);
  assert.equal(h.logger.warnings.length, 2);
  const healthy = h.sotw();
  healthy.send({ node: NODE, type_url: CDS });
  assert.deepEqual(namesOf((await healthy.next()).resources), ['a']);
});

test('a first request without node is refused with INVALID_ARGUMENT; so is a request without type_url', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const anonymous = h.sotw();
  anonymous.send({ type_url: CDS });
  const status = await anonymous.status();
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(status.details, 'the first request on an ADS stream must carry node');

  const untyped = h.delta();
  untyped.send({ node: NODE });
  assert.equal((await untyped.status()).code, grpc.status.INVALID_ARGUMENT);
  await eventually('watch cancelled', () => h.cache.watcherCount() === 0);
  assert.deepEqual(h.server.streams(), []);
});

test('an unknown type URL is recorded and warned once, gets no response, and the stream stays usable', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setSnapshot(NODE.id, {}); // ready, with nothing in it: the server answers with empty sets
  const unknown = 'type.googleapis.com/envoy.service.runtime.v3.Runtime';
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: unknown, resource_names: ['rtds'] });
  stream.send({ type_url: unknown, resource_names: ['rtds'] });
  await sotwBarrier(stream, 'unknown');
  const status = h.server.streams()[0];
  assert.deepEqual(status?.unknownTypeUrls, [unknown]);
  assert.equal(status?.types[unknown], undefined);
  assert.equal(h.logger.warnings.length, 1);
  assert.match(h.logger.warnings[0] ?? '', /unknown type URL type\.googleapis\.com\/envoy\.service\.runtime\.v3\.Runtime/);

  const delta = h.delta();
  delta.send({ node: NODE, type_url: unknown, resource_names_subscribe: ['rtds'] });
  await deltaBarrier(delta, 'unknown');
});

test('a NACK storm: 1000 NACKs are counted, the last reason kept, nothing resent, and the server stays responsive', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  const response = await stream.next();
  for (let i = 1; i <= 1000; i++) {
    stream.send({ type_url: CDS, response_nonce: response.nonce, error_detail: { message: `rejected #${i}` } });
  }
  await sotwBarrier(stream, 'storm');
  const cds = h.server.streams()[0]?.types[CDS];
  assert.equal(cds?.nackCount, 1000);
  assert.equal(cds?.sentCount, 1);
  assert.equal(cds?.lastNack?.message, 'rejected #1000');

  const other = h.sotw();
  other.send({ node: NODE, type_url: CDS });
  assert.deepEqual(namesOf((await other.next()).resources), ['a']);
});

test('a client that never reads nor ACKs: writes stop at backpressure, and on resume it gets the latest state', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  // Large responses (about 200 KiB each) so HTTP/2 flow control and socket buffers fill quickly.
  const bigSet = (round: number) => Array.from({ length: 100 }, (_, i) => cluster(`${'x'.repeat(2000)}-${i}`, round + 1));
  const updates = 200;
  h.cache.setResources(NODE.id, CDS, bigSet(0));
  const stream = h.sotw();
  stream.send({ node: NODE, type_url: CDS });
  await stream.next();
  stream.call.pause();

  for (let round = 1; round <= updates; round++) {
    h.cache.setResources(NODE.id, CDS, bigSet(round));
    // Give the server a turn to flush each update, so coalescing alone cannot explain a low count.
    await nextTurn();
    await nextTurn();
  }
  const sent = h.server.streams()[0]?.types[CDS]?.sentCount ?? 0;
  assert.ok(sent < updates, `writes are bounded by backpressure, not by the number of updates (sent ${sent} of ${updates})`);

  stream.call.resume();
  const latest = h.cache.resources(NODE.id, CDS)!.version;
  let last = '';
  for (let i = 0; i <= updates && last !== latest; i++) last = (await stream.next()).version_info ?? '';
  assert.equal(last, latest, 'the final response carries the latest version');
  assert.equal(stream.pending, 0);
});

test('a client that disconnects mid-push: no write after end, its watch is removed, its status is gone', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const reasons: string[] = [];
  const disconnected = new Set<string>();
  const sentAfterEnd: string[] = [];
  h.server.on('disconnect', (e) => {
    reasons.push(e.reason);
    disconnected.add(e.streamId);
  });
  h.server.on('sent', (e) => {
    if (disconnected.has(e.streamId)) sentAfterEnd.push(e.streamId);
  });
  const bigSet = (round: number) => Array.from({ length: 100 }, (_, i) => cluster(`${'y'.repeat(2000)}-${i}`, round + 1));
  h.cache.setResources(NODE.id, CDS, bigSet(0));
  const streams = Array.from({ length: 5 }, () => h.sotw());
  for (const stream of streams) stream.send({ node: NODE, type_url: CDS });
  for (const stream of streams) await stream.next();
  assert.equal(h.cache.watcherCount(NODE.id), 5);

  for (let round = 1; round <= 20; round++) {
    h.cache.setResources(NODE.id, CDS, bigSet(round));
    if (round === 10) for (const stream of streams) stream.cancel();
    await nextTurn();
  }
  await eventually('all streams gone', () => h.server.streams().length === 0 && h.cache.watcherCount() === 0);
  await eventually('five disconnects', () => reasons.length === 5);
  // grpc-js may report the reset as a half-close first; either way it is not a stream error.
  assert.ok(reasons.every((reason) => !reason.startsWith('stream error')), reasons.join(', '));
  assert.deepEqual(sentAfterEnd, []);
  assert.deepEqual(h.logger.warnings, []);
});

test('close() ends every stream with OK and cancels every watch; a client half-close is answered with OK', async (t) => {
  const h = await startHarness();
  let closed = false;
  t.after(() => (closed ? undefined : h.close()));
  h.cache.setSnapshot(NODE.id, {}); // ready, with nothing in it: the server answers with empty sets
  const sotw = h.sotw();
  const delta = h.delta();
  const halfClosing = h.sotw();
  sotw.send({ node: NODE, type_url: CDS });
  delta.send({ node: NODE, type_url: EDS, resource_names_subscribe: ['a'] });
  halfClosing.send({ node: NODE, type_url: CDS });
  await sotw.next();
  await delta.next();
  await halfClosing.next();

  halfClosing.call.end();
  assert.equal((await halfClosing.status()).code, grpc.status.OK);

  await h.server.close();
  closed = true;
  assert.equal((await sotw.status()).code, grpc.status.OK);
  assert.equal((await delta.status()).code, grpc.status.OK);
  assert.equal(h.cache.watcherCount(), 0);
  await h.close();
});

test('status shows node id, cluster and metadata; nodeKey groups nodes onto one snapshot', async (t) => {
  const h = await startHarness({ nodeKey: (node) => node.cluster ?? '' });
  t.after(() => h.close());
  h.cache.setResources('productpage.default', CDS, [cluster('shared')]);
  const a = h.sotw();
  const b = h.sotw();
  a.send({ node: { ...NODE, metadata: { fields: { ISTIO_VERSION: { string_value: '1.24.0' }, replicas: { number_value: 2 } } } }, type_url: CDS });
  b.send({ node: { id: 'another-pod', cluster: 'productpage.default' }, type_url: CDS });
  assert.deepEqual(namesOf((await a.next()).resources), ['shared']);
  assert.deepEqual(namesOf((await b.next()).resources), ['shared']);
  const status = h.server.streams().find((s) => s.node.id === NODE.id);
  assert.equal(status?.nodeKey, 'productpage.default');
  assert.deepEqual(status?.node.metadata, { ISTIO_VERSION: '1.24.0', replicas: 2 });
  assert.ok(status?.connectedAt instanceof Date);

  h.cache.updateResources('productpage.default', CDS, { upsert: [cluster('added')] });
  assert.deepEqual(namesOf((await a.next()).resources), ['added', 'shared']);
  assert.deepEqual(namesOf((await b.next()).resources), ['added', 'shared']);
});

test('the raw helper really sends valid bytes when asked (guards the malformed-bytes test)', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  h.cache.setResources(NODE.id, CDS, [cluster('a')]);
  const stream = h.raw(SOTW_PATH);
  stream.send(encodedRequest({ node: NODE, type_url: CDS }));
  await stream.next();
  assert.equal(h.server.streams().length, 1);
});
