// Chaos scenarios on one shared mesh: route weights flipping every 100 ms, and the control plane lost for 20 s.
// Each scenario runs steady load through the client's sidecar and prints its measured failure count.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { backend, client, formatReport, startChaosMesh, summarize, type ChaosMesh } from './harness.js';

const DESTINATION_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: backend, namespace: default }
spec:
  host: backend
  subsets:
  - name: v1
    labels: { version: v1 }
  - name: v2
    labels: { version: v2 }
`;

function virtualService(v1: number, v2: number): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: backend, namespace: default }
spec:
  hosts: [backend]
  http:
  - route:
    - destination: { host: backend, subset: v1 }
      weight: ${v1}
    - destination: { host: backend, subset: v2 }
      weight: ${v2}
`;
}

let mesh: ChaosMesh | undefined;

before(async () => {
  mesh = await startChaosMesh('trellis-chaos-changes-', {
    workloads: [client(), backend('backend-v1', 'backend', { version: 'v1' }), backend('backend-v2', 'backend', { version: 'v2' })],
    config: { 'backend-dr.yaml': DESTINATION_RULE, 'backend-vs.yaml': virtualService(100, 0) },
  });
  // Connections (client → sidecar, sidecar → each upstream over mTLS) are opened before the scenarios measure.
  const warmUp = summarize(await mesh.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 2_000 }).done);
  console.log(`chaos: warm-up: ${formatReport(warmUp)}`);
});

after(async () => {
  await mesh?.stop();
});

test('a VirtualService weight change every 100 ms for 10 s: zero failed requests, both subsets answer', async (t) => {
  const m = mesh!;
  t.after(() => {
    if (t.signal.aborted) console.log(m.logTail());
  });
  const load = m.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 11_000 });
  await load.started;
  // All to v1, all to v2, then splits: every flip changes which subset clusters the route names.
  const weights: Array<[number, number]> = [[0, 100], [100, 0], [50, 50], [20, 80], [80, 20]];
  const begin = Date.now();
  for (let i = 0; Date.now() - begin < 10_000; i++) {
    const [v1, v2] = weights[i % weights.length]!;
    // The manifest's config files sit under mesh/ in the watched dir: this rewrites the VirtualService loaded at start.
    m.applyConfig('mesh/backend-vs.yaml', virtualService(v1, v2));
    await new Promise((r) => setTimeout(r, 100));
  }
  const report = summarize(await load.done);
  if (process.env['CHAOS_VERBOSE']) console.log(JSON.stringify(report.windows));
  console.log(`chaos: weight change every 100 ms for 10 s: ${formatReport(report)}`);
  assert.equal(report.failed, 0, formatReport(report));
  assert.ok((report.byBackend['backend-v1'] ?? 0) > 50, `v1 answered: ${formatReport(report)}`);
  assert.ok((report.byBackend['backend-v2'] ?? 0) > 50, `v2 answered: ${formatReport(report)}`);
  // The flips reached the proxy: it took many route updates, not one.
  const stats = await m.proxyStats('client', 'rds');
  const updates = [...stats].filter(([name]) => name.endsWith('update_success')).reduce((n, [, v]) => n + v, 0);
  assert.ok(updates >= 10, `client sidecar RDS updates: ${JSON.stringify(Object.fromEntries(stats))}`);
});

test('the control plane killed for 20 s and restarted: zero failed requests, every proxy SYNCED within 5 s, nothing re-applied', async (t) => {
  const m = mesh!;
  t.after(() => {
    if (t.signal.aborted) console.log(m.logTail());
  });
  const proxies = m.local.members.filter((w) => w.adminPort !== undefined).map((w) => w.name);
  const load = m.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 28_000 });
  await load.started;
  await new Promise((r) => setTimeout(r, 2_000));
  // What each proxy runs, as its own admin shows it: every resource with its version and last_updated time.
  const before = new Map<string, unknown>();
  for (const name of proxies) before.set(name, await m.proxyAdminJson(name, '/config_dump'));

  await m.stopControlPlane();
  await new Promise((r) => setTimeout(r, 1_000));
  for (const name of proxies) {
    const connected = await m.proxyStats(name, '^control_plane\\.connected_state$');
    assert.equal(connected.get('control_plane.connected_state'), 0, `${name} still connected while the control plane is down`);
  }
  assert.equal((await m.syncStates()).size, 0, 'the control plane still answers syncz');
  await new Promise((r) => setTimeout(r, 19_000));

  const restartBegin = Date.now();
  await m.startControlPlane();
  const startMs = Date.now() - restartBegin;
  const syncedMs = await m.waitAllSynced(5_000);
  console.log(`chaos: control plane restart: started in ${startMs} ms, every proxy SYNCED ${syncedMs} ms later`);
  for (const name of proxies) {
    const connected = await m.proxyStats(name, '^control_plane\\.connected_state$');
    assert.equal(connected.get('control_plane.connected_state'), 1, `${name} not reconnected`);
    // The restarted control plane generated the same content, so the same versions: nothing new reached the proxy.
    assert.deepEqual(await m.proxyAdminJson(name, '/config_dump'), before.get(name), `${name}'s config changed across the control plane restart`);
  }

  const report = summarize(await load.done);
  console.log(`chaos: control plane down 20 s and restarted: ${formatReport(report)}`);
  assert.equal(report.failed, 0, formatReport(report));
  assert.ok(report.ok > 2_000, formatReport(report));
});
