// istioctl proxy-status words for one xDS type on one stream, from what the stream sent, and what came back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { syncState } from '../../../src/control/server/sync-status.js';
import type { TypeStatus } from '../../../src/xds/server/index.js';

const base: TypeStatus = {
  subscribed: { wildcard: true, names: [] },
  lastSentVersion: '',
  lastSentNonce: '',
  lastAckedVersion: '',
  sentCount: 0,
  ackCount: 0,
  nackCount: 0,
};

test('sync state: IGNORED, NOT SENT, STALE, SYNCED, NACKED', () => {
  assert.equal(syncState(undefined), 'IGNORED');
  assert.equal(syncState(base), 'NOT SENT');
  assert.equal(syncState({ ...base, lastSentVersion: 'v2', lastSentNonce: '2', lastAckedVersion: 'v1', sentCount: 2, ackCount: 1 }), 'STALE');
  assert.equal(syncState({ ...base, lastSentVersion: 'v2', lastSentNonce: '2', lastAckedVersion: 'v2', sentCount: 2, ackCount: 2 }), 'SYNCED');
  const nack = { nonce: '2', version: 'v1', message: 'bad', at: new Date(0) };
  assert.equal(syncState({ ...base, lastSentVersion: 'v2', lastSentNonce: '2', lastAckedVersion: 'v1', sentCount: 2, lastNack: nack }), 'NACKED');
  // A NACK of an older response no longer decides: the latest one was acknowledged.
  assert.equal(syncState({ ...base, lastSentVersion: 'v3', lastSentNonce: '3', lastAckedVersion: 'v3', sentCount: 3, lastNack: nack }), 'SYNCED');
});

test('sync state: a reconnect that presented the current version (no response needed) is SYNCED, not NOT SENT', () => {
  // What sotw-stream records when a reconnecting proxy's version_info equals the current wildcard set's version.
  assert.equal(syncState({ ...base, lastSentVersion: 'v7', lastAckedVersion: 'v7' }), 'SYNCED');
  // An unanswered first request with an outdated version is still waiting for its response.
  assert.equal(syncState({ ...base, lastSentVersion: '', lastAckedVersion: '' }), 'NOT SENT');
});
