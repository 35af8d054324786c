// Istio's standard metrics on Bookinfo under `trellis up`: after N product pages through the gateway, every sidecar's
// /stats/prometheus counts the hops with both workloads named (gateway → productpage → details/reviews → ratings); and a
// real Prometheus server scraping every proxy answers the PromQL of Istio's dashboards with the traffic sent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { loadManifest } from '../../src/local/manifest.js';
import { planPorts, type PortPlan } from '../../src/local/port-blocks.js';
import { copyBookinfo, freePort, freePortBase, startTrellisUp, stopTrellisUp } from './trellis-up.js';
import { prometheusMissing, query, startPrometheus, stopPrometheus, valueOf, waitForScrapesAfter, type PrometheusServer, type Sample } from './prometheus-server.js';

const PAGES = 12;

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

interface Series {
  readonly labels: Record<string, string>;
  readonly value: number;
}

async function requestsTotal(adminPort: number): Promise<Series[]> {
  const text = (await get(adminPort, '/stats/prometheus')).body;
  const out: Series[] = [];
  for (const m of text.matchAll(/^istio_requests_total\{(.*)\} (\S+)$/gm)) {
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

function sum(series: readonly Series[], match: Record<string, string | RegExp>): number {
  return series
    .filter((s) => Object.entries(match).every(([k, v]) => (typeof v === 'string' ? s.labels[k] === v : v.test(s.labels[k] ?? ''))))
    .reduce((n, s) => n + s.value, 0);
}

let dir = '';
let up: ChildProcess | undefined;
let output = '';
let gatewayPort = 0;
let plan: PortPlan;
let prometheus: PrometheusServer | undefined;
const SIDECARS = ['istio-ingressgateway', 'productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1'];

before(async () => {
  ({ dir, gatewayPort } = await copyBookinfo('trellis-bookinfo-metrics-'));
  const base = await freePortBase(dir);
  plan = planPorts(loadManifest(dir), base);
  // Prometheus starts beside the mesh (the ports are planned): its targets are down until the proxies listen. As in
  // Istio with metrics merging, sidecars are scraped on their agent's status port (proxy + app + agent metrics), the
  // gateway on the proxy's own endpoint.
  const jobs = [
    { name: 'sidecars-merged', metricsPath: '/stats/prometheus', targets: SIDECARS.filter((w) => plan.workloads.has(w)).map((w) => `127.0.0.1:${plan.workloads.get(w)!.status!}`) },
    { name: 'gateways', metricsPath: '/stats/prometheus', targets: [...plan.gateways.values()].map((g) => `127.0.0.1:${g.admin}`) },
  ];
  const starting = prometheusMissing() ? undefined : startPrometheus(await freePort(), jobs);
  try {
    up = await startTrellisUp(dir, base, (c) => (output += c));
  } finally {
    prometheus = await starting;
  }
});

after(async () => {
  await stopPrometheus(prometheus);
  await stopTrellisUp(up, dir);
});

function admin(workload: string): number {
  const port = plan.workloads.get(workload)?.admin ?? plan.gateways.get(workload)?.admin;
  assert.ok(port, `${workload} has an admin port`);
  return port;
}

test(`${PAGES} product pages: each hop counted once by its source and once by its destination reporter, with both workloads named`, async () => {
  // Pages served before this test (readiness probes) would add to the counts: take a baseline first.
  const before = new Map<string, Series[]>();
  for (const w of SIDECARS) before.set(w, await requestsTotal(admin(w)));
  for (let i = 0; i < PAGES; i++) assert.equal((await get(gatewayPort, '/productpage')).status, 200);

  const delta = async (w: string, match: Record<string, string | RegExp>): Promise<number> => sum(await requestsTotal(admin(w)), match) - sum(before.get(w)!, match);
  const hop = (reporter: string, source: string | RegExp, destination: string | RegExp): Record<string, string | RegExp> => ({ reporter, source_workload: source, destination_workload: destination, response_code: '200' });
  // The destination sidecar records when its response ends, a moment after the client has it: wait (bounded) for the counts.
  const expectations: [string, Record<string, string | RegExp>, number][] = [
    // The source reporter reads both principals from its upstream mTLS session.
    ['istio-ingressgateway', { ...hop('source', 'istio-ingressgateway', 'productpage-v1'), destination_service_name: 'productpage', source_principal: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account', destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage' }, PAGES],
    ['productpage-v1', { ...hop('destination', 'istio-ingressgateway', 'productpage-v1'), source_app: 'istio-ingressgateway' }, PAGES],
    ['productpage-v1', { ...hop('source', 'productpage-v1', 'details-v1'), destination_service: 'details.default.svc.cluster.local', destination_app: 'details', destination_version: 'v1', source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-details' }, PAGES],
    ['productpage-v1', hop('source', 'productpage-v1', /^reviews-v[123]$/), PAGES],
    ['details-v1', { ...hop('destination', 'productpage-v1', 'details-v1'), source_app: 'productpage', source_version: 'v1' }, PAGES],
  ];
  for (const [w, match, want] of expectations) {
    let got = 0;
    for (let i = 0; i < 50 && got < want; i++) {
      got = await delta(w, match);
      if (got < want) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got, want, `${w}: ${JSON.stringify(match, (_k, v: unknown) => (v instanceof RegExp ? String(v) : v))}`);
  }
  let reviews = 0;
  for (const w of ['reviews-v1', 'reviews-v2', 'reviews-v3']) reviews += await delta(w, hop('destination', 'productpage-v1', w));
  assert.equal(reviews, PAGES, 'the reviews instances together saw every page once, naming productpage-v1 as the source');
  // reviews v2 and v3 call ratings; v1 does not.
  const ratingsCalls = (await delta('reviews-v2', hop('source', 'reviews-v2', 'ratings-v1'))) + (await delta('reviews-v3', hop('source', 'reviews-v3', 'ratings-v1')));
  let ratingsSeen = 0;
  for (let i = 0; i < 50; i++) {
    ratingsSeen = await delta('ratings-v1', hop('destination', /^reviews-v[23]$/, 'ratings-v1'));
    if (ratingsSeen >= ratingsCalls) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(ratingsSeen, ratingsCalls, 'ratings counted exactly the calls the reviews sidecars reported');
  assert.ok(ratingsCalls > 0, 'some pages went to reviews v2 or v3');
});

const PROM_PAGES = 20;
const PROM_ERRORS = 5;
const BY_WORKLOAD_CODE = 'sum(istio_requests_total{reporter="destination"}) by (destination_workload, response_code)';
const DURATION_BUCKETS = 'istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="productpage-v1"}';

/** PromQL's histogram_quantile over cumulative bucket counts (linear within a bucket; +Inf answers the last finite bound). */
function quantile(q: number, buckets: ReadonlyArray<{ le: number; count: number }>): number {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted[sorted.length - 1]!.count;
  const rank = q * total;
  for (let i = 0; i < sorted.length; i++) {
    const b = sorted[i]!;
    if (b.count >= rank) {
      if (b.le === Infinity) return sorted[i - 1]!.le;
      const lower = i === 0 ? 0 : sorted[i - 1]!.le;
      const below = i === 0 ? 0 : sorted[i - 1]!.count;
      return lower + ((b.le - lower) * (rank - below)) / (b.count - below);
    }
  }
  return NaN;
}

test(`a real Prometheus server scraping every proxy: Istio's dashboard PromQL counts ${PROM_PAGES} pages and ${PROM_ERRORS} 404s`, { skip: prometheusMissing() }, async () => {
  const prom = prometheus!;
  // Warm-up: the series the counted traffic adds to exist before the baseline, so increase()/rate() see them from a
  // sample before the traffic (a series' first sample counts nothing in increase()).
  assert.equal((await get(gatewayPort, '/productpage')).status, 200);
  assert.equal((await get(gatewayPort, '/static/missing.css')).status, 404);
  // The destination sidecars record as their responses end, before the gateway forwards them: a moment later they are settled.
  await new Promise((r) => setTimeout(r, 300));
  const settled = Date.now();
  await waitForScrapesAfter(prom, settled, SIDECARS.length);
  const baseAt = Date.now() / 1000;
  const base = await query(prom, BY_WORKLOAD_CODE, baseAt);
  const baseRatingsCalls = await query(prom, 'sum(istio_requests_total{reporter="source",destination_workload="ratings-v1"})', baseAt);

  for (let i = 0; i < PROM_PAGES; i++) assert.equal((await get(gatewayPort, '/productpage')).status, 200);
  for (let i = 0; i < PROM_ERRORS; i++) assert.equal((await get(gatewayPort, '/static/missing.css')).status, 404);
  await new Promise((r) => setTimeout(r, 300));
  await waitForScrapesAfter(prom, Date.now(), SIDECARS.length);
  const at = Date.now() / 1000;

  // Raw counter deltas between two instant queries: exact.
  const now = await query(prom, BY_WORKLOAD_CODE, at);
  // productpage's own counter reached Prometheus through its sidecar agent's merged endpoint.
  const appRequests = await query(prom, `sum(productpage_requests_total) by (route, code) - sum(productpage_requests_total @ ${baseAt.toFixed(3)}) by (route, code)`, at);
  assert.equal(valueOf(appRequests, { route: '/productpage', code: '200' }), PROM_PAGES, "productpage's own productpage_requests_total, merged on its status port");
  assert.equal(valueOf(appRequests, { route: '/static/', code: '404' }), PROM_ERRORS, "productpage's own 404s");
  const agents = await query(prom, 'count(istio_agent_scrapes_total) by (job)', at);
  assert.equal(valueOf(agents, { job: 'sidecars-merged' }), SIDECARS.length - 1, "every sidecar's agent metrics");
  const delta = (workload: string, code: string): number => valueOf(now, { destination_workload: workload, response_code: code }) - valueOf(base, { destination_workload: workload, response_code: code });
  assert.equal(delta('productpage-v1', '200'), PROM_PAGES, 'productpage-v1 200');
  assert.equal(delta('productpage-v1', '404'), PROM_ERRORS, 'productpage-v1 404');
  assert.equal(delta('details-v1', '200'), PROM_PAGES, 'details-v1 200');
  assert.equal(delta('reviews-v1', '200') + delta('reviews-v2', '200') + delta('reviews-v3', '200'), PROM_PAGES, 'reviews v1+v2+v3 200');
  const ratingsCalls = (await query(prom, 'sum(istio_requests_total{reporter="source",destination_workload="ratings-v1"})', at))[0]!.value - (baseRatingsCalls[0]?.value ?? 0);
  assert.equal(delta('ratings-v1', '200'), ratingsCalls, 'ratings-v1 counted (destination) what reviews v2/v3 sent it (source)');
  const gateway = await query(prom, `sum(istio_requests_total{reporter="source",source_workload="istio-ingressgateway"}) by (destination_workload, response_code) - sum(istio_requests_total{reporter="source",source_workload="istio-ingressgateway"} @ ${baseAt.toFixed(3)}) by (destination_workload, response_code)`, at);
  assert.equal(valueOf(gateway, { destination_workload: 'productpage-v1', response_code: '200' }), PROM_PAGES, 'gateway → productpage 200 (source reporter)');
  assert.equal(valueOf(gateway, { destination_workload: 'productpage-v1', response_code: '404' }), PROM_ERRORS, 'gateway → productpage 404 (source reporter)');

  // The dashboards' increase()/rate() over a window from just after the warm-up (before the first baseline scrape) to
  // now: the counters are flat at both ends, so the delta inside is exact and Prometheus's extrapolation can only scale
  // it up, by at most window / (window − the two scrape gaps at its ends).
  const windowMs = Math.round(at * 1000 - (settled - 100));
  const maxFactor = windowMs / (windowMs - 2500);
  const increase = await query(prom, `sum(increase(istio_requests_total{reporter="destination"}[${windowMs}ms])) by (destination_workload, response_code)`, at);
  const rate = await query(prom, `sum(rate(istio_requests_total{reporter="destination"}[${windowMs}ms])) by (destination_workload, response_code)`, at);
  for (const [workload, code, sent] of [['productpage-v1', '200', PROM_PAGES], ['productpage-v1', '404', PROM_ERRORS], ['details-v1', '200', PROM_PAGES]] as const) {
    const inc = valueOf(increase, { destination_workload: workload, response_code: code });
    assert.ok(inc >= sent - 1e-9 && inc <= sent * maxFactor, `increase ${workload} ${code}: ${inc}, sent ${sent} (extrapolation factor ≤ ${maxFactor.toFixed(3)})`);
    const r = valueOf(rate, { destination_workload: workload, response_code: code });
    assert.ok(Math.abs(r - inc / (windowMs / 1000)) < 1e-6, `rate ${workload} ${code}: ${r} = increase / window`);
    assert.ok(r >= sent / (windowMs / 1000) - 1e-9, `rate ${workload} ${code}: ${r} req/s, at least ${sent} over ${windowMs} ms`);
  }
  const errorRatio = await query(prom, `sum(rate(istio_requests_total{reporter="destination",destination_workload="productpage-v1",response_code=~"4.."}[${windowMs}ms])) / sum(rate(istio_requests_total{reporter="destination",destination_workload="productpage-v1",response_code=~"[24].."}[${windowMs}ms]))`, at);
  // Each series extrapolates by its own factor (Prometheus stops at the counter's zero point), so the ratio is bounded, not exact.
  const ratioLow = PROM_ERRORS / (PROM_ERRORS + PROM_PAGES * maxFactor);
  const ratioHigh = (PROM_ERRORS * maxFactor) / (PROM_ERRORS * maxFactor + PROM_PAGES);
  assert.ok(errorRatio[0]!.value >= ratioLow && errorRatio[0]!.value <= ratioHigh, `productpage 4xx ratio ${errorRatio[0]!.value} in [${ratioLow}, ${ratioHigh}]`);

  // p99 of the request duration: exact over the raw bucket deltas (compared with the sidecar's histogram as
  // Prometheus stored it), and the dashboards' rate()-based form against increase() over the same window.
  const bucketDeltas = await query(prom, `sum(${DURATION_BUCKETS}) by (le) - sum(${DURATION_BUCKETS} @ ${baseAt.toFixed(3)}) by (le)`, at);
  const buckets = bucketDeltas.map((s: Sample) => ({ le: s.metric.le === '+Inf' ? Infinity : Number(s.metric.le), count: s.value }));
  assert.equal(buckets.find((b) => b.le === Infinity)?.count, PROM_PAGES + PROM_ERRORS, 'the +Inf bucket counts every request to productpage');
  assert.equal((await query(prom, `sum(istio_request_duration_milliseconds_count{reporter="destination",destination_workload="productpage-v1"}) - sum(istio_request_duration_milliseconds_count{reporter="destination",destination_workload="productpage-v1"} @ ${baseAt.toFixed(3)})`, at))[0]!.value, PROM_PAGES + PROM_ERRORS);
  const want = quantile(0.99, buckets);
  const exact = await query(prom, `histogram_quantile(0.99, sum(${DURATION_BUCKETS}) by (le) - sum(${DURATION_BUCKETS} @ ${baseAt.toFixed(3)}) by (le))`, at);
  assert.ok(Math.abs(exact[0]!.value - want) < 1e-9, `p99 from raw deltas: ${exact[0]!.value}, computed ${want}`);
  const p99 = await query(prom, `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[${windowMs}ms])) by (le, destination_workload))`, at);
  const dashboardP99 = valueOf(p99, { destination_workload: 'productpage-v1' });
  // The rate() form is not compared with the exact figure: its window may also hold a slow request from before the
  // baseline (a warm-up page), and each bucket series extrapolates by its own factor, which with 25 requests can move a
  // p99 by buckets. It must equal the same quantile over increase() of the same window (rate is increase / window, and
  // a quantile does not change with scale): the dashboard's query reads the stored histogram consistently.
  const viaIncrease = await query(prom, `histogram_quantile(0.99, sum(increase(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="productpage-v1"}[${windowMs}ms])) by (le))`, at);
  assert.ok(Number.isFinite(dashboardP99) && dashboardP99 > 0, `dashboard p99 ${dashboardP99}`);
  assert.ok(Math.abs(dashboardP99 - viaIncrease[0]!.value) < 1e-6 * Math.max(1, dashboardP99), `dashboard p99 ${dashboardP99} ms = the same quantile over increase() ${viaIncrease[0]!.value} (exact over this test's requests: ${want})`);
});

test("metrics merging: productpage's agent status port serves the proxy's istio_*, the app's own and the agent's metrics, each family once", async () => {
  const productpage = plan.workloads.get('productpage-v1')!.status!;
  const res = await get(productpage, '/stats/prometheus');
  assert.equal(res.status, 200);
  assert.match(res.body, /^istio_requests_total\{reporter="destination",/m);
  assert.match(res.body, /^istio_request_duration_milliseconds_bucket\{/m);
  assert.match(res.body, /^productpage_requests_total\{route="\/productpage",code="200"\} \d+$/m);
  assert.match(res.body, /^istio_agent_scrapes_total \d+$/m);
  assert.match(res.body, /^istio_agent_scrape_failures_total\{type="application"\} 0$/m);
  for (const kind of ['TYPE', 'HELP']) {
    const names = [...res.body.matchAll(new RegExp(`^# ${kind} (\\S+)`, 'gm'))].map((m) => m[1]!);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], `no # ${kind} line twice`);
  }
  // details has no prometheus.io annotations: its agent serves the proxy's and its own only.
  const details = await get(plan.workloads.get('details-v1')!.status!, '/metrics');
  assert.match(details.body, /^istio_requests_total\{/m);
  assert.doesNotMatch(details.body, /productpage_requests_total/);
  for (const w of SIDECARS) {
    const status = plan.workloads.get(w)?.status ?? plan.gateways.get(w)!.status;
    assert.equal((await get(status, '/healthz/ready')).status, 200, `${w} /healthz/ready`);
  }
});
