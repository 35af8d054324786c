// `trellis up --detach` / `trellis down` on a small mesh with bad input: a duplicate name, a command that exits at once, a port taken, an invalid config file. Each is named, and the rest of the mesh serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { isAlive, readState } from '../../src/local/state-file.js';
import { freePortBase } from './trellis-up.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(REPO, 'dist/src/cli/main.js');
const APPS = join(REPO, 'dist/examples/bookinfo/src');

function get(port: number, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000, ...(host ? { headers: { host } } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`${what}: not within ${timeoutMs} ms`);
}

test('bad input is named and the rest of the mesh starts; --detach returns with the status table and down stops every process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bad-input-e2e-'));
  let blocker: Server | undefined;
  t.after(() => {
    blocker?.close();
    for (const p of readState(dir)?.processes ?? []) if (isAlive(p.pid)) process.kill(p.pid!, 'SIGKILL');
    const state = readState(dir);
    if (state && isAlive(state.supervisorPid)) process.kill(state.supervisorPid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'config', 'broken.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: broken, namespace: default }\nspec:\n  hosts: [details]\n  http:\n  - route:\n    - destination: { host: details }\n      weight: -5\n');
  writeFileSync(join(dir, 'mesh.yaml'), stringify({
    config: ['config'],
    workloads: [
      { name: 'details-v1', labels: { app: 'details', version: 'v1' }, command: join(APPS, 'details.js'), service: { host: 'details', port: 9080 } },
      { name: 'crasher', sidecar: false, command: process.execPath, args: ['-e', 'console.error("crasher: DATABASE_URL is not set"); process.exit(3)'] },
      { name: 'ratings-v1', labels: { app: 'ratings', version: 'v1' }, command: join(APPS, 'ratings.js'), service: { host: 'ratings', port: 9080 } },
      { name: 'details-v1', labels: { app: 'details' }, command: join(APPS, 'details.js'), service: { host: 'details', port: 9080 } },
    ],
  }));
  const base = await freePortBase(dir);
  // ratings-v1 is the third workload: block base+30; something else already listens on its application port.
  blocker = createServer();
  await new Promise<void>((r) => blocker!.listen(base + 30, '127.0.0.1', r));

  // The crasher never becomes ready, so up waits out the whole timeout: long enough for details-v1's proxy to fetch its
  // certificate and sync on a loaded machine, short enough to keep the test quick.
  const upRun = spawnSync(process.execPath, [CLI, 'up', dir, '--detach', '--port-base', String(base), '--ready-timeout', '20s'], { encoding: 'utf8', timeout: 90_000 });
  const log = (): string => readFileSync(join(dir, '.trellis', 'up.log'), 'utf8');
  assert.equal(upRun.status, 0, `up --detach: ${upRun.stderr}\n${log()}`);
  assert.match(upRun.stdout, new RegExp(`^details-v1 +workload +${base + 10} +http://127\\.0\\.0\\.1:${base + 11} +${base + 12} +${base + 13} +proxy running, app running +SYNCED$`, 'm'));
  assert.match(upRun.stdout, /^crasher +external/m);
  assert.doesNotMatch(upRun.stdout, /^ratings-v1 /m, 'left out: its port is taken');
  const state = readState(dir)!;
  assert.ok(isAlive(state.supervisorPid));

  const text = log();
  assert.match(text, /workloads\[3\]\.name: duplicate name "details-v1" \(already used by workloads\[0\]\)/);
  assert.match(text, new RegExp(`ratings-v1: app port ${base + 30} is already in use by another process; left out of the mesh`));
  assert.match(text, /broken\.yaml: VirtualService default\/broken: spec\.http\[0\]\.route\[0\]\.weight/, 'the control plane names the file, resource and field');
  assert.match(text, /\[crasher\] +crasher: DATABASE_URL is not set/);
  assert.match(text, /\[crasher\] +exited \(exit 3\) after [\d.]+ s; restart #1 in/);
  await eventually('a second restart (backoff)', () => /\[crasher\] +exited \(exit 3\) after [\d.]+ s; restart #2 in/.test(log()));

  // The rest serves: details through its sidecar's inbound port, and through its own HTTP_PROXY by mesh name.
  assert.equal((await get(base + 12, '/details/0')).status, 200);
  const viaMesh = await get(base + 11, 'http://details:9080/details/0', 'details:9080');
  assert.equal(viaMesh.status, 200);
  assert.match(viaMesh.body, /"ISBN-10":"1234567890"/);

  const again = spawnSync(process.execPath, [CLI, 'up', dir, '--detach', '--port-base', String(base)], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already running \(supervisor PID \d+\); stop it with `trellis down/);

  const pids = (readState(dir)?.processes ?? []).map((p) => p.pid).filter((p): p is number => p !== undefined);
  assert.ok(pids.length >= 2, `PIDs of details-v1 and its sidecar (the crasher may be in backoff): ${pids.join(",")}`);
  const down = spawnSync(process.execPath, [CLI, 'down', dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(down.status, 0, down.stderr);
  assert.match(down.stdout, /stopped the mesh/);
  assert.ok(!isAlive(state.supervisorPid), 'the supervisor is gone');
  for (const pid of pids) assert.ok(!isAlive(pid), `process ${pid} is gone`);
  assert.equal(readState(dir), undefined, 'the state file is removed');
});
