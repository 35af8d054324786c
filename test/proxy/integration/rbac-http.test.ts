// envoy.filters.http.rbac through the real data plane (static bootstrap): Istio-style DENY then ALLOW filters, 403 `RBAC:
// access denied` with the matched policy in %RESPONSE_CODE_DETAILS%, shadow (dry-run) rules that never block, RBACPerRoute
// turning RBAC off for a route, HTTP/2, remote_ip from x-forwarded-for, Envoy's counters in /stats; and an mTLS listener
// where the authenticated principal (the client certificate's SPIFFE URI SAN) decides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyLog } from '../../../src/proxy/admin/log-levels.js';
import { startProxy } from '../../../src/proxy/main.js';
import { hasOpenssl, spiffe, TestCa, type Pem } from '../transport/pki.js';
import { accessLogEntries, get, h2get, HCM_TYPE, ROUTER, startDataPlane, startUpstream, staticCluster, vhost, type Json } from './support.js';

const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const RBAC_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';
const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

function rbacFilter(config: Json): Json {
  return { name: 'envoy.filters.http.rbac', typed_config: { '@type': RBAC_TYPE, ...config } };
}

const exact = (name: string, value: string): Json => ({ header: { name, string_match: { exact: value } } });
const DENY_POLICY = 'ns[foo]-policy[deny-admin]-rule[0]';

test('HTTP RBAC: DENY and ALLOW filters, shadow rules, per-route off, HTTP/2, stats and response code details', async (t) => {
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port])],
    httpFilters: [
      // Istio's order: the DENY filter first, then ALLOW (with the dry-run policy as shadow rules).
      rbacFilter({
        rules: {
          action: 'DENY',
          policies: { [DENY_POLICY]: { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [exact('x-user', 'mallory')] } },
        },
      }),
      rbacFilter({
        rules: {
          action: 'ALLOW',
          policies: { 'allow-get': { permissions: [{ and_rules: { rules: [exact(':method', 'GET'), { url_path: { path: { prefix: '/' } } }] } }], principals: [{ any: true }] } },
        },
        shadow_rules: { action: 'DENY', policies: { 'dry-run': { permissions: [{ url_path: { path: { exact: '/dry' } } }], principals: [{ any: true }] } } },
        shadow_rules_stat_prefix: 'istio_dry_run_allow_',
      }),
    ],
    virtualHosts: [
      vhost([
        { match: { prefix: '/public' }, route: { cluster: 'svc' }, typed_per_filter_config: { 'envoy.filters.http.rbac': { '@type': RBAC_PER_ROUTE_TYPE } } },
        { match: { prefix: '/' }, route: { cluster: 'svc' } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });

  assert.equal((await get(dp.address, '/api', { agent: dp.agent })).status, 200);
  const post = await get(dp.address, '/api', { agent: dp.agent, method: 'POST', body: 'x' });
  assert.equal(post.status, 403);
  assert.equal(post.body, 'RBAC: access denied');
  assert.equal(post.headers['content-type'], 'text/plain');
  const mallory = await get(dp.address, '/admin/users', { agent: dp.agent, headers: { 'x-user': 'mallory' } });
  assert.equal(mallory.status, 403);
  assert.equal(mallory.body, 'RBAC: access denied');
  assert.equal((await get(dp.address, '/admin/users', { agent: dp.agent, headers: { 'x-user': 'alice' } })).status, 200);
  assert.equal((await get(dp.address, '/dry', { agent: dp.agent })).status, 200, 'shadow rules never deny');
  assert.equal((await get(dp.address, '/public/x', { agent: dp.agent, method: 'POST', body: 'x' })).status, 200, 'RBACPerRoute without rbac turns RBAC off');
  const h2 = await h2get(dp.address, '/api', { method: 'POST', body: 'x' });
  assert.equal(h2.status, 403);
  assert.equal(h2.body, 'RBAC: access denied');

  assert.deepEqual(up.seen.map((s) => `${s.method} ${s.path}`), ['GET /api', 'GET /admin/users', 'GET /dry', 'POST /public/x'], 'denied requests never reach the upstream');
  const log = await accessLogEntries(dp, 7);
  assert.deepEqual(log.map((e) => e['details']), [
    'via_upstream',
    'rbac_access_denied_matched_policy[none]',
    `rbac_access_denied_matched_policy[${DENY_POLICY}]`,
    'via_upstream',
    'via_upstream',
    'via_upstream',
    'rbac_access_denied_matched_policy[none]',
  ]);
  const stats = await dp.stats();
  // Both filters count into http.ingress.rbac.*: 8 allowed decisions (GET /api ×2, POST /api ×1 before ALLOW denied it,
  // /admin alice ×2, /dry ×2, h2 POST ×1), 3 denied.
  assert.equal(stats.get('http.ingress.rbac.allowed'), 8);
  assert.equal(stats.get('http.ingress.rbac.denied'), 3);
  assert.equal(stats.get('http.ingress.rbac.istio_dry_run_allow_.shadow_denied'), 1);
  assert.equal(stats.get('http.ingress.rbac.istio_dry_run_allow_.shadow_allowed'), 4);
});

