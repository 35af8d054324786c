// Istio's standard metrics on Bookinfo under `trellis up`: after N product pages through the gateway, every sidecar's
// /stats/prometheus counts the hops with both workloads named (gateway → productpage → details/reviews → ratings).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { loadManifest } from '../../src/local/manifest.js';
import { planPorts, type PortPlan } from '../../src/local/port-blocks.js';
import { copyBookinfo, freePortBase, startTrellisUp, stopTrellisUp } from './trellis-up.js';

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

before(async () => {
  ({ dir, gatewayPort } = await copyBookinfo('trellis-bookinfo-metrics-'));
  const base = await freePortBase(dir);
  plan = planPorts(loadManifest(dir), base);

  up = await startTrellisUp(dir, base, (c) => (output += c));
});

after(async () => {
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
  const sidecars = ['istio-ingressgateway', 'productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1'];
  for (const w of sidecars) before.set(w, await requestsTotal(admin(w)));
  for (let i = 0; i < PAGES; i++) assert.equal((await get(gatewayPort, '/productpage')).status, 200);

  const delta = async (w: string, match: Record<string, string | RegExp>): Promise<number> => sum(await requestsTotal(admin(w)), match) - sum(before.get(w)!, match);
  const hop = (reporter: string, source: string | RegExp, destination: string | RegExp): Record<string, string | RegExp> => ({ reporter, source_workload: source, destination_workload: destination, response_code: '200' });
  // The destination sidecar records when its response ends, a moment after the client has it: wait (bounded) for the counts.
  const expectations: [string, Record<string, string | RegExp>, number][] = [
    ['istio-ingressgateway', { ...hop('source', 'istio-ingressgateway', 'productpage-v1'), destination_service_name: 'productpage' }, PAGES],
    ['productpage-v1', { ...hop('destination', 'istio-ingressgateway', 'productpage-v1'), source_app: 'istio-ingressgateway' }, PAGES],
    ['productpage-v1', { ...hop('source', 'productpage-v1', 'details-v1'), destination_service: 'details.default.svc.cluster.local', destination_app: 'details', destination_version: 'v1' }, PAGES],
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
