// istiod's push status gauges (pilot_conflict_*, pilot_duplicate_envoy_clusters, pilot_vservice_dup_domain,
// pilot_destrule_subsets) on the monitoring port: a config with one case of each, then the config fixed (all 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WILDCARD } from '../../../src/xds/client/index.js';
import { pollUntil, startPlaneWithClient } from '../../support/control-plane-harness.js';
import { CLUSTER, LISTENER, ROUTE_CONFIGURATION } from '../../../src/xds/type-urls.js';

const se = (name: string, namespace: string, host: string, port: string, extra = '', endpoints = '[{ address: 127.0.0.2 }]') => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [${port}]
  endpoints: ${endpoints}
${extra}---
`;

/** One case of every gauge, each also appearing in a clean variant below. */
const CONFLICTS =
  // HTTP holds 0.0.0.0_8000; an address-less TCP service on 8000 is dropped there.
  se('web', 'default', 'web.example.com', '{ number: 8000, name: http, protocol: HTTP }', '  addresses: [10.9.0.1]\n') +
  se('web2', 'default', 'web2.example.com', '{ number: 8000, name: http, protocol: HTTP }', '  addresses: [10.9.0.1]\n') +
  se('db-a', 'default', 'db-a.example.com', '{ number: 8000, name: tcp, protocol: TCP }') +
  // Two address-less TCP services on 9000: the second's catch-all chain conflicts with the first's.
  se('tcp-a', 'default', 'tcp-a.example.com', '{ number: 9000, name: tcp, protocol: TCP }') +
  se('tcp-b', 'default', 'tcp-b.example.com', '{ number: 9000, name: tcp, protocol: TCP }') +
  // The client's own port 17000 selected by an HTTP and a TCP service.
  se('inb-http', 'default', 'inb-http.example.com', '{ number: 7000, name: http, protocol: HTTP }', '', '[{ address: 127.0.0.1, ports: { http: 17000 } }]') +
  se('inb-tcp', 'default', 'inb-tcp.example.com', '{ number: 7001, name: tcp, protocol: TCP }', '', '[{ address: 127.0.0.1, ports: { tcp: 17000 } }]') +
  // One host in two namespaces, both on port 80: the client's namespace wins, the other's cluster is a duplicate.
  se('dup', 'default', 'dup.example.com', '{ number: 80, name: http, protocol: HTTP }') +
  se('dup', 'other', 'dup.example.com', '{ number: 80, name: http, protocol: HTTP }') +
  // Two DestinationRules of one namespace for one host, both with subset v1.
  `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web-a, namespace: default }
spec: { host: web.example.com, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web-b, namespace: default }
spec: { host: web.example.com, subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }] }
`;

const CLEAN =
  se('web', 'default', 'web.example.com', '{ number: 8000, name: http, protocol: HTTP }', '  addresses: [10.9.0.1]\n') +
  se('web2', 'default', 'web2.example.com', '{ number: 8000, name: http, protocol: HTTP }', '  addresses: [10.9.0.2]\n') +
  se('db-a', 'default', 'db-a.example.com', '{ number: 8001, name: tcp, protocol: TCP }') +
  se('tcp-a', 'default', 'tcp-a.example.com', '{ number: 9000, name: tcp, protocol: TCP }', '  addresses: [10.9.1.1]\n') +
  se('tcp-b', 'default', 'tcp-b.example.com', '{ number: 9000, name: tcp, protocol: TCP }', '  addresses: [10.9.1.2]\n') +
  se('inb-http', 'default', 'inb-http.example.com', '{ number: 7000, name: http, protocol: HTTP }', '', '[{ address: 127.0.0.1, ports: { http: 17000 } }]') +
  se('inb-tcp', 'default', 'inb-tcp.example.com', '{ number: 7001, name: tcp, protocol: TCP }', '', '[{ address: 127.0.0.1, ports: { tcp: 17001 } }]') +
  se('dup', 'default', 'dup.example.com', '{ number: 80, name: http, protocol: HTTP }') +
  `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web-a, namespace: default }
