// Metrics merging: agent, proxy and application texts joined with each family once, a later duplicate left out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeExpositions } from '../../src/agent/metrics-merge.js';

const AGENT = '# HELP istio_agent_scrapes_total The total number of scrapes.\n# TYPE istio_agent_scrapes_total counter\nistio_agent_scrapes_total 3\n';
const ENVOY = [
  '# TYPE istio_requests_total counter',
  'istio_requests_total{reporter="destination",response_code="200"} 12',
  'istio_requests_total{reporter="destination",response_code="404"} 1',
  '# TYPE istio_request_duration_milliseconds histogram',
  'istio_request_duration_milliseconds_bucket{le="0.5"} 0',
  'istio_request_duration_milliseconds_bucket{le="+Inf"} 13',
  'istio_request_duration_milliseconds_sum 40.5',
  'istio_request_duration_milliseconds_count 13',
  '',
].join('\n');

/** Every `# TYPE` / `# HELP` name, with duplicates. */
function metadataNames(text: string, kind: 'TYPE' | 'HELP'): string[] {
  return [...text.matchAll(new RegExp(`^# ${kind} (\\S+)`, 'gm'))].map((m) => m[1]!);
}

test('agent, proxy and app families all present, in source order, each TYPE once', () => {
  const app = '# HELP productpage_requests_total Requests.\n# TYPE productpage_requests_total counter\nproductpage_requests_total{route="/productpage",code="200"} 7\n';
  const merged = mergeExpositions([{ name: 'agent', text: AGENT }, { name: 'envoy', text: ENVOY }, { name: 'application', text: app }]);
  assert.deepEqual(merged.dropped, []);
  assert.deepEqual(metadataNames(merged.text, 'TYPE'), ['istio_agent_scrapes_total', 'istio_requests_total', 'istio_request_duration_milliseconds', 'productpage_requests_total']);
  assert.match(merged.text, /^istio_request_duration_milliseconds_bucket\{le="\+Inf"\} 13$/m);
  assert.match(merged.text, /^productpage_requests_total\{route="\/productpage",code="200"\} 7$/m);
  assert.ok(merged.text.endsWith('\n') && !merged.text.includes('\n\n'), 'one sample per line, no blank lines');
});

test("an app family named like the proxy's is left out and reported; the app's other families stay", () => {
  const app = [
    '# HELP istio_requests_total The app reusing a mesh name.',
    '# TYPE istio_requests_total counter',
    'istio_requests_total{code="200"} 99',
    '# TYPE app_up gauge',
    'app_up 1',
    '',
  ].join('\n');
  const merged = mergeExpositions([{ name: 'agent', text: AGENT }, { name: 'envoy', text: ENVOY }, { name: 'application', text: app }]);
  assert.deepEqual(merged.dropped, ['application: istio_requests_total']);
  assert.deepEqual(metadataNames(merged.text, 'TYPE').filter((n) => n === 'istio_requests_total'), ['istio_requests_total']);
  assert.doesNotMatch(merged.text, / 99$/m);
  assert.match(merged.text, /^app_up 1$/m);
});

test('untyped app samples colliding with a histogram series of the proxy are left out; OpenMetrics # EOF and other comments go', () => {
  const app = 'istio_request_duration_milliseconds_count 5\n# a comment\nplain_metric{a="1"} 2\nplain_metric{a="2"} 3\n# EOF\n';
  const merged = mergeExpositions([{ name: 'envoy', text: ENVOY }, { name: 'application', text: app }]);
  // Prometheus would get the histogram's _count series twice.
  assert.deepEqual(merged.dropped, ['application: istio_request_duration_milliseconds_count']);
  assert.equal(merged.text.match(/^istio_request_duration_milliseconds_count/gm)?.length, 1);
  assert.doesNotMatch(merged.text, /# EOF|# a comment/);
  assert.match(merged.text, /^plain_metric\{a="1"\} 2\nplain_metric\{a="2"\} 3$/m);
  const again = mergeExpositions([{ name: 'envoy', text: ENVOY }, { name: 'application', text: '# TYPE istio_request_duration_milliseconds histogram\nistio_request_duration_milliseconds_count 5\n' }]);
  assert.deepEqual(again.dropped, ['application: istio_request_duration_milliseconds']);
});

test('CRLF line ends and empty sources', () => {
  const merged = mergeExpositions([{ name: 'agent', text: '' }, { name: 'application', text: '# TYPE a counter\r\na 1\r\n' }]);
  assert.equal(merged.text, '# TYPE a counter\na 1\n');
  assert.equal(mergeExpositions([]).text, '');
});
