// SnapshotCache: content versions, change notification only on real change, partial updates, grouping, and refusal of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XdsError } from '../../../src/common/errors.js';
import { packAny } from '../../../src/xds/codec.js';
import { SnapshotCache } from '../../../src/xds/server/snapshot-cache.js';
import { NAME_TABLE, RESOURCE_TYPE_URLS } from '../../../src/xds/type-urls.js';
import { CDS, EDS, LDS, cluster, endpoints } from './ads-harness.js';

function recorder(cache: SnapshotCache, key: string): { changes: string[]; cancel: () => void } {
  const changes: string[] = [];
  const cancel = cache.watch(key, (typeUrl) => changes.push(typeUrl));
  return { changes, cancel };
}

test('resources are packed once and versioned by content; the type version ignores order', () => {
  const cache = new SnapshotCache();
  cache.setResources('n', CDS, [cluster('a'), cluster('b')]);
  const first = cache.resources('n', CDS)!;
  assert.equal(first.resources.get('a')?.any.type_url, CDS);
  assert.match(first.version, /^[0-9a-f]{16}$/);
  assert.equal(cache.resources('n', CDS)!.resources.get('a')?.any, first.resources.get('a')?.any, 'the same Any object, not re-encoded');

  const other = new SnapshotCache();
  other.setResources('m', CDS, [cluster('b'), cluster('a')]);
  assert.equal(other.resources('m', CDS)!.version, first.version);
  assert.equal(other.resources('m', CDS)!.resources.get('a')?.version, first.resources.get('a')?.version);
  other.setResources('m', CDS, [cluster('b'), cluster('a', 9)]);
  assert.notEqual(other.resources('m', CDS)!.resources.get('a')?.version, first.resources.get('a')?.version);
  assert.equal(other.resources('m', CDS)!.resources.get('b')?.version, first.resources.get('b')?.version);
});

test('watchers hear about real changes only', () => {
  const cache = new SnapshotCache();
  const { changes } = recorder(cache, 'n');
  assert.equal(cache.resources('n', CDS), undefined, 'nothing set yet: not ready, so the server waits');
  cache.setSnapshot('n', { [CDS]: [cluster('a')], [EDS]: [endpoints('a', '10.0.0.1')] });
  assert.deepEqual(changes.sort(), [...RESOURCE_TYPE_URLS, NAME_TABLE].sort(), 'becoming ready makes every type answerable (NDS too)');
  changes.length = 0;
  cache.setSnapshot('n', { [CDS]: [cluster('a')], [EDS]: [endpoints('a', '10.0.0.1')] });
  cache.setResources('n', CDS, [cluster('a')]);
  cache.updateResources('n', EDS, { upsert: [endpoints('a', '10.0.0.1')], remove: ['missing'] });
  assert.deepEqual(changes, [], 'identical content pushes nothing');
  cache.setSnapshot('n', { [CDS]: [cluster('a')] });
  assert.deepEqual(changes, [EDS], 'a type left out of setSnapshot becomes empty');
  assert.equal(cache.resources('n', EDS)!.resources.size, 0);
});

test('updateResources upserts and removes, keeping the rest', () => {
  const cache = new SnapshotCache();
  cache.setResources('n', CDS, [cluster('a'), cluster('b')]);
  cache.updateResources('n', CDS, { upsert: [cluster('c'), cluster('a', 3)], remove: ['b'] });
  const set = cache.resources('n', CDS)!;
  assert.deepEqual([...set.resources.keys()].sort(), ['a', 'c']);
});

test('caller-given versions are used for the type and for pre-encoded resources', () => {
  const cache = new SnapshotCache();
  const any = packAny('envoy.config.cluster.v3.Cluster', { name: 'a' });
  cache.setSnapshot('n', { [CDS]: { version: '2024-06-01T10:00:00Z/42', resources: [{ name: 'a', any, version: 'r7' }] } });
  assert.equal(cache.resources('n', CDS)!.version, '2024-06-01T10:00:00Z/42');
  assert.equal(cache.resources('n', CDS)!.resources.get('a')?.version, 'r7');
  cache.setResources('n', CDS, [{ name: 'a', any, version: 'r7' }], 'v43');
  assert.equal(cache.resources('n', CDS)!.version, 'v43');
});

