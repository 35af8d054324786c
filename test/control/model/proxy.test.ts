// Istio node ids and metadata parse into the Proxy the generators use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyFromNode, ProxyIdError } from '../../../src/control/model/proxy.js';
import { clusterName, clusterSni, parseClusterName } from '../../../src/control/model/cluster-name.js';

test('a sidecar node id and metadata give namespace, pod, labels, service account and locality', () => {
  const proxy = proxyFromNode({
    id: 'sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local',
    cluster: 'reviews.default',
    locality: { region: 'eu', zone: 'eu-1a' },
    metadata: {
      fields: {
        NAMESPACE: { string_value: 'default' },
        SERVICE_ACCOUNT: { string_value: 'bookinfo-reviews' },
        WORKLOAD_NAME: { string_value: 'reviews-v1' },
        LABELS: { struct_value: { fields: { app: { string_value: 'reviews' }, version: { string_value: 'v1' } } } },
      },
    },
  });
  assert.equal(proxy.type, 'sidecar');
  assert.deepEqual(proxy.ipAddresses, ['10.0.0.1']);
  assert.equal(proxy.podName, 'reviews-v1-abc');
  assert.equal(proxy.namespace, 'default');
  assert.equal(proxy.domainSuffix, 'cluster.local');
  assert.deepEqual(proxy.labels, { app: 'reviews', version: 'v1' });
  assert.equal(proxy.serviceAccount, 'bookinfo-reviews');
  assert.equal(proxy.workloadName, 'reviews-v1');
  assert.deepEqual(proxy.locality, { region: 'eu', zone: 'eu-1a', subzone: '' });
});

test('a gateway is a router; missing metadata falls back to the id', () => {
  const proxy = proxyFromNode({ id: 'router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local' });
  assert.equal(proxy.type, 'router');
  assert.equal(proxy.namespace, 'istio-system');
  assert.equal(proxy.serviceAccount, 'default');
});

test('ids that are not Istio node ids are refused with the reason', () => {
  assert.throws(() => proxyFromNode({ id: 'my-envoy' }), (err: unknown) => err instanceof ProxyIdError && /type~ip~pod/.test(err.message));
  assert.throws(() => proxyFromNode({ id: 'waypoint~1.2.3.4~a.b~b.svc.cluster.local' }), /sidecar or router/);
});

test('cluster names and SNI follow Istio', () => {
  assert.equal(clusterName('outbound', 9080, 'v1', 'reviews.default.svc.cluster.local'), 'outbound|9080|v1|reviews.default.svc.cluster.local');
  assert.deepEqual(parseClusterName('outbound|9080||reviews.default.svc.cluster.local'), { direction: 'outbound', port: 9080, subset: '', hostname: 'reviews.default.svc.cluster.local' });
  assert.equal(parseClusterName('BlackHoleCluster'), undefined);
  assert.equal(clusterSni(9080, 'v1', 'reviews.default.svc.cluster.local'), 'outbound_.9080_.v1_.reviews.default.svc.cluster.local');
});
