// istiod's standard metrics on the monitoring port's /metrics: pilot_inbound_updates, pilot_debounce_time,
// pilot_pushcontext_init_seconds, pilot_xds_config_size_bytes and pilot_eds_no_instances, read from a running control plane.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WILDCARD } from '../../../src/xds/client/index.js';
import { pollUntil, startPlaneWithClient } from '../../support/control-plane-harness.js';
import { CLUSTER, LISTENER } from '../../../src/xds/type-urls.js';

const SERVICES = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: default }
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: 19080 } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: empty, namespace: default }
spec:
  hosts: [empty.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }, { number: 81, name: http-admin, protocol: HTTP }]
  workloadSelector: { labels: { app: nobody } }
`;

const VS = (host: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: default }
spec:
  hosts: [${host}]
  http: [{ route: [{ destination: { host: echo.default.svc.cluster.local } }] }]
`;

function value(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}


test('pilot metrics: inbound updates, debounce and push-context time, config sizes by type, clusters without instances', async (t) => {
  const { plane, client, dir, scrape } = await startPlaneWithClient(t, SERVICES, 500);
  client.subscribe(CLUSTER, WILDCARD);
  client.subscribe(LISTENER, WILDCARD);
  await pollUntil('clusters', () => client.resources(CLUSTER).has('outbound|9080||echo.default.svc.cluster.local'));

  let metrics = await scrape();
  assert.match(metrics, /^# TYPE pilot_xds_config_size_bytes histogram$/m);
  // The first push of CDS and LDS was measured in bytes: something above the first bucket (1 byte).
  assert.equal(value(metrics, 'pilot_xds_config_size_bytes_count{type="cds"}'), 1);
  assert.ok(value(metrics, 'pilot_xds_config_size_bytes_sum{type="cds"}')! > 100, metrics);
  assert.equal(value(metrics, 'pilot_xds_config_size_bytes_bucket{type="cds",le="1"}'), 0);
  assert.equal(value(metrics, 'pilot_xds_config_size_bytes_bucket{type="lds",le="+Inf"}'), 1);
  // empty:80 and empty:81 select no workload yet.
  assert.equal(value(metrics, 'pilot_eds_no_instances'), 2);
  assert.match(metrics, /^# TYPE pilot_debounce_time histogram$/m);

  // Two VirtualService writes: two config updates in, one debounced push, one PushContext built.
  writeFileSync(join(dir, 'vs.yaml'), VS('echo.default.svc.cluster.local'));
  await pollUntil('the config push', async () => value(await scrape(), 'pilot_pushcontext_init_seconds_count') === 1);
  metrics = await scrape();
  assert.equal(value(metrics, 'pilot_inbound_updates{type="config"}'), 1);
  assert.equal(value(metrics, 'pilot_debounce_time_count'), 1);
  assert.ok(value(metrics, 'pilot_debounce_time_sum')! >= 0.01, 'at least the debounce quiet period');
  assert.equal(value(metrics, 'pilot_pushcontext_init_seconds_bucket{le="5"}'), 1);

  // A service without instances gains one: the gauge follows the next snapshot; the registry change counts as svc.
  writeFileSync(join(dir, 'workload.yaml'), 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: { name: nobody-1, namespace: default }\nspec: { address: 127.0.0.2, labels: { app: nobody } }\n');
  await pollUntil('no cluster without instances', async () => value(await scrape(), 'pilot_eds_no_instances') === 0);
  metrics = await scrape();
  assert.ok((value(metrics, 'pilot_inbound_updates{type="svc"}') ?? 0) + (value(metrics, 'pilot_inbound_updates{type="eds"}') ?? 0) >= 1, metrics);

  // The ADS server's expired-nonce events (test/xds/server/expired-nonce.test.ts) are counted by type.
  plane.discovery.ads.emit('expired-nonce', { streamId: 's', mode: 'sotw', nodeKey: 'n', typeUrl: CLUSTER, nonce: 'old' });
  assert.equal(value(await scrape(), 'pilot_xds_expired_nonce{type="cds"}'), 1);
});
