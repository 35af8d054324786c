// Network filters' stats reach the admin /stats page: a network RBAC filter that denies every connection before the
// connection manager counts `tcp.rbac.denied` there, as Envoy shows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HCM_TYPE, ROUTER, get, routeTo, startDataPlane, startUpstream, vhost } from './support.js';

test('network RBAC denials are counted on /stats under the filter stat_prefix', async (t) => {
  const upstream = await startUpstream('web');
  t.after(() => upstream.close());
  const dp = await startDataPlane({
    virtualHosts: [vhost([routeTo('web')])],
    clusters: [{ name: 'web', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'web', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: upstream.port } } } }] }] } }],
    listener: {
      filter_chains: [
        {
          filters: [
            // ALLOW with no policies: every connection is denied.
            { name: 'envoy.filters.network.rbac', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC', stat_prefix: 'tcp.', rules: { action: 'ALLOW' } } },
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: { '@type': HCM_TYPE, stat_prefix: 'ingress', route_config: { name: 'local', virtual_hosts: [vhost([routeTo('web')])] }, http_filters: [ROUTER] },
            },
          ],
        },
      ],
    },
  });
  t.after(() => dp.close());
  await assert.rejects(get(dp.address, '/'), 'the connection is closed without an answer');
  assert.equal(await dp.stat('tcp.rbac.denied'), 1);
  assert.equal(await dp.stat('tcp.rbac.allowed'), 0);
  assert.equal(upstream.seen.length, 0);
});
