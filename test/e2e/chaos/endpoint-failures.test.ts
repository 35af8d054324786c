// Chaos scenarios for upstream health on one shared mesh (three endpoints of one service behind the client's sidecar,
// with a DestinationRule's outlierDetection and a VirtualService's retries): an endpoint answering 503 half the time is
// ejected within the configured interval, and an endpoint killed mid-load costs at most 0.1 % of requests, none after
// its ejection. Each prints its measured failure count.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, before, test } from 'node:test';
import { backend, client, formatReport, startChaosMesh, summarize, type ChaosMesh } from './harness.js';

/** Interval (the detector's sweep) 2 s; two 5xx in a row eject; an ejection lasts 3 s × times ejected. */
const INTERVAL_MS = 2_000;
const DESTINATION_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: backend, namespace: default }
spec:
  host: backend
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 2
      interval: ${INTERVAL_MS / 1000}s
      baseEjectionTime: 3s
      maxEjectionPercent: 100
`;

const VIRTUAL_SERVICE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: backend, namespace: default }
spec:
  hosts: [backend]
  http:
  - route:
    - destination: { host: backend }
    retries:
      attempts: 3
      retryOn: 5xx,connect-failure,reset,refused-stream
`;

let mesh: ChaosMesh | undefined;

before(async () => {
  mesh = await startChaosMesh('trellis-chaos-endpoints-', {
    workloads: [client(), backend('backend-a', 'backend'), backend('backend-b', 'backend'), backend('backend-c', 'backend')],
    config: { 'backend-dr.yaml': DESTINATION_RULE, 'backend-vs.yaml': VIRTUAL_SERVICE },
    // A killed endpoint stays down for the rest of the file.
    restartBackoffMs: 120_000,
  });
  const warmUp = summarize(await mesh.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 1_500 }).done);
  console.log(`chaos: endpoints warm-up: ${formatReport(warmUp)}`);
});

after(async () => {
  await mesh?.stop();
});

/** The client sidecar's outlier_detection counter summed over the backend's clusters. */
async function ejections(m: ChaosMesh, counter = 'ejections_enforced_total'): Promise<number> {
  const stats = await m.proxyStats('client', `outlier_detection\\.${counter}$`);
  let n = 0;
  for (const [name, value] of stats) if (name.includes('backend') && name.endsWith(`.${counter}`)) n += value;
  return n;
}

/** How many 503s a backend has answered so far (its own count, read on its application port, not through the mesh). */
function backendFailures(m: ChaosMesh, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: m.member(name).appPort!, path: '/__chaos', agent: false, timeout: 3_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve((JSON.parse(text) as { counts: { failed: number } }).counts.failed));
    });
    req.on('timeout', () => req.destroy(new Error('backend /__chaos timed out')));
    req.on('error', reject);
  });
}

/** Polls until the client's sidecar ejected `n` hosts in all (or `timeoutMs` passed); returns when it saw it (Date.now()). */
async function waitEjections(m: ChaosMesh, n: number, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await ejections(m)) >= n) return Date.now();
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

