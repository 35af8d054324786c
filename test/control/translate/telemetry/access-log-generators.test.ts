// Telemetry access logging through the LDS generator over Bookinfo: the explicit HTTP_PROXY listener (CLIENT) and the inbound chains (SERVER) of the selected workload carry the access_log; other workloads do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileConfigStore } from '../../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../../src/control/registry/index.js';
import { buildPushContext } from '../../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../../../../src/control/model/mesh-config.js';
import { parseExtensionProviders } from '../../../../src/control/model/extension-providers.js';
import { proxyFromNode, type Proxy } from '../../../../src/control/model/proxy.js';
import type { PushRequest } from '../../../../src/control/model/push-request.js';
import { createGenerators, EXPLICIT_PROXY_PORT_METADATA } from '../../../../src/control/translate/generators/index.js';
import { unpackAny } from '../../../../src/xds/codec.js';
import { LISTENER } from '../../../../src/xds/type-urls.js';
import type { envoy } from '../../../../src/xds/generated/types.js';

type Listener = envoy.config.listener.v3.Listener;
type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;

const BOOKINFO = fileURLToPath(new URL('../../../../../test/fixtures/bookinfo/', import.meta.url));
const REQUEST: PushRequest = { full: true, configsUpdated: [], reasons: ['test'], start: 0 };

function node(workload: string, app: string, extra: Record<string, string> = {}): Proxy {
  const fields: Record<string, { string_value?: string; struct_value?: { fields: Record<string, { string_value: string }> } }> = {
    NAMESPACE: { string_value: 'default' },
    WORKLOAD_NAME: { string_value: workload },
    LABELS: { struct_value: { fields: { app: { string_value: app }, version: { string_value: 'v1' } } } },
  };
  for (const [k, v] of Object.entries(extra)) fields[k] = { string_value: v };
  return proxyFromNode({ id: `sidecar~127.0.0.1~${workload}-abc.default~default.svc.cluster.local`, metadata: { fields } });
}

/** The access_log filters' expressions of every HCM of these listeners, by listener name. */
function accessLogs(listeners: readonly Listener[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const listener of listeners) {
    for (const chain of listener.filter_chains ?? []) {
      for (const filter of chain.filters ?? []) {
        if (!filter.typed_config?.type_url?.endsWith('HttpConnectionManager')) continue;
        const hcm = unpackAny<Hcm>(filter.typed_config);
        for (const log of hcm.access_log ?? []) {
          const expression = log.filter?.extension_filter?.typed_config ? unpackAny<{ expression: string }>(log.filter.extension_filter.typed_config).expression : '';
          out.set(listener.name!, [...(out.get(listener.name!) ?? []), expression]);
        }
      }
    }
  }
  return out;
}

test('LDS: a Telemetry selecting reviews logs its inbound (SERVER) and explicit outbound (CLIENT) by mode; productpage gets nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-telemetry-lds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(BOOKINFO, dir, { recursive: true });
  writeFileSync(join(dir, 'telemetry.yaml'), `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: reviews-logs, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  accessLogging:
  - match: { mode: SERVER }
    providers: [{ name: errors }]
    filter: { expression: "response.code >= 500" }
  - match: { mode: CLIENT }
    providers: [{ name: errors }]
    filter: { expression: "response.code >= 400" }
`);
  const store = new FileConfigStore({ dir, watch: false });
  await store.start();
  t.after(() => store.close());
  assert.deepEqual(store.problems(), []);
  const registry = new ServiceEntryRegistry(store);
  t.after(() => registry.close());
  const providers = parseExtensionProviders([{ name: 'errors', envoyFileAccessLog: { path: '/tmp/errors.log' } }]).providers;
  const push = buildPushContext({ store, registry, mesh: { ...DEFAULT_MESH_CONFIG, extensionProviders: providers } });
  const lds = createGenerators().get(LISTENER)!;

  const reviews = node('reviews-v1', 'reviews', { [EXPLICIT_PROXY_PORT_METADATA]: '15080' });
  const logs = accessLogs(lds.generate(reviews, push, REQUEST).map((r) => r.resource as Listener));
  assert.deepEqual(logs.get('outbound_http'), ['response.code >= 400']);
  const inbound = [...logs].filter(([name]) => name !== 'outbound_http').flatMap(([, exprs]) => exprs);
  assert.ok(inbound.length > 0 && inbound.every((e) => e === 'response.code >= 500'), JSON.stringify([...logs]));

  const productpage = node('productpage-v1', 'productpage', { [EXPLICIT_PROXY_PORT_METADATA]: '15080' });
  assert.deepEqual([...accessLogs(lds.generate(productpage, push, REQUEST).map((r) => r.resource as Listener))], []);
});
