// Chaos scenario: a workload scaled down and up again under steady load, in Istio's order (endpoint removed from the
// registry first, then its sidecar drained, then the application stopped; back: processes ready, then the endpoint).
// Prints the measured failure count.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { backend, client, formatReport, startChaosMesh, summarize, type ChaosMesh } from './harness.js';

let mesh: ChaosMesh | undefined;

before(async () => {
  mesh = await startChaosMesh('trellis-chaos-scale-', {
    workloads: [client(), backend('backend-a', 'backend'), backend('backend-b', 'backend')],
  });
  const warmUp = summarize(await mesh.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 1_500 }).done);
  console.log(`chaos: scale-down warm-up: ${formatReport(warmUp)}`);
});

after(async () => {
  await mesh?.stop();
});

test('a proxy drained and restarted with its workload\'s endpoint removed first: zero failed requests, traffic returns to it', async (t) => {
  const m = mesh!;
  t.after(() => {
    if (t.signal.aborted) console.log(m.logTail());
  });
  // Ended by stop() a few seconds after the workload is back (the phases' length depends on the machine's load).
  const load = m.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 60_000 });
  await load.started;
  const begin = Date.now();
  await new Promise((r) => setTimeout(r, 1_500));
  await m.local.stopWorkload('backend-a');
  const downAt = Date.now() - begin;
  assert.throws(() => m.pid('backend-a/sidecar'), /not running/);
  await new Promise((r) => setTimeout(r, 2_000));
  const upFrom = Date.now() - begin;
  await m.local.startWorkload('backend-a');
  const upAt = Date.now() - begin;
  await new Promise((r) => setTimeout(r, 3_000));
  load.stop();
  const report = summarize(await load.done, 500);
  if (report.failed > 0) {
    const pick = (stats: Map<string, number>) => [...stats].filter(([k, v]) => v > 0 && /5xx|fail|reset|timeout|no_healthy|overflow|retry|cx_connect|rq_error|none/.test(k));
    console.log(`client sidecar: ${JSON.stringify(pick(await m.proxyStats('client')))}`);
    console.log(`backend-a sidecar: ${JSON.stringify(pick(await m.proxyStats('backend-a')))}`);
  }
  if (report.failed > 0) console.log(`failures from ${report.firstFailureMs} to ${report.lastFailureMs} ms: ${JSON.stringify(report.windows.filter((w) => w.failed > 0))}`);
  console.log(`chaos: scale-down and up (endpoint removed, sidecar drained, app stopped at ${(downAt / 1000).toFixed(1)} s; back at ${(upAt / 1000).toFixed(1)} s): ${formatReport(report)}`);
  assert.equal(report.failed, 0, formatReport(report));
  // The sidecar ended its termination drain itself (no inbound connection left, or the duration): not killed.
  assert.match(m.logTail(4_000), /\[backend-a\/sidecar\]\s+trellis proxy: termination drain ended \((no-connections|elapsed)\)/);
  // While it was down only backend-b answered; after it came back it answers again.
  const whileDown = report.windows.filter((w) => w.fromMs >= downAt + 500 && w.fromMs + 500 <= upFrom);
  assert.ok(whileDown.length > 0 && whileDown.every((w) => (w.byBackend['backend-a'] ?? 0) === 0), JSON.stringify(whileDown));
  const afterUp = report.windows.filter((w) => w.fromMs >= upAt + 500);
  const aAfter = afterUp.reduce((n, w) => n + (w.byBackend['backend-a'] ?? 0), 0);
  assert.ok(aAfter > 10, `backend-a answered ${aAfter} requests after it was back: ${JSON.stringify(afterUp)}`);
});
