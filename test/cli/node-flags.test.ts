// The V8 flags the trellis launcher runs node with: the shebang carries NODE_FLAGS, and `trellis proxy` says when it
// runs without them (started as `node main.js` by something that did not pass them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS, startedWithNodeFlags } from '../../src/cli/node-flags.js';

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test("the launcher's shebang runs node with NODE_FLAGS", () => {
  const first = readFileSync(bin, 'utf8').split('\n')[0];
  assert.equal(first, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
});

test('startedWithNodeFlags reads node options from the command line and from NODE_OPTIONS', () => {
  assert.equal(startedWithNodeFlags([], ''), false);
  assert.equal(startedWithNodeFlags(['--max-semi-space-size=64'], ''), true);
  assert.equal(startedWithNodeFlags(['--max_semi_space_size=32'], ''), true, 'V8 accepts underscores, and another size is the operator\'s choice');
  assert.equal(startedWithNodeFlags([], '--inspect --max-semi-space-size=128'), true);
  assert.equal(startedWithNodeFlags(['--max-old-space-size=64'], ''), false);
});

test('trellis proxy says when node runs without the launcher flags, and not when it has them', () => {
  const run = (flags: readonly string[]) => spawnSync(process.execPath, [...flags, bin, 'proxy', '-c', '/nonexistent/bootstrap.yaml', '--log-level', 'info'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 30_000,
  });
  const without = run([]);
  assert.match(without.stderr, /node was started without --max-semi-space-size=64/);
  const withFlags = run(NODE_FLAGS);
  assert.doesNotMatch(withFlags.stderr, /started without/);
  // Both then fail on the missing bootstrap, as before.
  assert.equal(without.status, 1);
  assert.equal(withFlags.status, 1);
});
