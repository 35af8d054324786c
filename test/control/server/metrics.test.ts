// The Prometheus text exposition: HELP/TYPE lines, label escaping, cumulative histogram buckets, refused names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry } from '../../../src/control/server/metrics.js';
import { createPilotMetrics } from '../../../src/control/server/pilot-metrics.js';

test('counters and gauges with labels, in the text format', () => {
  const registry = new MetricsRegistry();
  const pushes = registry.counter('pilot_xds_pushes', 'Pushes by type.');
  const connected = registry.gauge('pilot_xds', 'Connected proxies.');
  pushes.inc({ type: 'cds' });
  pushes.inc({ type: 'cds' });
  pushes.inc({ type: 'eds' }, 3);
  connected.set(2);
  connected.add(-1);
  assert.equal(
    registry.expose(),
    [
      '# HELP pilot_xds_pushes Pushes by type.',
      '# TYPE pilot_xds_pushes counter',
      'pilot_xds_pushes{type="cds"} 2',
      'pilot_xds_pushes{type="eds"} 3',
      '# HELP pilot_xds Connected proxies.',
      '# TYPE pilot_xds gauge',
      'pilot_xds 1',
      '',
    ].join('\n'),
  );
  assert.equal(pushes.get({ type: 'cds' }), 2);
});

test('label values are escaped and label order does not make a new series', () => {
  const registry = new MetricsRegistry();
  const events = registry.counter('pilot_k8s_cfg_events', 'Config events.');
  events.inc({ type: 'VirtualService', event: 'add' });
  events.inc({ event: 'add', type: 'VirtualService' });
  const rejects = registry.counter('pilot_total_xds_rejects', 'h');
  rejects.inc({ type: 'a "quoted"\\path\nline' });
  const text = registry.expose();
  assert.match(text, /^pilot_k8s_cfg_events\{event="add",type="VirtualService"\} 2$/m);
  assert.match(text, /^pilot_total_xds_rejects\{type="a \\"quoted\\"\\\\path\\nline"\} 1$/m);
});

test('histograms expose cumulative buckets, +Inf, sum and count', () => {
  const registry = new MetricsRegistry();
  const h = registry.histogram('pilot_xds_push_time', 'Push time.', [0.1, 1, 10]);
  h.observe(0.05, { type: 'cds' });
  h.observe(0.5, { type: 'cds' });
  h.observe(0.5, { type: 'cds' });
  h.observe(100, { type: 'cds' });
  const lines = registry.expose().split('\n');
  assert.deepEqual(lines.slice(2, 8), [
    'pilot_xds_push_time_bucket{type="cds",le="0.1"} 1',
    'pilot_xds_push_time_bucket{type="cds",le="1"} 3',
    'pilot_xds_push_time_bucket{type="cds",le="10"} 3',
    'pilot_xds_push_time_bucket{type="cds",le="+Inf"} 4',
    'pilot_xds_push_time_sum{type="cds"} 101.05',
    'pilot_xds_push_time_count{type="cds"} 4',
  ]);
  assert.equal(h.count(), 4);
});

test('invalid names, duplicate registration and decreasing counters are refused', () => {
  const registry = new MetricsRegistry();
  assert.throws(() => registry.counter('bad-name', 'h'), RangeError);
  registry.counter('ok', 'h');
  assert.throws(() => registry.gauge('ok', 'h'), RangeError);
  const c = registry.counter('c', 'h');
  assert.throws(() => c.inc({}, -1), RangeError);
  assert.throws(() => c.inc({ 'bad-label': 'x' }), RangeError);
});

test('the control plane registers Istio metric names', () => {
  const metrics = createPilotMetrics();
  metrics.pushes.inc({ type: 'lds' });
  metrics.convergence.observe(0.2);
  const text = metrics.registry.expose();
  for (const name of ['pilot_xds_pushes', 'pilot_xds_push_time', 'pilot_proxy_convergence_time', 'pilot_xds', 'pilot_total_xds_rejects', 'pilot_xds_push_context_errors', 'pilot_k8s_cfg_events']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  assert.match(text, /^pilot_proxy_convergence_time_bucket\{le="0.5"\} 1$/m);
});
