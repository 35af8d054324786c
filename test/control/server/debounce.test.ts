// Debounce as istiod does it: quiet period, max delay, merged requests, one push at a time, endpoint-only bypass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Debouncer } from '../../../src/control/server/debounce.js';
import type { PushRequest } from '../../../src/control/model/push-request.js';
import { FakeClock } from './fake-clock.js';

function config(name: string, start = 0): PushRequest {
  return { full: true, configsUpdated: [{ kind: 'VirtualService', namespace: 'default', name }], reasons: ['config'], start };
}

function endpoints(host: string, start = 0): PushRequest {
  return { full: false, configsUpdated: [{ kind: 'Endpoints', namespace: 'default', name: host }], reasons: ['endpoint'], start };
}

function recorder(): { pushes: Array<{ request: PushRequest; merged: number; at: number }>; push: (clock: FakeClock) => (r: PushRequest, n: number) => void } {
  const pushes: Array<{ request: PushRequest; merged: number; at: number }> = [];
  return { pushes, push: (clock) => (request, merged) => void pushes.push({ request, merged, at: clock.now() }) };
}

test('a single change is pushed after the quiet period, not before', async () => {
  const clock = new FakeClock();
  const { pushes, push } = recorder();
  const debouncer = new Debouncer(push(clock), { afterMs: 100, maxMs: 10_000, clock });
  debouncer.enqueue(config('reviews'));
  await clock.advance(99);
  assert.equal(pushes.length, 0);
  await clock.advance(1);
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0]!.at, 100);
  assert.equal(pushes[0]!.merged, 1);
  assert.equal(debouncer.pendingCount, 0);
});

test('changes inside the quiet period merge into one push that waits for quiet', async () => {
  const clock = new FakeClock();
  const { pushes, push } = recorder();
  const debouncer = new Debouncer(push(clock), { afterMs: 100, maxMs: 10_000, clock });
  debouncer.enqueue(config('reviews', 0));
  await clock.advance(60);
  debouncer.enqueue(config('ratings', 60));
  await clock.advance(60); // t=120: only 60 ms quiet
  assert.equal(pushes.length, 0);
  await clock.advance(40); // t=160: 100 ms after the last change
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0]!.at, 160);
  assert.equal(pushes[0]!.merged, 2);
  assert.deepEqual(pushes[0]!.request.configsUpdated.map((k) => k.name), ['reviews', 'ratings']);
  assert.equal(pushes[0]!.request.start, 0, 'convergence is measured from the first change');
});

test('a steady stream of changes is pushed once the max delay has passed', async () => {
  const clock = new FakeClock();
  const { pushes, push } = recorder();
  const debouncer = new Debouncer(push(clock), { afterMs: 100, maxMs: 1_000, clock });
  for (let t = 0; t < 1_000; t += 50) {
    debouncer.enqueue(config(`vs-${t}`, t));
    await clock.advance(50);
  }
  assert.equal(pushes.length, 1, 'pushed at the max delay although never quiet');
  assert.equal(pushes[0]!.at, 1_000);
  assert.equal(pushes[0]!.merged, 20);
  debouncer.close();
  assert.equal(clock.pending, 0, 'close leaves no timer behind');
});

test('endpoint-only and full requests merge into a full one', async () => {
  const clock = new FakeClock();
  const { pushes, push } = recorder();
  const debouncer = new Debouncer(push(clock), { afterMs: 100, maxMs: 10_000, clock });
  debouncer.enqueue(endpoints('reviews.default.svc.cluster.local'));
  debouncer.enqueue(config('reviews'));
  await clock.advance(100);
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0]!.request.full, true);
  assert.deepEqual(pushes[0]!.request.reasons, ['endpoint', 'config']);
});

test('endpoint-only requests alone stay endpoint-only', async () => {
  const clock = new FakeClock();
  const { pushes, push } = recorder();
  const debouncer = new Debouncer(push(clock), { afterMs: 100, clock });
  debouncer.enqueue(endpoints('a'));
  debouncer.enqueue(endpoints('b'));
  await clock.advance(100);
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0]!.request.full, false);
  assert.equal(pushes[0]!.request.configsUpdated.length, 2);
});

test('without EDS debounce an endpoint-only request goes out at once, not held by a pending full one', async () => {
  const clock = new FakeClock();
  const { pushes, push } = recorder();
  const debouncer = new Debouncer(push(clock), { afterMs: 100, debounceEndpoints: false, clock });
  debouncer.enqueue(config('reviews'));
  debouncer.enqueue(endpoints('ratings.default.svc.cluster.local'));
  await clock.advance(0);
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0]!.request.full, false);
  assert.equal(pushes[0]!.at, 0);
  await clock.advance(100);
  assert.equal(pushes.length, 2);
  assert.equal(pushes[1]!.request.full, true);
  assert.equal(pushes[1]!.request.configsUpdated.length, 1, 'the endpoint request was not merged into the full one');
});

test('one push at a time: changes during a slow push wait for it, then go out merged', async () => {
  const clock = new FakeClock();
  const started: PushRequest[] = [];
  let finish: () => void = () => {};
  const debouncer = new Debouncer(
    (request) => {
      started.push(request);
      return new Promise<void>((resolve) => (finish = resolve));
    },
    { afterMs: 100, clock },
  );
  debouncer.enqueue(config('a'));
  await clock.advance(100);
  assert.equal(started.length, 1);
  debouncer.enqueue(config('b'));
  debouncer.enqueue(config('c'));
  await clock.advance(500); // quiet, but the first push is still running
  assert.equal(started.length, 1);
  finish();
  await clock.advance(0);
  assert.equal(started.length, 2);
  assert.deepEqual(started[1]!.configsUpdated.map((k) => k.name), ['b', 'c']);
  finish();
});

test('a push function that throws does not stop later pushes', async () => {
  const clock = new FakeClock();
  let calls = 0;
  const debouncer = new Debouncer(
    () => {
      calls++;
      throw new Error('boom');
    },
    { afterMs: 10, clock },
  );
  debouncer.enqueue(config('a'));
  await clock.advance(10);
  debouncer.enqueue(config('b'));
  await clock.advance(10);
  assert.equal(calls, 2);
});

test('negative durations are refused', () => {
  assert.throws(() => new Debouncer(() => {}, { afterMs: -1 }), RangeError);
});
