// Workload certificates rotating every ~2 s (4 s TTL, renewed at half life) under steady load through a STRICT mTLS
// mesh: `trellis up` with productpage, details, reviews v1 and the ingress gateway; no request may fail, and the
// certificate a sidecar presents must change several times while the load runs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
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

let dir = '';
let up: ChildProcess | undefined;
let output = '';
let gatewayPort = 0;
let detailsInbound = 0;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function getPage(): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gatewayPort, path: '/productpage', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The serial of the certificate the details sidecar presents on its inbound port (the handshake then fails: no client cert). */
function presentedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: detailsInbound, rejectUnauthorized: false, ALPNProtocols: ['istio-peer-exchange', 'istio'] }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-rotation-e2e-'));
  gatewayPort = await freePort();
  const manifest = loadManifest(EXAMPLE);
  writeFileSync(join(dir, 'gateway.yaml'), readFileSync(join(EXAMPLE, 'config/gateway.yaml'), 'utf8').replaceAll('number: 8080', `number: ${gatewayPort}`));
  writeFileSync(join(dir, 'peer-authentication.yaml'), readFileSync(join(EXAMPLE, 'config/peer-authentication.yaml'), 'utf8'));
  const keep = new Set(['productpage-v1', 'details-v1', 'reviews-v1']);
  writeFileSync(
    join(dir, 'mesh.yaml'),
    stringify({
      config: ['gateway.yaml', 'peer-authentication.yaml'],
      mesh: { workloadCertTtl: '4s' },
      workloads: manifest.workloads
        .filter((w) => keep.has(w.name))
        .map((w) => ({ name: w.name, namespace: w.namespace, labels: w.labels, serviceAccount: w.serviceAccount, command: w.command, args: w.args, env: w.env, service: w.service })),
      gateways: manifest.gateways.map((g) => ({ ...g, ports: [gatewayPort] })),
    }),
  );
  let base = 20_000 + 100 * Math.floor(Math.random() * 300);
  for (let i = 0; i < 20 && (await findTakenPorts(planPorts(loadManifest(dir), base))).length > 0; i++) base = 20_000 + 100 * Math.floor(Math.random() * 300);
  detailsInbound = base + 22; // block 2 (details-v1), +2: its sidecar's inbound port
  up = spawn(process.execPath, [CLI, 'up', dir, '--port-base', String(base), '--no-color', '--ready-timeout', '60s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  up.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
  up.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`trellis up not ready in 90 s:\n${output.slice(-4000)}`)), 90_000);
    up!.stdout!.on('data', () => {
      if (/trellis up: mesh ready/.test(output) && /Ctrl-C/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
    up!.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`trellis up exited with ${code}:\n${output.slice(-4000)}`));
    });
  });
});

after(async () => {
  if (up && up.exitCode === null) {
    const exited = new Promise((r) => up!.once('exit', r));
    up.kill('SIGINT');
    const timer = setTimeout(() => up!.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  for (const p of readState(dir)?.processes ?? []) if (isAlive(p.pid)) process.kill(p.pid!, 'SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('certificates rotating every ~2 s under steady load: zero failed requests, several certificates presented', async () => {
  const serials = new Set<string>();
  const failures: string[] = [];
  let requests = 0;
  const until = Date.now() + 12_000;
  const worker = async (): Promise<void> => {
    while (Date.now() < until) {
      requests++;
      try {
        const { status, body } = await getPage();
        if (status !== 200) failures.push(`status ${status}`);
        else if (body.includes('Sorry, product')) failures.push(`degraded page: ${/Sorry, product [a-z]+/.exec(body)?.[0]}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  const sampler = async (): Promise<void> => {
    while (Date.now() < until) {
      serials.add(await presentedSerial().catch((err: unknown) => `error: ${String(err)}`));
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  await Promise.all([worker(), worker(), worker(), worker(), sampler()]);
  assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
  assert.ok(requests >= 40, `steady load: ${requests} requests`);
  assert.ok(![...serials].some((s) => s.startsWith('error')), [...serials].join(', '));
  assert.ok(serials.size >= 3, `the details sidecar presented ${serials.size} certificates in 12 s: ${[...serials].join(', ')}`);
});
