// The peer-metadata cache: one decode per distinct header, bad headers cached as unknown, bounded in size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePeerMetadataCached, encodePeerMetadata, PEER_METADATA_CACHE_SIZE } from '../../../src/proxy/filters/metadata-exchange/peer-metadata.js';
import { workloadLabels } from '../../../src/proxy/filters/istio-stats/labels.js';

test('the same header gives the same decoded object (and the same derived labels); another header its own', () => {
  const a = encodePeerMetadata({ WORKLOAD_NAME: 'productpage-v1', NAMESPACE: 'default', LABELS: { app: 'productpage' } });
  const b = encodePeerMetadata({ WORKLOAD_NAME: 'reviews-v2', NAMESPACE: 'default' });
  const first = decodePeerMetadataCached(a);
  assert.deepEqual(first, { WORKLOAD_NAME: 'productpage-v1', NAMESPACE: 'default', LABELS: { app: 'productpage' } });
  assert.equal(decodePeerMetadataCached(a), first, 'decoded once');
  assert.equal(workloadLabels(first), workloadLabels(decodePeerMetadataCached(a)), 'labels derived once per peer');
  assert.equal(workloadLabels(first).app, 'productpage');
  assert.equal(decodePeerMetadataCached(b)?.['WORKLOAD_NAME'], 'reviews-v2');
});

test('a header that does not decode stays unknown; more distinct headers than the bound still decode correctly', () => {
  assert.equal(decodePeerMetadataCached('!!not base64 of a Struct!!'), undefined);
  assert.equal(decodePeerMetadataCached('!!not base64 of a Struct!!'), undefined);
  for (let i = 0; i < PEER_METADATA_CACHE_SIZE + 10; i++) {
    assert.equal(decodePeerMetadataCached(encodePeerMetadata({ WORKLOAD_NAME: `w-${i}` }))?.['WORKLOAD_NAME'], `w-${i}`);
  }
});
