// `trellis proxy --status-port`: the agent's status port from the command line, with the app's metrics from
// ISTIO_PROMETHEUS_ANNOTATIONS merged in; a bad variable or a bootstrap without admin stops the proxy with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function bootstrap(withAdmin: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-status-port-'));
  const path = join(dir, 'bootstrap.json');
  writeFileSync(path, JSON.stringify({ node: { id: 'sidecar~127.0.0.1~app.default~default.svc.cluster.local', cluster: 'app' }, ...(withAdmin ? { admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } } } : {}) }));
  return path;
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a bad ISTIO_PROMETHEUS_ANNOTATIONS or a bootstrap without admin: exit 1 naming the problem', () => {
  const withAdmin = bootstrap(true);
  const bad = spawnSync(process.execPath, [bin, 'proxy', '-c', withAdmin, '--status-port', '15020'], { encoding: 'utf8', env: { ...process.env, ISTIO_PROMETHEUS_ANNOTATIONS: '{"scrape":"true","port":"web"}' }, timeout: 20_000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /TRELLIS_CONFIG_INVALID: ISTIO_PROMETHEUS_ANNOTATIONS=.*port: expected a port number 1-65535, got "web"/);
  const loop = spawnSync(process.execPath, [bin, 'proxy', '-c', withAdmin, '--status-port', '15020'], { encoding: 'utf8', env: { ...process.env, ISTIO_PROMETHEUS_ANNOTATIONS: '{"scrape":"true","port":"15020"}' }, timeout: 20_000 });
  assert.equal(loop.status, 1);
  assert.match(loop.stderr, /the agent's status port 15020, which would make the agent scrape itself/);
  const noAdmin = bootstrap(false);
  const env = { ...process.env };
  delete env['ISTIO_PROMETHEUS_ANNOTATIONS'];
  const res = spawnSync(process.execPath, [bin, 'proxy', '-c', noAdmin, '--status-port', '15020'], { encoding: 'utf8', env, timeout: 20_000 });
  assert.equal(res.status, 1);
  assert.match(res.stderr, /--status-port needs the bootstrap's admin address/);
  for (const p of [withAdmin, noAdmin]) rmSync(join(p, '..'), { recursive: true, force: true });
});

test("the status port serves the proxy's, the app's and the agent's metrics and the proxy's readiness", async (t) => {
  const app = createServer((req, res) => res.writeHead(req.url === '/custom' ? 200 : 404, { 'content-type': 'text/plain' }).end('# TYPE app_hits_total counter\napp_hits_total 3\n'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => app.close(() => r())));
  const statusPort = await freePort();
  const path = bootstrap(true);
  const env = { ...process.env, ISTIO_PROMETHEUS_ANNOTATIONS: JSON.stringify({ scrape: 'true', port: String((app.address() as AddressInfo).port), path: '/custom' }) };
  const proxy = spawn(process.execPath, [bin, 'proxy', '-c', path, '--status-port', String(statusPort), '--log-level', 'error'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proxy.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  t.after(async () => {
    if (proxy.exitCode === null) {
      const exited = new Promise((r) => proxy.once('exit', r));
      proxy.kill('SIGTERM');
      await exited;
    }
    rmSync(join(path, '..'), { recursive: true, force: true });
  });
  for (let i = 0; i < 100 && !/trellis agent: status port/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(stderr, new RegExp(`status port 127\\.0\\.0\\.1:${statusPort} \\(merging the app's metrics from 127\\.0\\.0\\.1:\\d+/custom\\)`));
  const metrics = await get(statusPort, '/stats/prometheus');
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^istio_agent_scrapes_total 1$/m);
  assert.match(metrics.body, /^app_hits_total 3$/m);
  assert.match(metrics.body, /^# TYPE envoy_server_live gauge$|^envoy_/m, "the proxy's own stats");
  const ready = await get(statusPort, '/healthz/ready');
  assert.equal(ready.status, 200);
});
