// A workload-selected Telemetry reaching captured-mode sidecars' outbound listeners (0.0.0.0_<port>), which every proxy
// of one Sidecar scope shares: the selected workload's CLIENT access log and tracing must be on its HCM, and never on
// the listeners of another workload of the same scope, whichever proxy is generated first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileConfigStore } from '../../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../../src/control/registry/index.js';
import { buildPushContext, type PushContext } from '../../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../../../../src/control/model/mesh-config.js';
import { parseExtensionProviders } from '../../../../src/control/model/extension-providers.js';
import { proxyFromNode, type Proxy } from '../../../../src/control/model/proxy.js';
import type { PushRequest } from '../../../../src/control/model/push-request.js';
import { createGenerators } from '../../../../src/control/translate/generators/index.js';
import { unpackAny } from '../../../../src/xds/codec.js';
import { LISTENER } from '../../../../src/xds/type-urls.js';
import type { envoy } from '../../../../src/xds/generated/types.js';

type Listener = envoy.config.listener.v3.Listener;
type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;

const BOOKINFO = fileURLToPath(new URL('../../../../../test/fixtures/bookinfo/', import.meta.url));
const REQUEST: PushRequest = { full: true, configsUpdated: [], reasons: ['test'], start: 0 };

function node(workload: string, app: string, version = 'v1'): Proxy {
  const fields = {
    NAMESPACE: { string_value: 'default' },
    WORKLOAD_NAME: { string_value: workload },
    LABELS: { struct_value: { fields: { app: { string_value: app }, version: { string_value: version } } } },
  };
  return proxyFromNode({ id: `sidecar~127.0.0.1~${workload}-abc.default~default.svc.cluster.local`, metadata: { fields } });
}

/** The outbound HCM of 0.0.0.0_9080 (ratings, reviews, details and productpage are HTTP on 9080): its access log filters' expressions and http filter names. */
function outbound9080(proxy: Proxy, push: PushContext): { logs: string[]; filters: string[] } {
  const listeners = createGenerators().get(LISTENER)!.generate(proxy, push, REQUEST).map((r) => r.resource as Listener);
  const listener = listeners.find((l) => l.name === '0.0.0.0_9080');
  assert.ok(listener, `no 0.0.0.0_9080 in ${listeners.map((l) => l.name).join(',')}`);
  const hcmFilter = listener.filter_chains!.flatMap((c) => c.filters ?? []).find((f) => f.typed_config?.type_url?.endsWith('HttpConnectionManager'));
  assert.ok(hcmFilter);
  const hcm = unpackAny<Hcm>(hcmFilter.typed_config!);
  return {
    logs: (hcm.access_log ?? []).map((log) => (log.filter?.extension_filter?.typed_config ? unpackAny<{ expression: string }>(log.filter.extension_filter.typed_config).expression : '')),
    filters: (hcm.http_filters ?? []).map((f) => f.name ?? ''),
  };
}

async function bookinfoPush(t: { after(fn: () => void): void }, mesh: Partial<MeshConfig> = {}): Promise<() => PushContext> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-captured-telemetry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(BOOKINFO, dir, { recursive: true });
  writeFileSync(join(dir, 'telemetry.yaml'), `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: reviews-client, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  accessLogging:
  - match: { mode: CLIENT }
    providers: [{ name: errors }]
    filter: { expression: "response.code >= 400" }
  tracing:
  - providers: [{ name: zipkin }]
    randomSamplingPercentage: 100
`);
  const store = new FileConfigStore({ dir, watch: false });
  await store.start();
  t.after(() => store.close());
  assert.deepEqual(store.problems(), []);
  const registry = new ServiceEntryRegistry(store);
  t.after(() => registry.close());
  const providers = parseExtensionProviders([
    { name: 'errors', envoyFileAccessLog: { path: '/tmp/errors.log' } },
    { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } },
  ]).providers;
  return () => buildPushContext({ store, registry, mesh: { ...DEFAULT_MESH_CONFIG, extensionProviders: providers, ...mesh } });
}

const hasTracing = (filters: readonly string[]): boolean => filters.some((f) => f.includes('tracing'));

