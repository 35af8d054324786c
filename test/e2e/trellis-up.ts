// Runs `trellis up` for an end-to-end test: a free port block, the process started and awaited until the mesh is
// ready, and a stop that leaves nothing behind (SIGINT, SIGKILL after 30 s, then any leftover PID, then the dir).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadManifest } from '../../src/local/manifest.js';
import { findTakenPorts, planPorts } from '../../src/local/port-blocks.js';
import { isAlive, readState } from '../../src/local/state-file.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(REPO, 'dist/src/cli/main.js');
const EXAMPLE = join(REPO, 'examples/bookinfo');

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
export async function startTrellisUp(dir: string, base: number, onOutput: (chunk: string) => void, extraArgs: readonly string[] = []): Promise<ChildProcess> {
  let output = '';
  const up = spawn(process.execPath, [CLI, 'up', dir, '--port-base', String(base), '--no-color', '--ready-timeout', '60s', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
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

/** A free loopback port (bound and released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export interface BookinfoCopy {
  readonly dir: string;
  readonly gatewayPort: number;
  readonly externalPort: number;
}

/**
 * A copy of examples/bookinfo in a new temp dir whose fixed ports (the gateway's 8080, the external API's 19480) are
 * free ones, so a test runs beside `npm start`; HTTPS and its certificate are left out. `config` adds files (name →
 * YAML text) to the mesh's config, `mesh` adds mesh options.
 */
export async function copyBookinfo(prefix: string, extra: { config?: Record<string, string>; mesh?: Record<string, unknown> } = {}): Promise<BookinfoCopy> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const manifest = loadManifest(EXAMPLE);
  const gatewayPort = await freePort();
  const externalPort = await freePort();
  const config: string[] = [];
  for (const f of readdirSync(join(EXAMPLE, 'config'))) {
    writeFileSync(join(dir, `config-${f}`), readFileSync(join(EXAMPLE, 'config', f), 'utf8').replaceAll('number: 8080', `number: ${gatewayPort}`));
    config.push(`config-${f}`);
  }
  for (const [name, text] of Object.entries(extra.config ?? {})) {
    writeFileSync(join(dir, name), text);
    config.push(name);
  }
  const copy = {
    config,
    mesh: { ...manifest.mesh, ...extra.mesh },
    workloads: manifest.workloads.map((w) => ({
      name: w.name, namespace: w.namespace, labels: w.labels, annotations: w.annotations, serviceAccount: w.serviceAccount, command: w.command, args: w.args, env: w.env,
      ...(w.service ? { service: w.service } : {}), sidecar: w.sidecar, ...(w.name === 'external-api' ? { port: externalPort } : w.port ? { port: w.port } : {}),
    })),
    gateways: manifest.gateways.map((g) => ({ ...g, ports: [gatewayPort] })),
  };
  writeFileSync(join(dir, 'mesh.yaml'), stringify(copy));
  return { dir, gatewayPort, externalPort };
}
