// Workload certificates rotating every ~2 s (4 s TTL, renewed at half life) under steady load through a STRICT mTLS
// mesh: `trellis up` with productpage, details, reviews v1 and the ingress gateway; no request may fail, and the
// certificate a sidecar presents must change several times while the load runs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadManifest } from '../../src/local/manifest.js';
import { freePortBase, startTrellisUp, stopTrellisUp } from './trellis-up.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
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
  const base = await freePortBase(dir);
  detailsInbound = base + 22; // block 2 (details-v1), +2: its sidecar's inbound port
  up = await startTrellisUp(dir, base, (c) => (output += c));
});

after(async () => {
  await stopTrellisUp(up, dir);
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