test('captured mode: a Telemetry selecting reviews puts its CLIENT access log and tracing on reviews\' 0.0.0.0_9080, not on productpage\'s (both generation orders)', async (t) => {
  const newPush = await bookinfoPush(t);
  // Selected proxy first: the shared build must not hand reviews' telemetry to productpage.
  let push = newPush();
  const reviews = outbound9080(node('reviews-v1', 'reviews'), push);
  assert.deepEqual(reviews.logs, ['response.code >= 400']);
  assert.ok(hasTracing(reviews.filters), reviews.filters.join(','));
  const productpage = outbound9080(node('productpage-v1', 'productpage'), push);
  assert.deepEqual(productpage.logs, []);
  assert.ok(!hasTracing(productpage.filters), productpage.filters.join(','));

  // Unselected proxy first: the shared build must not withhold it from reviews.
  push = newPush();
  assert.deepEqual(outbound9080(node('productpage-v1', 'productpage'), push).logs, []);
  const again = outbound9080(node('reviews-v1', 'reviews'), push);
  assert.deepEqual(again.logs, ['response.code >= 400']);
  assert.ok(hasTracing(again.filters));
});

test('captured mode: two workloads with the same Telemetry outcome share one outbound listener object (the cache still works)', async (t) => {
  const push = (await bookinfoPush(t))();
  const lds = createGenerators().get(LISTENER)!;
  const a = lds.generate(node('ratings-v1', 'ratings'), push, REQUEST).find((r) => r.name === '0.0.0.0_9080');
  const b = lds.generate(node('details-v1', 'details'), push, REQUEST).find((r) => r.name === '0.0.0.0_9080');
  assert.ok(a && b);
  assert.equal(a.resource, b.resource);
});

/** The zipkin service name on the tracing filter of `proxy`'s 0.0.0.0_9080 HCM, and the listener object itself. */
function tracedService(proxy: Proxy, push: PushContext): { serviceName: string | undefined; listener: unknown } {
  const resource = createGenerators().get(LISTENER)!.generate(proxy, push, REQUEST).find((r) => r.name === '0.0.0.0_9080');
  assert.ok(resource);
  const hcmFilter = (resource.resource as Listener).filter_chains!.flatMap((c) => c.filters ?? []).find((f) => f.typed_config?.type_url?.endsWith('HttpConnectionManager'));
  const hcm = unpackAny<Hcm>(hcmFilter!.typed_config!);
  const tracing = hcm.http_filters?.find((f) => f.name === 'trellis.filters.http.tracing');
  if (!tracing) return { serviceName: undefined, listener: resource.resource };
  const config = unpackAny<envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing>(tracing.typed_config!);
  const struct = unpackAny<{ fields?: Record<string, { string_value?: string }> }>(config.provider!.typed_config!);
  return { serviceName: struct.fields?.['service_name']?.string_value, listener: resource.resource };
}

test('captured mode: with tracing on, the shared outbound listener is keyed by the workload the tracer names (canonical service), not only by the Telemetry', async (t) => {
  // Mesh-wide tracing (defaultProviders) with no Telemetry for ratings or details: the same (empty) Telemetry levels,
  // but each span names its own service, so the two must not share one build.
  const push = (await bookinfoPush(t, { defaultProviders: { tracing: ['zipkin'] } }))();
  const ratings = tracedService(node('ratings-v1', 'ratings'), push);
  const details = tracedService(node('details-v1', 'details'), push);
  assert.equal(ratings.serviceName, 'ratings.default');
  assert.equal(details.serviceName, 'details.default');
  assert.notEqual(ratings.listener, details.listener);
  // Two workloads of one canonical service and revision (and one Telemetry, reviews-client) still share it.
  const v1 = tracedService(node('reviews-v1', 'reviews', 'v1'), push);
  const other = tracedService(node('reviews-v1-b', 'reviews', 'v1'), push);
  assert.equal(v1.serviceName, 'reviews.default');
  assert.equal(v1.listener, other.listener);
  // Another revision is another span tag (istio.canonical_revision): its own build.
  assert.notEqual(tracedService(node('reviews-v2', 'reviews', 'v2'), push).listener, v1.listener);
});