test('HTTP RBAC: remote_ip is the x-forwarded-for client, direct_remote_ip the socket peer', async (t) => {
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port])],
    httpFilters: [
      rbacFilter({
        rules: {
          policies: {
            'office-via-lb': {
              permissions: [{ any: true }],
              principals: [{ and_ids: { ids: [{ remote_ip: { address_prefix: '203.0.113.0', prefix_len: 24 } }, { direct_remote_ip: { address_prefix: '127.0.0.1', prefix_len: 32 } }] } }],
            },
          },
        },
      }),
    ],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  assert.equal((await get(dp.address, '/', { agent: dp.agent, headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 200);
  assert.equal((await get(dp.address, '/', { agent: dp.agent, headers: { 'x-forwarded-for': '198.51.100.1' } })).status, 403);
  assert.equal((await get(dp.address, '/', { agent: dp.agent })).status, 403, 'without x-forwarded-for the remote address is 127.0.0.1');
});

test('HTTP RBAC: a bad policy is refused at start-up with its field path', async () => {
  await assert.rejects(
    startDataPlane({
      clusters: [staticCluster('svc', [1])],
      httpFilters: [rbacFilter({ rules: { policies: { broken: { permissions: [{ header: { name: 'x', safe_regex_match: { regex: '(' } } }], principals: [] } } } })],
      virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
    }),
    (err: Error) => {
      assert.match(err.message, /rules\.policies\["broken"\]\.permissions\[0\]\.header\.safe_regex_match\.regex: does not compile/);
      assert.match(err.message, /rules\.policies\["broken"\]\.principals: at least one principal is required/);
      return true;
    },
  );
});

function httpsGet(port: number, path: string, client: Pem, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, servername: 'svc.local', ca, cert: client.cert, key: client.key, agent: false, headers: { host: 'svc.local' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

test('HTTP RBAC over mTLS: principal_name against the client certificate SPIFFE URI SAN', { skip: hasOpenssl() ? false : 'openssl CLI is missing' }, async (t) => {
  const ca = new TestCa('cluster.local');
  const server = ca.issue('server', { dns: ['svc.local'] });
  const productpage = ca.issue('productpage', { uris: [spiffe('cluster.local', 'default', 'productpage')] });
  const reviews = ca.issue('reviews', { uris: [spiffe('cluster.local', 'default', 'reviews')] });
  const up = await startUpstream('svc');
  const dir = mkdtempSync(join(tmpdir(), 'trellis-rbac-mtls-'));
  const bootstrap = {
    node: { id: 'rbac-mtls', cluster: 'test' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      clusters: [staticCluster('svc', [up.port])],
      listeners: [
        {
          name: 'mtls',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': DOWNSTREAM_TLS,
                  common_tls_context: {
                    tls_certificates: [{ certificate_chain: { inline_string: server.cert }, private_key: { inline_string: server.key } }],
                    validation_context: { trusted_ca: { inline_string: ca.root.cert } },
                  },
                  require_client_certificate: true,
                },
              },
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM_TYPE,
                    stat_prefix: 'inbound',
                    route_config: { name: 'local', virtual_hosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])] },
                    http_filters: [
                      rbacFilter({
                        rules: {
                          policies: {
                            'ns[default]-policy[reviews-viewer]-rule[0]': {
                              permissions: [exact(':method', 'GET')],
                              principals: [{ authenticated: { principal_name: { exact: spiffe('cluster.local', 'default', 'productpage') } } }],
                            },
                          },
                        },
                      }),
                      ROUTER,
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  };
  const path = join(dir, 'bootstrap.json');
  writeFileSync(path, JSON.stringify(bootstrap));
  const proxy = await startProxy({ bootstrapPath: path, drainTimeMs: 200, log: new ProxyLog('error') });
  t.after(async () => {
    await proxy.stop();
    await up.close();
  });
  const listeners = JSON.parse((await get(proxy.admin!.address, '/listeners?format=json')).body) as { listener_statuses: { local_address: { socket_address: { port_value: number } } }[] };
  const port = listeners.listener_statuses[0]!.local_address.socket_address.port_value;

  const allowed = await httpsGet(port, '/reviews/1', productpage, ca.root.cert);
  assert.equal(allowed.status, 200);
  const denied = await httpsGet(port, '/reviews/1', reviews, ca.root.cert);
  assert.equal(denied.status, 403);
  assert.equal(denied.body, 'RBAC: access denied');
  const stats = (await get(proxy.admin!.address, '/stats')).body;
  assert.match(stats, /^http\.inbound\.rbac\.allowed: 1$/m);
  assert.match(stats, /^http\.inbound\.rbac\.denied: 1$/m);
  assert.equal(up.seen.length, 1);
});
