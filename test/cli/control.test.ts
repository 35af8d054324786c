// `trellis control` as a process: it announces its ports, logs refused config as `file: Kind ns/name: path: message`,
// serves /ready, and stops cleanly on SIGTERM and SIGINT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../test/fixtures/bookinfo/', import.meta.url));

const BROKEN_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
    timeout: 10 seconds
`;

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`trellis control serves, reports refused config, and stops on ${signal}`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-control-cli-'));
    cpSync(fixtures, dir, { recursive: true });
    writeFileSync(join(dir, 'broken.yaml'), BROKEN_VS);
    const child = spawn(process.execPath, [bin, 'control', '--config-dir', dir, '--xds-address', '127.0.0.1:0', '--monitoring-address', '127.0.0.1:0', '--debounce-after', '50ms', '--debounce-max', '2s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    for (let i = 0; i < 400 && !/monitoring port \d+/.test(stdout); i++) await new Promise((r) => setTimeout(r, 25));
    const port = /monitoring port (\d+)/.exec(stdout)?.[1];
    assert.ok(port, `no monitoring port announced; stderr:\n${stderr}`);
    assert.match(stdout, /^xds port \d+$/m);
    assert.match(stderr, new RegExp(`${join(dir, 'broken.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: VirtualService default/broken: spec\\.http\\[0\\]\\.timeout: invalid duration`));
    assert.equal((await fetch(`http://127.0.0.1:${port}/ready`)).status, 200);
    child.kill(signal);
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
    assert.equal(code, 0, `exit code after ${signal}; stderr:\n${stderr}`);
    assert.match(stderr, new RegExp(`${signal}: stopping`));
  });
}

test('trellis control refuses a malformed duration and a missing config dir', () => {
  const bad = spawnSync(process.execPath, [bin, 'control', '--config-dir', '.', '--debounce-after', 'soon'], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /expected a duration like 100ms or 10s, got "soon"/);
  const missing = spawnSync(process.execPath, [bin, 'control', '--config-dir', '/nonexistent/trellis', '--xds-address', '127.0.0.1:0', '--monitoring-address', '127.0.0.1:0'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /control plane failed to start: cannot read config directory/);
});
