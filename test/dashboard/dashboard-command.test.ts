import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DashboardState } from '../../src/dashboard/mesh-source.js';
import { startFakeMesh } from './fake-mesh.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

function run(args: string[]): { child: ReturnType<typeof spawn>; output: Promise<string>; firstLine: Promise<string> } {
  const child = spawn(process.execPath, [cli, 'dashboard', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const firstLine = new Promise<string>((resolveLine, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolveLine(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`trellis dashboard exited ${code}: ${out}`)));
  });
  firstLine.catch(() => undefined);
  const output = new Promise<string>((res) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => res(`${code}|${out}${err}`));
  });
  return { child, output, firstLine };
}

test('trellis dashboard --monitoring --proxy-admin --port 0 serves the mesh it was pointed at', async (t) => {
  const mesh = await startFakeMesh();
  t.after(() => mesh.close());
  const { child, firstLine } = run(['--port', '0', '--monitoring', mesh.monitoringUrl.replace('http://', ''), '--proxy-admin', mesh.adminUrl]);
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  const line = await firstLine;
  const url = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(line)?.[1];
  assert.ok(url, line);
  assert.match(line, /metrics from 1 proxies, control plane http:\/\/127\.0\.0\.1:\d+/);
  let state: DashboardState | undefined;
  for (let i = 0; i < 40 && !(state?.sync.length && state.graph.edges.length); i++) {
    state = (await (await fetch(`${url}/api/state`)).json()) as DashboardState;
    if (!state.graph.edges.length) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(state?.sync.length, 2);
  assert.ok(state?.graph.edges.some((e) => e.source === 'productpage' && e.destination === 'reviews'));
});

test('trellis dashboard --mesh DIR with no mesh running there says so and exits 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-dashboard-nomesh-'));
  try {
    const result = await run(['--mesh', dir, '--port', '0']).output;
    assert.match(result, /^1\|/);
    assert.match(result, new RegExp(`no mesh is running from ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
