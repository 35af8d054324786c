// Chaos scenario: VirtualService weights flipped between subsets every 100 ms for 10 s under steady load; zero failed
// requests. Prints its measured failure count.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { formatReport, summarize, type ChaosMesh } from './harness.js';
import { startSubsetsMesh, virtualService } from './subsets-mesh.js';

let mesh: ChaosMesh | undefined;

before(async () => {
  mesh = await startSubsetsMesh('trellis-chaos-weights-');
});

after(async () => {
  await mesh?.stop();
});

test('a VirtualService weight change every 100 ms for 10 s: zero failed requests, both subsets answer', async (t) => {
  const m = mesh!;
  t.after(() => {
    if (t.signal.aborted) console.log(m.logTail());
  });
  const load = m.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 11_000, rate: 50 });
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
  // The flips reached the proxy: it took many route updates, not one (the control plane's 100 ms debounce merges
  // flips, more of them on a loaded machine: 8 of the 100 were pushes at load average 25).
  const stats = await m.proxyStats('client', 'rds');
  const updates = [...stats].filter(([name]) => name.endsWith('update_success')).reduce((n, [, v]) => n + v, 0);
  assert.ok(updates >= 5, `client sidecar RDS updates: ${JSON.stringify(Object.fromEntries(stats))}`);
});