test('clearSnapshot empties every type and notifies; unknown keys are not ready', () => {
  const cache = new SnapshotCache();
  cache.setSnapshot('n', { [CDS]: [cluster('a')], [LDS]: [] });
  const { changes } = recorder(cache, 'n');
  cache.clearSnapshot('n');
  assert.deepEqual(changes, [CDS]);
  assert.equal(cache.resources('n', CDS)!.resources.size, 0);
  assert.equal(cache.resources('nobody', CDS), undefined);
  changes.length = 0;
  cache.setResources('fresh', LDS, []);
  assert.equal(cache.resources('fresh', CDS)?.resources.size, 0, 'a key with anything set reads its other types as empty');
});

test('watches are cancelled independently and idempotently; nodeKey defaults to the node id', () => {
  const cache = new SnapshotCache();
  const listener = (): void => {};
  const one = cache.watch('n', listener);
  const two = cache.watch('n', listener);
  assert.equal(cache.watcherCount('n'), 2);
  one();
  one();
  assert.equal(cache.watcherCount('n'), 1);
  two();
  assert.equal(cache.watcherCount(), 0);
  assert.equal(cache.nodeKey({ id: 'sidecar~1', cluster: 'c' }), 'sidecar~1');
  assert.equal(new SnapshotCache({ nodeKey: (node) => node.cluster ?? '' }).nodeKey({ id: 'x', cluster: 'c' }), 'c');
});

test('bad resources are refused with TRELLIS_XDS_INVALID_SNAPSHOT and leave the previous snapshot serving', () => {
  const cache = new SnapshotCache();
  cache.setResources('n', CDS, [cluster('a')]);
  const before = cache.resources('n', CDS)!.version;
  const invalid = (fn: () => void, message: RegExp): void =>
    assert.throws(fn, (err: unknown) => err instanceof XdsError && err.code === 'TRELLIS_XDS_INVALID_SNAPSHOT' && message.test(err.message));
  invalid(() => cache.setSnapshot('n', { [CDS]: [cluster('a'), cluster('a')], [EDS]: [] }), /resource a is given twice/);
  invalid(() => cache.setResources('n', CDS, [{ name: '', resource: {} }]), /empty name/);
  invalid(
    () => cache.updateResources('n', CDS, { upsert: [{ name: 'a', any: packAny('envoy.config.listener.v3.Listener', { name: 'a' }) }] }),
    /Any has type type\.googleapis\.com\/envoy\.config\.listener\.v3\.Listener, expected/,
  );
  assert.equal(cache.resources('n', CDS)!.version, before);
});

test('a pre-encoded resource with its version is stored as given: node keys set with one object share it', () => {
  const cache = new SnapshotCache();
  const shared = { name: 'reviews', any: packAny('envoy.config.cluster.v3.Cluster', cluster('reviews')), version: 'v7' };
  cache.setSnapshot('a', { [CDS]: [shared] });
  cache.setSnapshot('b', { [CDS]: [shared] });
  assert.equal(cache.resources('a', CDS)!.resources.get('reviews'), shared);
  assert.equal(cache.resources('b', CDS)!.resources.get('reviews'), shared);
  // Without a version the cache hashes the bytes and keeps its own record.
  const unversioned = { name: 'reviews', any: shared.any };
  cache.setResources('a', CDS, [unversioned]);
  assert.notEqual(cache.resources('a', CDS)!.resources.get('reviews'), unversioned);
  assert.equal(cache.resources('a', CDS)!.resources.get('reviews')!.any, shared.any);
});
