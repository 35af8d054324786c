// Reconnect backoff: full jitter under a doubling ceiling, capped, reset after success.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_MAX_MS, ExponentialBackoff } from '../../src/common/backoff.js';

test("defaults are Envoy's xDS retry defaults: 500 ms base, 30 s max", () => {
  const backoff = new ExponentialBackoff();
  assert.equal(DEFAULT_BACKOFF_BASE_MS, 500);
  assert.equal(DEFAULT_BACKOFF_MAX_MS, 30_000);
  assert.equal(backoff.ceilingMs, 500);
});

test('the ceiling doubles each retry until it reaches max, then stays', () => {
  const backoff = new ExponentialBackoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
  const delays = Array.from({ length: 7 }, () => backoff.next());
  assert.deepEqual(delays, [99, 199, 399, 799, 999, 999, 999]);
});

test('delays are drawn uniformly under the ceiling (full jitter)', () => {
  const draws = [0, 0.25, 0.5];
  let i = 0;
  const backoff = new ExponentialBackoff({ baseMs: 400, maxMs: 10_000, random: () => draws[i++]! });
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [0, 200, 800]);
});

test('every delay stays within [0, ceiling) even for a random source outside [0, 1)', () => {
  for (const value of [-5, 0, 0.3, 1, 7]) {
    const backoff = new ExponentialBackoff({ baseMs: 50, maxMs: 400, random: () => value });
    for (let n = 0; n < 10; n++) {
      const ceiling = backoff.ceilingMs;
      const delay = backoff.next();
      assert.ok(delay >= 0 && delay < ceiling, `delay ${delay} outside [0, ${ceiling}) for random ${value}`);
    }
  }
});

test('with Math.random, delays stay within bounds over many retries', () => {
  const backoff = new ExponentialBackoff();
  for (let n = 0; n < 200; n++) {
    const delay = backoff.next();
    assert.ok(delay >= 0 && delay < DEFAULT_BACKOFF_MAX_MS);
  }
  assert.equal(backoff.ceilingMs, DEFAULT_BACKOFF_MAX_MS);
});

test('reset brings the ceiling back to base', () => {
  const backoff = new ExponentialBackoff({ baseMs: 10, maxMs: 1000, random: () => 0.5 });
  backoff.next();
  backoff.next();
  backoff.next();
  assert.equal(backoff.ceilingMs, 80);
  backoff.reset();
  assert.equal(backoff.attempts, 0);
  assert.equal(backoff.next(), 5);
});

test('a base that is not positive, or a max under the base, is refused', () => {
  assert.throws(() => new ExponentialBackoff({ baseMs: 0 }), RangeError);
  assert.throws(() => new ExponentialBackoff({ baseMs: 100, maxMs: 50 }), RangeError);
});
