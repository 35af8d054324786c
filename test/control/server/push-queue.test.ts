// The push queue: a bounded number of proxies pushed at once, one pending request per proxy, merged while it waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PushQueue } from '../../../src/control/server/push-queue.js';
import type { PushRequest } from '../../../src/control/model/push-request.js';
import { flush } from './fake-clock.js';

function request(name: string, full = true): PushRequest {
  return { full, configsUpdated: [{ kind: full ? 'VirtualService' : 'Endpoints', namespace: 'default', name }], reasons: [full ? 'config' : 'endpoint'], start: 0 };
}

/** A push function whose pushes finish when the test says so. */
function controlled(): { calls: Array<{ id: string; request: PushRequest; done: () => void }>; push: (id: string, r: PushRequest) => Promise<void>; running: () => number; maxRunning: () => number } {
  const calls: Array<{ id: string; request: PushRequest; done: () => void }> = [];
  let running = 0;
  let max = 0;
  return {
    calls,
    running: () => running,
    maxRunning: () => max,
    push: (id, r) =>
      new Promise<void>((resolve) => {
        running++;
        max = Math.max(max, running);
        calls.push({ id, request: r, done: () => { running--; resolve(); } });
      }),
  };
}

test('no more than `concurrency` proxies are pushed at once; the rest follow as pushes finish', async () => {
  const c = controlled();
  const queue = new PushQueue(c.push, { concurrency: 3 });
  for (let i = 0; i < 10; i++) queue.enqueue(`proxy-${i}`, request('reviews'));
  await flush();
  assert.equal(c.calls.length, 3);
  assert.equal(queue.inFlight, 3);
  assert.equal(queue.pendingCount, 7);
  for (let round = 0; round < 10 && c.calls.some((call) => call); round++) {
    for (const call of c.calls.splice(0)) call.done();
    await flush();
  }
  await queue.idle();
  assert.equal(c.maxRunning(), 3);
  assert.equal(queue.pendingCount, 0);
});

test('the default bound is Istio PILOT_PUSH_THROTTLE (100)', () => {
  assert.equal(new PushQueue(() => {}).concurrency, 100);
  assert.throws(() => new PushQueue(() => {}, { concurrency: 0 }), RangeError);
});

test('a proxy already waiting gets one merged request, in its original place', async () => {
  const c = controlled();
  const queue = new PushQueue(c.push, { concurrency: 1 });
  queue.enqueue('busy', request('x'));
  await flush();
  queue.enqueue('a', request('reviews', false));
  queue.enqueue('b', request('ratings'));
  queue.enqueue('a', request('details'));
  assert.equal(queue.pendingCount, 2);
  c.calls.shift()!.done();
  await flush();
  const a = c.calls.shift()!;
  assert.equal(a.id, 'a', 'merging keeps the queue position');
  assert.equal(a.request.full, true, 'endpoint-only merged with full is full');
  assert.deepEqual(a.request.configsUpdated.map((k) => k.name), ['reviews', 'details']);
  a.done();
  await flush();
  assert.equal(c.calls.shift()!.id, 'b');
});

test('a request for a proxy being pushed waits for that push, then runs once merged', async () => {
  const c = controlled();
  const queue = new PushQueue(c.push, { concurrency: 5 });
  queue.enqueue('p', request('one'));
  await flush();
  queue.enqueue('p', request('two'));
  queue.enqueue('p', request('three'));
  await flush();
  assert.equal(c.calls.length, 1, 'never two pushes of one proxy at once');
  c.calls.shift()!.done();
  await flush();
  assert.equal(c.calls.length, 1);
  assert.deepEqual(c.calls[0]!.request.configsUpdated.map((k) => k.name), ['two', 'three']);
  c.calls.shift()!.done();
  await queue.idle();
});

test('removing a proxy drops its waiting request; a failing push is reported and the queue goes on', async () => {
  const errors: string[] = [];
  const pushed: string[] = [];
  const queue = new PushQueue(
    (id) => {
      pushed.push(id);
      if (id === 'bad') throw new Error('generator exploded');
    },
    { concurrency: 1, onError: (id, err) => errors.push(`${id}: ${(err as Error).message}`) },
  );
  queue.enqueue('bad', request('x'));
  queue.enqueue('gone', request('x'));
  queue.enqueue('good', request('x'));
  queue.remove('gone');
  await queue.idle();
  assert.deepEqual(pushed, ['bad', 'good']);
  assert.deepEqual(errors, ['bad: generator exploded']);
});
