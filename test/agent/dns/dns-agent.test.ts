// The DNS agent's scope (namespace, cluster domain) from the bootstrap's node, as the control plane reads the node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dnsScope } from '../../../src/agent/dns/dns-agent.js';

test('the DNS proxy answers for the namespace and cluster domain the control plane reads from the node; a bad id falls back to the defaults with the reason', () => {
  const metadata = { fields: { NAMESPACE: { string_value: 'shop' } } };
  assert.deepEqual(dnsScope({ id: 'sidecar~127.0.0.1~cart-1.shop~shop.svc.example.org' }), { namespace: 'shop', clusterDomain: 'example.org' });
  assert.deepEqual(dnsScope({ id: 'sidecar~127.0.0.1~cart-1.x~x.svc.example.org', metadata }), { namespace: 'shop', clusterDomain: 'example.org' });
  const bad = dnsScope({ id: 'cart-1', metadata });
  assert.equal(bad.namespace, 'shop');
  assert.equal(bad.clusterDomain, 'cluster.local');
  assert.match(bad.problem ?? '', /node id "cart-1" is not Istio's/);
  assert.deepEqual({ ...dnsScope({ id: 'cart-1' }), problem: undefined }, { namespace: 'default', clusterDomain: 'cluster.local', problem: undefined });
});