test('an endpoint returning 503 half the time is ejected within the configured interval; retries hide its 503s', async (t) => {
  const m = mesh!;
  t.after(() => {
    if (t.signal.aborted) console.log(m.logTail());
  });
  const before = await ejections(m);
  const load = m.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 6_000 });
  await load.started;
  const loadStart = Date.now();
  await new Promise((r) => setTimeout(r, 1_000));
  await m.setBackend('backend-b', { failRate: 0.5 });
  // The clock starts at backend-b's first 503 (on a loaded machine requests can queue for a while before reaching it).
  let firstFailureAt: number | undefined;
  const watchFirst = (async () => {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && firstFailureAt === undefined) {
      if ((await backendFailures(m, 'backend-b')) > 0) firstFailureAt = Date.now();
      else await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const ejectedAt = await waitEjections(m, before + 1, 8_000);
  await watchFirst;
  const ejectedAfterMs = ejectedAt === undefined || firstFailureAt === undefined ? -1 : Math.max(0, ejectedAt - firstFailureAt);
  await new Promise((r) => setTimeout(r, 1_500));
  // Healthy again: base_ejection_time (3 s) later the detector's interval returns it, for the next scenario.
  await m.setBackend('backend-b', { failRate: 0 });
  const report = summarize(await load.done);
  console.log(`chaos: endpoint returning 503 half the time: ejected ${ejectedAfterMs} ms after its first 503 (interval ${INTERVAL_MS} ms); ${formatReport(report)}`);
  assert.ok(ejectedAt !== undefined, `backend-b was never ejected: ${formatReport(report)}`);
  assert.ok(firstFailureAt !== undefined, 'backend-b never answered 503');
  assert.ok(ejectedAfterMs <= INTERVAL_MS, `ejected after ${ejectedAfterMs} ms, more than the ${INTERVAL_MS} ms interval`);
  assert.equal(await ejections(m, 'ejections_enforced_consecutive_5xx'), 1);
  // Once ejected (plus one window for requests already routed), backend-b answers nothing until it is healthy again.
  const ejectedWindow = Math.ceil((ejectedAt! - loadStart) / 1_000) + 1;
  const afterEjection = report.windows.slice(ejectedWindow, ejectedWindow + 1);
  for (const w of afterEjection) assert.equal(w.byBackend['backend-b'] ?? 0, 0, `backend-b answered after its ejection: ${JSON.stringify(report.windows)}`);
  // Each 503 was retried on another endpoint (retryOn 5xx, previous_hosts): the client saw none.
  assert.equal(report.failed, 0, formatReport(report));
});

test('one of three endpoints killed mid-load with retries and outlier detection: ≤ 0.1 % failed, none after its ejection', async (t) => {
  const m = mesh!;
  t.after(() => {
    if (t.signal.aborted) console.log(m.logTail());
  });
  // backend-b's ejection from the first scenario has run out (3 s) by the time this load reaches the kill.
  const before = await ejections(m);
  // 200 req/s for 8 s: the 0.1 % budget is one request in 1,000, so fewer than 1,000 requests could not tell 0.1 % from
  // 0. A request whose response was already on its way when the endpoint died cannot be retried (Envoy resets the
  // downstream too once the response has started), which is what the budget is for; every request after the ejection
  // must succeed.
  const load = m.startLoad({ from: 'client', authority: 'backend:8080', rate: 200, durationMs: 8_000 });
  await load.started;
  const loadStart = Date.now();
  await new Promise((r) => setTimeout(r, 2_000));
  const killedAt = Date.now();
  m.kill('backend-c/sidecar', 'SIGKILL');
  m.kill('backend-c', 'SIGKILL');
  const ejectedAt = await waitEjections(m, before + 1, 6_000);
  const report = summarize(await load.done);
  const ejectedMs = ejectedAt === undefined ? -1 : ejectedAt - loadStart;
  console.log(`chaos: one of three endpoints killed mid-load: ejected ${ejectedAt === undefined ? 'never' : `${ejectedAt - killedAt} ms after the kill`}; ${report.failed} failed; ${formatReport(report)}`);
  assert.ok(ejectedAt !== undefined, `backend-c was never ejected: ${formatReport(report)}`);
  assert.ok(report.failed <= report.total * 0.001, `more than 0.1 % failed: ${formatReport(report)}`);
  // No request started after the ejection failed (the stat is polled every 50 ms: that much slack).
  if (report.failed > 0) assert.ok(report.lastFailureMs <= ejectedMs + 50, `a request failed ${report.lastFailureMs} ms into the run, after the ejection at ${ejectedMs} ms`);
  const last = report.windows.slice(-3);
  for (const w of last) assert.equal(w.byBackend['backend-c'] ?? 0, 0, 'the killed endpoint answered');
  assert.ok(report.total >= 1_000, `too few requests to measure 0.1 %: ${formatReport(report)}`);
  assert.ok((report.byBackend['backend-a'] ?? 0) > 100 && (report.byBackend['backend-b'] ?? 0) > 100, formatReport(report));
});
