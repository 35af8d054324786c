// The request id generator: RFC 9562 version 4 UUIDs, distinct, across refills of its random pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureRequestId, uuidV4 } from '../../../src/proxy/http/request-id.js';

test('uuidV4 gives version-4, variant-10 UUIDs, all distinct over several pool refills', () => {
  const seen = new Set<string>();
  const nibbles = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const id = uuidV4();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(id);
    nibbles.add(id[0]!);
  }
  assert.equal(seen.size, 2000);
  assert.equal(nibbles.size, 16, 'every hex digit appears in the first position');
});

test('ensureRequestId keeps a trusted id, replaces an untrusted one, and generates only when asked', () => {
  const kept: Record<string, string> = { 'x-request-id': 'abc' };
  assert.equal(ensureRequestId(kept, true, false), 'abc');
  const replaced: Record<string, string> = { 'x-request-id': 'abc' };
  assert.notEqual(ensureRequestId(replaced, true, true), 'abc');
  assert.match(replaced['x-request-id']!, /^[0-9a-f-]{36}$/);
  const none: Record<string, string> = {};
  assert.equal(ensureRequestId(none, false, false), '');
  assert.equal(none['x-request-id'], undefined);
});