spec: { host: web.example.com, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web-b, namespace: default }
spec: { host: web.example.com, subsets: [{ name: v2, labels: { version: v2 } }] }
`;

const GAUGES = [
  'pilot_conflict_inbound_listener',
  'pilot_conflict_outbound_listener_tcp_over_current_tcp',
  'pilot_conflict_outbound_listener_tcp_over_current_http',
  'pilot_conflict_outbound_listener_http_over_current_tcp',
  'pilot_duplicate_envoy_clusters',
  'pilot_vservice_dup_domain',
  'pilot_destrule_subsets',
];

function values(metrics: string): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  for (const name of GAUGES) {
    const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
    out[name] = line === undefined ? undefined : Number(line.slice(name.length + 1));
  }
  return out;
}


test('push status gauges: one case of each conflict counted per push, all 0 once the config is fixed', async (t) => {
  const { plane, client, dir, scrape: text } = await startPlaneWithClient(t, CONFLICTS, 200);
  const scrape = async () => values(await text());
  let last: Record<string, number | undefined> = {};

  // Before any proxy: the push context's own cases (duplicate subsets) and zeros for what generation finds.
  last = await scrape();
  assert.equal(last['pilot_destrule_subsets'], 1);
  assert.equal(last['pilot_conflict_outbound_listener_tcp_over_current_tcp'], 0);

  client.subscribe(CLUSTER, WILDCARD);
  client.subscribe(LISTENER, WILDCARD);
  client.subscribe(ROUTE_CONFIGURATION, WILDCARD);
  const expected = {
    pilot_conflict_inbound_listener: 1,
    pilot_conflict_outbound_listener_tcp_over_current_tcp: 1,
    pilot_conflict_outbound_listener_tcp_over_current_http: 1,
    // Trellis builds HTTP chains first, so HTTP never arrives over a TCP chain: always 0 (reported the other way round).
    pilot_conflict_outbound_listener_http_over_current_tcp: 0,
    pilot_duplicate_envoy_clusters: 1,
    pilot_vservice_dup_domain: 1,
    pilot_destrule_subsets: 1,
  };
  await pollUntil('every conflict counted', async () => {
    last = await scrape();
    return JSON.stringify(last) === JSON.stringify(expected);
  }, { tries: 300, intervalMs: 20, last: () => last });
  // Which listener, cluster, host or proxy: istiod's /debug/push_status.
  const pushStatus = (await (await fetch(`http://127.0.0.1:${plane.monitoringPort}/debug/push_status`)).json()) as { status: Record<string, Record<string, { proxy: string; message: string }>> };
  const keys = Object.fromEntries(Object.entries(pushStatus.status).map(([metric, entries]) => [metric, Object.keys(entries)]));
  assert.deepEqual(keys, {
    pilot_conflict_inbound_listener: ['sidecar~127.0.0.1~client.default~default.svc.cluster.local'],
    pilot_conflict_outbound_listener_tcp_over_current_tcp: ['0.0.0.0_9000'],
    pilot_conflict_outbound_listener_tcp_over_current_http: ['0.0.0.0_8000'],
    pilot_duplicate_envoy_clusters: ['outbound|80||dup.example.com'],
    pilot_vservice_dup_domain: ['web2.example.com:8000'],
    pilot_destrule_subsets: ['web.example.com'],
  }, JSON.stringify(pushStatus, null, 1));
  assert.match(pushStatus.status['pilot_conflict_inbound_listener']!['sidecar~127.0.0.1~client.default~default.svc.cluster.local']!.message, /Conflicting inbound listener:17000/);

  // The fixed config: a new push context starts from nothing and generation finds nothing.
  writeFileSync(join(dir, 'config.yaml'), CLEAN);
  const zeros = Object.fromEntries(GAUGES.map((g) => [g, 0]));
  await pollUntil('every gauge back to 0', async () => {
    last = await scrape();
    return JSON.stringify(last) === JSON.stringify(zeros) && client.resources(CLUSTER).has('outbound|8001||db-a.example.com');
  }, { tries: 300, intervalMs: 20, last: () => last });
});
