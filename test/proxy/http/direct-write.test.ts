// Direct socket writes (src/proxy/http/direct-write.ts): completion now or later, order with socket.write, failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { canWriteDirect, DIRECT_WRITE_SUPPORTED, writeDirect, type WritableStreamHandle } from '../../../src/proxy/http/direct-write.js';

interface Pair {
  /** The side written to directly. */
  writer: Socket;
  /** The peer, paused: it reads only when the test resumes it. */
  reader: Socket;
  received: () => Buffer;
  close: () => Promise<void>;
}

async function pair(): Promise<Pair> {
  let accepted!: (s: Socket) => void;
  const acceptedP = new Promise<Socket>((r) => (accepted = r));
  const server: Server = createServer((s) => accepted(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const reader = connect((server.address() as { port: number }).port, '127.0.0.1');
  reader.pause();
  const chunks: Buffer[] = [];
  reader.on('data', (d: Buffer) => chunks.push(d));
  reader.on('error', () => {});
  const writer = await acceptedP;
  writer.on('error', () => {});
  await new Promise<void>((r) => (reader.connecting ? reader.once('connect', () => r()) : r()));
  return {
    writer,
    reader,
    received: () => Buffer.concat(chunks),
    close: async () => {
      writer.destroy();
      reader.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const handleOf = (s: Socket): WritableStreamHandle => (s as Socket & { _handle: WritableStreamHandle })._handle;

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('this Node exposes the stream_wrap binding direct writes need', () => {
  assert.equal(DIRECT_WRITE_SUPPORTED, true);
});

test('a small Buffer and a latin1 string are written at once, in order with socket.write around them', async (t) => {
  const p = await pair();
  t.after(() => p.close());
  p.writer.write('a:');
  // socket.write wrote synchronously: nothing is queued in the Writable, so a direct write may follow.
  assert.equal(canWriteDirect(p.writer), true);
  const completions: number[] = [];
  assert.equal(writeDirect(handleOf(p.writer), Buffer.from('buffer;'), (s) => completions.push(s)), 0);
  assert.equal(writeDirect(handleOf(p.writer), 'latin1 \u00e9;', (s) => completions.push(s)), 0);
  p.writer.write('z');
  p.reader.resume();
  const expected = Buffer.concat([Buffer.from('a:buffer;'), Buffer.from('latin1 \u00e9;', 'latin1'), Buffer.from('z')]);
  await until(() => p.received().length >= expected.length, 'the bytes');
  assert.deepEqual(p.received(), expected);
  assert.deepEqual(completions, [], 'a write finished at once reports no completion');
});

test('a write the kernel cannot take at once stays pending and completes when the peer reads; later writes queue behind it', async (t) => {
  const p = await pair();
  t.after(() => p.close());
  const big = Buffer.alloc(32 * 1024 * 1024, 'b');
  const completions: number[] = [];
  assert.equal(writeDirect(handleOf(p.writer), big, (s) => completions.push(s)), 1);
  // libuv still holds part of it: a socket.write now must go after it, never between.
  p.writer.write('tail');
  assert.deepEqual(completions, []);
  p.reader.resume();
  await until(() => completions.length === 1, 'the completion');
  assert.deepEqual(completions, [0]);
  await until(() => p.received().length >= big.length + 4, 'every byte');
  const got = p.received();
  assert.equal(got.length, big.length + 4);
  assert.equal(got.subarray(big.length).toString(), 'tail');
  assert.equal(got.indexOf('t'), big.length, 'no byte of the tail before the end of the pending write');
});

test('a pending write whose peer goes away completes with an error status', async (t) => {
  const p = await pair();
  t.after(() => p.close());
  const completions: number[] = [];
  assert.equal(writeDirect(handleOf(p.writer), Buffer.alloc(32 * 1024 * 1024, 'c'), (s) => completions.push(s)), 1);
  // Unread data on close makes the kernel reset the connection: the pending write fails.
  p.reader.resetAndDestroy();
  await until(() => completions.length === 1, 'the failed completion');
  assert.ok(completions[0]! < 0, `status ${completions[0]}`);
});

test('no direct write while the Writable holds bytes, is corked, has ended or is still connecting', async (t) => {
  const p = await pair();
  t.after(() => p.close());
  p.writer.cork();
  assert.equal(canWriteDirect(p.writer), false, 'corked');
  p.writer.write('x');
  p.writer.uncork();
  assert.equal(canWriteDirect({ writableLength: 5, writableCorked: 0, writable: true }), false, 'bytes queued');
  assert.equal(canWriteDirect({ writableLength: 0, writableCorked: 0, writable: true, connecting: true }), false, 'connecting');
  p.writer.end();
  assert.equal(canWriteDirect(p.writer), false, 'ended');
  const fresh = connect(1, '127.0.0.1');
  fresh.on('error', () => {});
  t.after(() => fresh.destroy());
  assert.equal(canWriteDirect(fresh), false, 'a socket still connecting');
});
