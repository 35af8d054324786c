// Istio node ids parse into type, ip, pod, namespace and domain; ids that are not Istio's give the reason instead of throwing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNodeId } from '../../src/common/node-id.js';

test('an Istio node id gives its parts; NAMESPACE metadata wins over the id, which wins over the defaults', () => {
  assert.deepEqual(parseNodeId('sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.example.org'), {
    type: 'sidecar', ip: '10.0.0.1', podName: 'reviews-v1-abc', namespace: 'default', domainSuffix: 'example.org',
  });
  assert.equal((parseNodeId('router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local', 'edge') as { namespace: string }).namespace, 'edge');
  // No namespace after the pod, no `.svc.` domain: Istio's defaults.
  assert.deepEqual(parseNodeId('sidecar~10.0.0.1~pod~somewhere'), { type: 'sidecar', ip: '10.0.0.1', podName: 'pod', namespace: 'default', domainSuffix: 'cluster.local' });
});

test('ids that are not Istio node ids give the reason, naming the id', () => {
  for (const id of ['', 'my-envoy', 'sidecar~1.2.3.4~a.b', 'sidecar~1.2.3.4~a.b~b.svc.cluster.local~extra']) {
    const parsed = parseNodeId(id);
    assert.ok('problem' in parsed, id);
    assert.match(parsed.problem, /is not Istio's type~ip~pod\.namespace~namespace\.svc\.domain/);
    assert.ok(parsed.problem.includes(JSON.stringify(id)));
  }
  const waypoint = parseNodeId('waypoint~1.2.3.4~a.b~b.svc.cluster.local');
  assert.ok('problem' in waypoint);
  assert.match(waypoint.problem, /type must be sidecar or router, got "waypoint"/);
});
