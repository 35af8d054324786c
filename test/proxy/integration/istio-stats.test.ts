// Istio's standard metrics through two real proxies (client sidecar outbound → server sidecar inbound → app): metadata
// exchange headers fill both reporters' source_* and destination_*, visible on each admin /stats/prometheus.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyLog } from '../../../src/proxy/admin/log-levels.js';
import { startProxy, type RunningProxy } from '../../../src/proxy/main.js';
import { HCM_TYPE, ROUTER, get, routeTo, startUpstream, staticCluster, vhost, type Json } from './support.js';

const STRUCT = 'type.googleapis.com/google.protobuf.Struct';
const REVIEWS_CLUSTER = 'outbound|9080||reviews.default.svc.cluster.local';

/** A sidecar with one HCM as Trellis's control plane builds it: metadata exchange first, istio.stats before the router. */
async function sidecar(name: string, metadata: Json, direction: 'INBOUND' | 'OUTBOUND', cluster: string, upstreamPort: number): Promise<{ proxy: RunningProxy; address: string; admin: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-istio-stats-'));
  const mx = direction === 'INBOUND' ? { downstream_discovery: [{ istio_headers: {} }], downstream_propagation: [{ istio_headers: {} }] } : { upstream_discovery: [{ istio_headers: {} }], upstream_propagation: [{ istio_headers: {} }] };
  const bootstrap = {
    node: { id: `sidecar~127.0.0.1~${name}.default~default.svc.cluster.local`, cluster: `${name}.default`, metadata },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: `${direction.toLowerCase()}_0.0.0.0_9080`,
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM_TYPE,
                    stat_prefix: `${direction.toLowerCase()}_0.0.0.0_9080`,
                    route_config: { name: 'local', virtual_hosts: [vhost([routeTo(cluster)])] },
                    http_filters: [
                      { name: 'istio.metadata_exchange', typed_config: { '@type': STRUCT, value: mx } },
                      { name: 'istio.stats', typed_config: { '@type': STRUCT, value: { direction } } },
                      ROUTER,
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [staticCluster(cluster, [upstreamPort])],
    },
  };
  const path = join(dir, 'bootstrap.json');
  writeFileSync(path, JSON.stringify(bootstrap));
  const proxy = await startProxy({ bootstrapPath: path, drainTimeMs: 100, log: new ProxyLog('error') });
  const admin = proxy.admin!.address;
  const listeners = JSON.parse((await get(admin, '/listeners?format=json')).body) as { listener_statuses: { local_address: { socket_address: { port_value: number } } }[] };
  return { proxy, admin, address: `127.0.0.1:${listeners.listener_statuses[0]!.local_address.socket_address.port_value}` };
}

