// Shared deadline lists: deadlines fire at their time, in order; cancelled ones never fire; a cancelled head does not
// make the next fire early; many distinct durations fall back to plain timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineList, scheduleDeadline } from '../../src/common/deadline-list.js';

test('deadlines of one list fire in order, each no earlier than its duration; cancelled ones never', async () => {
  const list = new DeadlineList(40);
  const fired: { name: string; after: number }[] = [];
  const start = performance.now();
  const add = (name: string) => {
    const at = performance.now();
    return list.add(() => fired.push({ name, after: performance.now() - at }));
  };
  add('a');
  await sleep(10);
  const b = add('b');
  await sleep(10);
  add('c');
  b.cancel();
  b.cancel(); // idempotent
  assert.equal(list.size, 2);
  await sleep(120);
  assert.deepEqual(fired.map((f) => f.name), ['a', 'c']);
  for (const f of fired) assert.ok(f.after >= 39, `${f.name} fired after ${f.after.toFixed(1)} ms`);
  assert.equal(list.size, 0);
  assert.ok(performance.now() - start < 1000);
});

test('a cancelled head leaves the timer to fire early once: the next deadline still waits for its own time', async () => {
  const list = new DeadlineList(60);
  let firedAfter = -1;
  const head = list.add(() => assert.fail('cancelled'));
  await sleep(30);
  const at = performance.now();
  list.add(() => (firedAfter = performance.now() - at));
  head.cancel();
  await sleep(45); // past the head's deadline (the timer fires here), before the second's
  assert.equal(firedAfter, -1);
  await sleep(60);
  assert.ok(firedAfter >= 59, `fired after ${firedAfter.toFixed(1)} ms`);
});

test('a deadline may schedule and cancel others while the list fires', async () => {
  const list = new DeadlineList(20);
  const order: string[] = [];
  let victim: { cancel(): void } | undefined;
  list.add(() => {
    order.push('first');
    victim?.cancel();
    list.add(() => order.push('added while firing'));
  });
  victim = list.add(() => order.push('victim'));
  await sleep(80);
  assert.deepEqual(order, ['first', 'added while firing']);
});

test('scheduleDeadline shares a list per duration and falls back to plain timers past the limit of distinct durations', async () => {
  const fired: number[] = [];
  // 100 distinct durations: the first ones get lists, the rest plain timers; all fire, all cancel.
  const kept = [];
  for (let i = 0; i < 100; i++) {
    const d = scheduleDeadline(10 + i, () => fired.push(i));
    if (i % 2 === 1) d.cancel();
    else kept.push(d);
  }
  await sleep(250);
  assert.deepEqual(fired, Array.from({ length: 50 }, (_, k) => 2 * k));
});

