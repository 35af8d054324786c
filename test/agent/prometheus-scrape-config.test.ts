// ISTIO_PROMETHEUS_ANNOTATIONS: pilot-agent's defaults, scrape "false", and every bad value refused with the variable named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheusAnnotations } from '../../src/agent/prometheus-scrape-config.js';

test("pilot-agent's defaults: path /metrics, port 80; scrape \"false\" turns merging off", () => {
  assert.deepEqual(parsePrometheusAnnotations('{"scrape":"true","port":"9080","path":"/custom"}', 15020), { port: 9080, path: '/custom' });
  assert.deepEqual(parsePrometheusAnnotations('{"scrape":"true"}', 15020), { port: 80, path: '/metrics' });
  assert.deepEqual(parsePrometheusAnnotations('{"scrape":"","port":"","path":""}', 15020), { port: 80, path: '/metrics' });
  assert.equal(parsePrometheusAnnotations('{"scrape":"false","port":"9080"}', 15020), undefined);
});

test('bad values are refused with the variable and field named', () => {
  const cases: Array<[string, RegExp]> = [
    ['{not json', /ISTIO_PROMETHEUS_ANNOTATIONS=\{not json: not JSON/],
    ['["scrape"]', /expected a JSON object/],
    ['{"scrape":"true","port":9080}', /port: expected a string, got 9080/],
    ['{"scrape":"true","port":"http"}', /port: expected a port number 1-65535, got "http"/],
    ['{"scrape":"true","port":"70000"}', /port: expected a port number/],
    ['{"scrape":"true","path":"metrics"}', /path: expected a path starting with \//],
    ['{"scrape":"true","scheme":"https"}', /unknown field "scheme"/],
    ['{"scrape":"true","port":"15020"}', /status port 15020, which would make the agent scrape itself/],
  ];
  for (const [json, message] of cases) {
    assert.throws(() => parsePrometheusAnnotations(json, 15020), (err: Error & { code?: string }) => err.code === 'TRELLIS_CONFIG_INVALID' && message.test(err.message), json);
  }
});