/** The istio_requests_total series on a Prometheus page, as label maps with their value. */
function requestsTotal(text: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const m of text.matchAll(/^istio_requests_total\{(.*)\} (\S+)$/gm)) {
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

test('two sidecars: source and destination reporters both know both workloads; peer headers never reach the apps', async (t) => {
  const app = await startUpstream('reviews', (req, res) => {
    res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain' });
    res.end('reviews');
  });
  t.after(() => app.close());
  const inbound = await sidecar('reviews-v2', { NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-v2', LABELS: { app: 'reviews', version: 'v2' }, CLUSTER_ID: 'Kubernetes' }, 'INBOUND', 'inbound|9080||', app.port);
  t.after(() => inbound.proxy.stop());
  const outbound = await sidecar('productpage-v1', { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, CLUSTER_ID: 'Kubernetes' }, 'OUTBOUND', REVIEWS_CLUSTER, Number(inbound.address.split(':')[1]));
  t.after(() => outbound.proxy.stop());

  for (const path of ['/reviews/0', '/reviews/1', '/missing']) {
    const reply = await get(outbound.address, path, { headers: { host: 'reviews:9080' } });
    assert.equal(reply.status, path === '/missing' ? 404 : 200);
    assert.equal(reply.headers['x-envoy-peer-metadata'], undefined, 'the client app does not see the server sidecar metadata');
    assert.equal(reply.headers['x-envoy-peer-metadata-id'], undefined);
  }
  assert.equal(app.seen.length, 3);
  for (const seen of app.seen) {
    assert.equal(seen.headers['x-envoy-peer-metadata'], undefined, 'the server app does not see the client sidecar metadata');
    assert.equal(seen.headers['x-envoy-peer-metadata-id'], undefined);
  }

  const common = {
    source_workload: 'productpage-v1',
    source_workload_namespace: 'default',
    source_app: 'productpage',
    source_version: 'v1',
    source_canonical_service: 'productpage',
    source_canonical_revision: 'v1',
    source_cluster: 'Kubernetes',
    destination_workload: 'reviews-v2',
    destination_workload_namespace: 'default',
    destination_app: 'reviews',
    destination_version: 'v2',
    destination_canonical_service: 'reviews',
    destination_canonical_revision: 'v2',
    destination_cluster: 'Kubernetes',
    destination_service: 'reviews.default.svc.cluster.local',
    destination_service_name: 'reviews',
    destination_service_namespace: 'default',
    request_protocol: 'http',
    response_flags: '-',
    grpc_response_status: '',
    source_principal: 'unknown',
    destination_principal: 'unknown',
  };
  const sourcePage = (await get(outbound.admin, '/stats/prometheus')).body;
  const destinationPage = (await get(inbound.admin, '/stats/prometheus')).body;
  assert.match(sourcePage, /^# TYPE istio_requests_total counter$/m);
  assert.match(destinationPage, /^# TYPE istio_request_duration_milliseconds histogram$/m);
  const source = requestsTotal(sourcePage).sort((a, b) => a.labels['response_code']!.localeCompare(b.labels['response_code']!));
  const destination = requestsTotal(destinationPage).sort((a, b) => a.labels['response_code']!.localeCompare(b.labels['response_code']!));
  assert.deepEqual(source, [
    { labels: { reporter: 'source', ...common, connection_security_policy: 'unknown', response_code: '200' }, value: 2 },
    { labels: { reporter: 'source', ...common, connection_security_policy: 'unknown', response_code: '404' }, value: 1 },
  ].map((s) => ({ ...s, labels: sortedLike(s.labels, source[0]?.labels) })));
  assert.deepEqual(destination, [
    { labels: { reporter: 'destination', ...common, connection_security_policy: 'none', response_code: '200' }, value: 2 },
    { labels: { reporter: 'destination', ...common, connection_security_policy: 'none', response_code: '404' }, value: 1 },
  ].map((s) => ({ ...s, labels: sortedLike(s.labels, destination[0]?.labels) })));
  assert.match(destinationPage, /^istio_request_duration_milliseconds_count\{reporter="destination",[^}]*response_code="200"[^}]*\} 2$/m);
  assert.match(sourcePage, /^istio_response_bytes_bucket\{reporter="source",[^}]*response_code="404"[^}]*,le="\+Inf"\} 1$/m);
});

/** deepEqual on objects ignores key order already; this keeps the expected object's keys in the actual order for readable diffs. */
function sortedLike(expected: Record<string, string>, actual: Record<string, string> | undefined): Record<string, string> {
  if (!actual) return expected;
  const out: Record<string, string> = {};
  for (const k of Object.keys(actual)) if (k in expected) out[k] = expected[k]!;
  for (const k of Object.keys(expected)) if (!(k in out)) out[k] = expected[k]!;
  return out;
}

test('without the peer headers (a client outside the mesh) the destination reporter says unknown for the source', async (t) => {
  const app = await startUpstream('ratings');
  t.after(() => app.close());
  const inbound = await sidecar('ratings-v1', { NAMESPACE: 'default', WORKLOAD_NAME: 'ratings-v1', LABELS: { app: 'ratings', version: 'v1' } }, 'INBOUND', 'inbound|9080||', app.port);
  t.after(() => inbound.proxy.stop());
  const forged = 'bm90IGEgc3RydWN0'; // "not a struct": ignored, and still removed
  const reply = await get(inbound.address, '/ratings/0', { headers: { host: 'ratings:9080', 'x-envoy-peer-metadata': forged } });
  assert.equal(reply.status, 200);
  assert.equal(app.seen[0]!.headers['x-envoy-peer-metadata'], undefined);
  assert.ok(reply.headers['x-envoy-peer-metadata'], 'the inbound sidecar answers with its own metadata');
  const [series] = requestsTotal((await get(inbound.admin, '/stats/prometheus')).body);
  assert.equal(series!.labels['reporter'], 'destination');
  assert.equal(series!.labels['source_workload'], 'unknown');
  assert.equal(series!.labels['source_app'], 'unknown');
  assert.equal(series!.labels['destination_workload'], 'ratings-v1');
  assert.equal(series!.labels['destination_service'], 'ratings.default.svc.cluster.local');
});
