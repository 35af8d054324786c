import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheusText } from '../../src/dashboard/prometheus-text.js';
import { buildTrafficGraph, counterIncreases, histogramQuantile } from '../../src/dashboard/traffic-graph.js';
import { istioStatsText, record, series } from './istio-metrics-fixture.js';

const snap = (at: number, text: string) => ({ at, samples: parsePrometheusText(text).samples });

test('parses labels with escapes, +Inf, timestamps and comments; an unreadable line is skipped and counted', () => {
  const { samples, skipped } = parsePrometheusText(
    '# HELP x y\n# TYPE a counter\na{path="/q\\"x\\"",b="1"} 3 1700000000000\nb_bucket{le="+Inf"} 7\nc 1.5e3\nthis is not a sample\nd{bad label} 1\n',
  );
  assert.equal(skipped, 2);
  assert.deepEqual(samples, [
    { name: 'a', labels: { path: '/q"x"', b: '1' }, value: 3 },
    { name: 'b_bucket', labels: { le: '+Inf' }, value: 7 },
    { name: 'c', labels: {}, value: 1500 },
  ]);
});

test('edges from two scrapes 10 s apart: rps from counter deltas, 5xx share, p99 from bucket deltas, mTLS', () => {
  const pOk = series({ source: 'productpage', sourceVersion: 'v1', destination: 'reviews', destinationVersion: 'v2', code: 200 });
  const p503 = series({ source: 'productpage', sourceVersion: 'v1', destination: 'reviews', destinationVersion: 'v2', code: 503 });
  const rOk = series({ source: 'reviews', sourceVersion: 'v2', destination: 'ratings', destinationVersion: 'v1', code: 200, mtls: false });
  // Traffic before the window must not count.
  record(pOk, 1000, 250);
  record(rOk, 500, 250);
  const before = snap(0, istioStatsText([pOk, p503, rOk]));
  record(pOk, 85, 3);
  record(pOk, 10, 7);
  record(p503, 5, 3);
  record(rOk, 50, 1);
  const after = snap(10_000, istioStatsText([pOk, p503, rOk]));
  const graph = buildTrafficGraph(counterIncreases(before, after), 10);

  assert.deepEqual(graph.nodes.map((n) => [n.id, n.versions, n.workloads]), [
    ['productpage', ['v1'], ['productpage-v1']],
    ['ratings', ['v1'], ['ratings-v1']],
    ['reviews', ['v2'], ['reviews-v2']],
  ]);
  const [pr, rr] = graph.edges;
  assert.equal(pr!.source, 'productpage');
  assert.equal(pr!.destination, 'reviews');
  assert.equal(pr!.requests, 100);
  assert.equal(pr!.rps, 10);
  assert.equal(pr!.errorRate, 0.05);
  // 90 requests at <= 5 ms, 10 in (5, 10]: rank 99 lies 9/10 into the (5, 10] bucket.
  assert.equal(pr!.p99Ms, 9.5);
  assert.equal(pr!.mtls, true);
  assert.deepEqual(pr!.destinationServices, ['reviews.default.svc.cluster.local']);
  assert.equal(rr!.destination, 'ratings');
  assert.equal(rr!.rps, 5);
  assert.equal(rr!.errorRate, 0);
  assert.equal(rr!.mtls, false);
  // 50 requests in (0.5, 1]: rank 49.5 of 50 lies 99% into that bucket.
  assert.equal(rr!.p99Ms, 0.995);
});

test('both reporters of one edge count once (the destination reporter); a source-only edge is kept', () => {
  const d = series({ source: 'productpage', sourceVersion: 'v1', destination: 'details', destinationVersion: 'v1', code: 200 });
  const s = series({ reporter: 'source', source: 'productpage', sourceVersion: 'v1', destination: 'details', destinationVersion: 'v1', code: 200 });
  const out = series({ reporter: 'source', source: 'reviews', sourceVersion: 'v3', destination: 'ratings', destinationVersion: 'v1', code: 200 });
  record(d, 40, 2);
  record(s, 40, 3);
  record(out, 7, 2);
  const graph = buildTrafficGraph(counterIncreases(undefined, snap(0, istioStatsText([d, s, out]))), null);
  assert.equal(graph.edges.length, 2);
  assert.deepEqual(graph.edges.map((e) => [e.source, e.destination, e.requests, e.reporter, e.rps]), [
    ['productpage', 'details', 40, 'destination', null],
    ['reviews', 'ratings', 7, 'source', null],
  ]);
  assert.equal(graph.edges[1]!.mtls, false);
});

test('a counter that went down (proxy restart) counts its new value as the increase', () => {
  const a = series({ source: 'productpage', sourceVersion: 'v1', destination: 'reviews', destinationVersion: 'v1', code: 200 });
  record(a, 500, 1);
  const before = snap(0, istioStatsText([a]));
  const b = series({ source: 'productpage', sourceVersion: 'v1', destination: 'reviews', destinationVersion: 'v1', code: 200 });
  record(b, 20, 1);
  const graph = buildTrafficGraph(counterIncreases(before, snap(5_000, istioStatsText([b]))), 5);
  assert.equal(graph.edges[0]!.requests, 20);
  assert.equal(graph.edges[0]!.rps, 4);
});

test('histogram_quantile: past the last finite bucket gives its bound; no requests give null', () => {
  assert.equal(histogramQuantile(0.99, new Map([[10, 0], [100, 0], [Infinity, 5]])), 100);
  assert.equal(histogramQuantile(0.99, new Map([[10, 0], [Infinity, 0]])), null);
  assert.equal(histogramQuantile(0.5, new Map([[10, 10], [20, 20], [Infinity, 20]])), 10);
});
