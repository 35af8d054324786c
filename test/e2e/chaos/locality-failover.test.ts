// Chaos scenario: a zone's endpoints all failing, traffic failing over to the next locality in priority order
// (Istio's locality failover from DestinationRule outlierDetection, priorities by the caller's own locality).
// Prints its measured failure count.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { backend, client, formatReport, startChaosMesh, summarize, type ChaosMesh } from './harness.js';

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
  mesh = await startChaosMesh('trellis-chaos-locality-', {
    workloads: [
      client('client', { locality: 'r1/za' }),
      backend('zonal-a', 'zonal', {}, { locality: 'r1/za' }),
      backend('zonal-b', 'zonal', {}, { locality: 'r1/zb' }),
      backend('zonal-c', 'zonal', {}, { locality: 'r2/zc' }),
    ],
    config: { 'zonal-dr.yaml': ZONAL_RULE },
  });
  // Connections (client → sidecar, sidecar → zonal-a over mTLS) are opened before the scenario measures.
  const warmUp = summarize(await mesh.startLoad({ from: 'client', authority: 'zonal:8080', durationMs: 2_000, rate: 25 }).done);
  console.log(`chaos: locality warm-up: ${formatReport(warmUp)}`);
});

after(async () => {
  await mesh?.stop();
});

test("a zone's endpoints all failing: traffic fails over to the next locality in priority order (same region, then another)", async (t) => {
  const m = mesh!;
  t.after(() => {
    if (t.signal.aborted) console.log(m.logTail());
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
