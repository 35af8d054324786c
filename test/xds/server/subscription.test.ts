// Subscription: wildcard only for LDS/CDS (legacy empty first request or explicit "*"), names otherwise, for SotW and Delta.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subscription } from '../../../src/xds/server/subscription.js';
import { CDS, EDS, LDS, RDS, SDS } from './ads-harness.js';

test('SotW: an empty first request is wildcard for LDS and CDS only', () => {
  for (const typeUrl of [LDS, CDS]) {
    const s = new Subscription(typeUrl);
    assert.equal(s.applySotw([], true), true);
    assert.equal(s.wildcard, true, typeUrl);
    assert.equal(s.applySotw([], false), false, 'ACKs with an empty list keep legacy wildcard');
  }
  for (const typeUrl of [EDS, RDS, SDS]) {
    const s = new Subscription(typeUrl);
    s.applySotw([], true);
    assert.equal(s.wildcard, false, typeUrl);
    assert.equal(s.wants('anything'), false);
  }
});

test('SotW: names without "*" end wildcard; "*" restores it; empty after names is unsubscribe-all', () => {
  const s = new Subscription(CDS);
  s.applySotw([], true);
  assert.equal(s.applySotw(['a'], false), true);
  assert.deepEqual(s.describe(), { wildcard: false, names: ['a'] });
  assert.equal(s.applySotw(['*', 'a'], false), true);
  assert.deepEqual(s.describe(), { wildcard: true, names: ['a'] });
  s.applySotw(['a'], false);
  s.applySotw([], false);
  assert.deepEqual(s.describe(), { wildcard: false, names: [] });
});

test('SotW: "*" means nothing special for EDS, and the same names in another order are no change', () => {
  const s = new Subscription(EDS);
  s.applySotw(['*', 'a'], true);
  assert.deepEqual(s.describe(), { wildcard: false, names: ['a'] });
  s.applySotw(['b', 'a'], false);
  assert.equal(s.applySotw(['a', 'b'], false), false);
});

test('Delta: subscribe/unsubscribe, "*" and legacy wildcard; re-subscribed names are reported as added', () => {
  const cds = new Subscription(CDS);
  assert.deepEqual(cds.applyDelta([], [], true), []);
  assert.equal(cds.wildcard, true);
  assert.deepEqual(cds.applyDelta(['a'], [], false), ['a']);
  assert.deepEqual(cds.applyDelta([], ['*'], false), []);
  assert.deepEqual(cds.describe(), { wildcard: false, names: ['a'] });
  assert.deepEqual(cds.applyDelta(['a', '*'], ['ghost'], false), ['a']);
  assert.deepEqual(cds.describe(), { wildcard: true, names: ['a'] });

  const eds = new Subscription(EDS);
  eds.applyDelta([], [], true);
  assert.equal(eds.wildcard, false);
  eds.applyDelta(['x', 'y'], [], false);
  eds.applyDelta([], ['x'], false);
  assert.deepEqual(eds.describe(), { wildcard: false, names: ['y'] });
});
