// Runs `trellis up` for an end-to-end test: a free port block, the process started and awaited until the mesh is
// ready, and a stop that leaves nothing behind (SIGINT, SIGKILL after 30 s, then any leftover PID, then the dir).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifest } from '../../src/local/manifest.js';
import { findTakenPorts, planPorts } from '../../src/local/port-blocks.js';
import { isAlive, readState } from '../../src/local/state-file.js';

const CLI = join(fileURLToPath(new URL('../../../', import.meta.url)), 'dist/src/cli/main.js');

/**
 * A port base in 20000-31900 where every port of the mesh in `dir` is free right now. It stays below Linux's
 * ephemeral range (32768+): there an outgoing connection of a concurrent test can take a port the mesh binds later.
 */
export async function freePortBase(dir: string): Promise<number> {
  const pick = (): number => 20_000 + 100 * Math.floor(Math.random() * 120);
  let base = pick();
  for (let i = 0; i < 20 && (await findTakenPorts(planPorts(loadManifest(dir), base))).length > 0; i++) base = pick();
  return base;
}

/** Starts `trellis up dir` on `base`; resolves once it printed the ready status table (rejects with its output tail). */
export async function startTrellisUp(dir: string, base: number, onOutput: (chunk: string) => void): Promise<ChildProcess> {
  let output = '';
  const up = spawn(process.execPath, [CLI, 'up', dir, '--port-base', String(base), '--no-color', '--ready-timeout', '60s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (chunk: string): void => {
    output += chunk;
    onOutput(chunk);
  };
  up.stdout!.setEncoding('utf8').on('data', collect);
  up.stderr!.setEncoding('utf8').on('data', collect);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`trellis up not ready in 90 s:\n${output.slice(-4000)}`)), 90_000);
    up.stdout!.on('data', () => {
      if (/trellis up: (mesh ready|started)/.test(output) && /Ctrl-C/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
    up.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`trellis up exited with ${code}:\n${output.slice(-4000)}`));
    });
  });
  assert.match(output, /trellis up: mesh ready/, output.slice(-3000));
  return up;
}

/** Stops a mesh started by startTrellisUp and removes `dir`. */
export async function stopTrellisUp(up: ChildProcess | undefined, dir: string): Promise<void> {
  if (up && up.exitCode === null) {
    const exited = new Promise((r) => up.once('exit', r));
    up.kill('SIGINT');
    const timer = setTimeout(() => up.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  // Anything the supervisor could not stop (it was killed): by PID.
  for (const p of (dir && readState(dir)?.processes) || []) if (isAlive(p.pid)) process.kill(p.pid!, 'SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
}
