// Chaos scenarios on one shared mesh: route weights flipping every 100 ms, the control plane lost for 20 s, and a
// zone's endpoints failing (locality failover in priority order). Each scenario runs steady load through the client's
// sidecar and prints its measured failure count. They run in this order: the last one leaves endpoints ejected.
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

/**
 * zonal: one endpoint per locality, with outlier detection (Istio applies locality failover only with it): one 5xx
 * ejects a host for longer than the test, up to every host. minHealthPercent 0 (Istio's default) turns panic off.
 */
const ZONAL_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: zonal, namespace: default }
spec:
  host: zonal
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100 }
`;

let mesh: ChaosMesh | undefined;

before(async () => {
  mesh = await startChaosMesh('trellis-chaos-changes-', {
    workloads: [
      client('client', { locality: 'r1/za' }),
      backend('backend-v1', 'backend', { version: 'v1' }),
      backend('backend-v2', 'backend', { version: 'v2' }),
      backend('zonal-a', 'zonal', {}, { locality: 'r1/za' }),
      backend('zonal-b', 'zonal', {}, { locality: 'r1/zb' }),
      backend('zonal-c', 'zonal', {}, { locality: 'r2/zc' }),
    ],
    config: { 'backend-dr.yaml': DESTINATION_RULE, 'backend-vs.yaml': virtualService(100, 0), 'zonal-dr.yaml': ZONAL_RULE },
  });
  // Connections (client → sidecar, sidecar → each upstream over mTLS) are opened before the scenarios measure.
  const [warmUp, zonalWarmUp] = await Promise.all([
    mesh.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 2_000 }).done,
    mesh.startLoad({ from: 'client', authority: 'zonal:8080', durationMs: 2_000, rate: 20 }).done,
  ]);
  console.log(`chaos: warm-up: ${formatReport(summarize(warmUp))}; zonal: ${formatReport(summarize(zonalWarmUp))}`);
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
  assert.ok((report.byBackend['backend-v1'] ?? 0) > 25, `v1 answered: ${formatReport(report)}`);
  assert.ok((report.byBackend['backend-v2'] ?? 0) > 25, `v2 answered: ${formatReport(report)}`);
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
  assert.ok(report.ok > 1_000, formatReport(report));
});

test("a zone's endpoints all failing: traffic fails over to the next locality in priority order (same region, then another)", async (t) => {
  const m = mesh!;
  t.after(async () => {
    if (t.signal.aborted) console.log(m.logTail());
    await m.setBackend('zonal-a', { failRate: 0 }).catch(() => undefined);
    await m.setBackend('zonal-b', { failRate: 0 }).catch(() => undefined);
  });
  // The client is in r1/za: zonal-a (r1/za) is priority 0, zonal-b (r1/zb, same region) 1, zonal-c (r2/zc) 2.
  const load = m.startLoad({ from: 'client', authority: 'zonal:8080', durationMs: 15_000, rate: 50 });
  await load.started;
  const begin = Date.now();
  await new Promise((r) => setTimeout(r, 3_000));
  const aFailsFrom = Date.now() - begin;
  await m.setBackend('zonal-a', { failRate: 1 });
  await new Promise((r) => setTimeout(r, 6_000));
  const bFailsFrom = Date.now() - begin;
  await m.setBackend('zonal-b', { failRate: 1 });
  const result = await load.done;
  const report = summarize(result);
  // Requests that started and ended inside one phase were routed in it, however slow a loaded machine makes them.
  // A phase starts 2 s after its fault: time for the first 503 to reach the client's sidecar and eject the host.
  const phase = (from: number, to: number) => {
    const inside = result.records.filter(([start, latency]) => start >= from && start + latency < to);
    const by = (name: string): number => inside.filter((r) => r[4] === name).length / Math.max(1, inside.length);
    return { count: inside.length, failed: inside.filter((r) => r[2] !== 200).length, by };
  };
  const healthy = phase(500, aFailsFrom);
  const aOut = phase(aFailsFrom + 2_000, bFailsFrom);
  const bOut = phase(bFailsFrom + 2_000, Infinity);
  const phases = `zonal-a ${healthy.by('zonal-a').toFixed(3)} of ${healthy.count} before, zonal-b ${aOut.by('zonal-b').toFixed(3)} of ${aOut.count} with a out, zonal-c ${bOut.by('zonal-c').toFixed(3)} of ${bOut.count} with a and b out`;
  console.log(`chaos: zone a failing at ${aFailsFrom} ms, zone b at ${bFailsFrom} ms: ${formatReport(report)}; ${phases}`);
  if (process.env['CHAOS_VERBOSE']) console.log(JSON.stringify(report.windows));
  assert.ok(healthy.count >= 20 && aOut.count >= 20 && bOut.count >= 20, `too few requests inside the phases to judge: ${phases}`);
  // Healthy: the caller's own zone takes everything.
  assert.ok(healthy.by('zonal-a') >= 0.99, phases);
  // Zone a ejected: its region's other zone, not the other region.
  assert.ok(aOut.by('zonal-b') >= 0.99, phases);
  // Zone b ejected too: the other region.
  assert.ok(bOut.by('zonal-c') >= 0.99, phases);
  // A host is ejected at its first 503, and Istio's default retry (503 is retriable) lands on the next priority: at
  // most the few requests already on their way fail, and none once a zone is out.
  assert.equal(aOut.failed + bOut.failed, 0, `failures after ejection: ${phases}; ${formatReport(report)}`);
  assert.ok(report.failed <= report.total * 0.01, formatReport(report));
});
