// Where the security filters land: before fault/CORS/router in inbound and gateway connection managers, before tcp_proxy on
// TCP and passthrough chains, with the push, proxy, workload port and isGateway they were asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { MemoryConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../src/control/registry/index.js';
import { buildPushContext } from '../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import { buildVirtualInboundListener, buildLocalInboundListeners } from '../../../src/control/translate/listener/index.js';
import { buildGatewayConfig } from '../../../src/control/translate/gateway/index.js';
import type { SecurityFilterProvider } from '../../../src/control/translate/common/security-filter-provider.js';
import type { SecurityFilterInput } from '../../../src/control/translate/security/inbound-filters.js';
import { serviceLookupOf } from '../../../src/control/translate/common/service-lookup.js';
import { doc, resources } from '../support.js';
import { gateway, productpage, proxy as fixtureProxy } from './bookinfo-translate-fixture.js';

type HttpConnectionManager = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type FilterChain = envoy.config.listener.v3.FilterChain;

const store = new MemoryConfigStore();
store.set(...resources(doc('ServiceEntry', 'web', `hosts: [web.default.svc.cluster.local]
location: MESH_INTERNAL
resolution: STATIC
ports: [{number: 80, name: http, protocol: HTTP, targetPort: 9080}, {number: 7000, name: tcp, protocol: TCP}]
workloadSelector: {labels: {app: web}}`) + doc('WorkloadEntry', 'web-v1', 'address: 10.0.0.5\nlabels: {app: web}\nserviceAccount: web')));
const push = buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: DEFAULT_MESH_CONFIG });
const web = fixtureProxy({ id: 'sidecar~10.0.0.5~web-v1-1.default~default.svc.cluster.local', ipAddresses: ['10.0.0.5'], labels: { app: 'web' }, workloadName: 'web-v1' });
const instances = push.instancesForProxy(web);

function recording(): { provider: SecurityFilterProvider; calls: { kind: 'http' | 'network'; input: SecurityFilterInput }[] } {
  const calls: { kind: 'http' | 'network'; input: SecurityFilterInput }[] = [];
  const filter = (name: string) => ({ name, typed_config: { type_url: 'type.googleapis.com/google.protobuf.Empty', value: new Uint8Array(0) } });
  return {
    calls,
    provider: {
      http: (input) => (calls.push({ kind: 'http', input }), [filter('test.jwt_authn'), filter('test.rbac')]),
      network: (input) => (calls.push({ kind: 'network', input }), [filter('test.network_rbac')]),
    },
  };
}

function hcmFilters(chain: FilterChain): string[] {
  assert.equal(chain.filters?.length, 1);
  const hcm = unpackAny<HttpConnectionManager>(chain.filters![0]!.typed_config!, 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  return (hcm.http_filters ?? []).map((f) => f.name!);
}

// istio.metadata_exchange leads every HCM (before the security filters), istio.stats sits just before the router, as in Istio.
const MX = 'istio.metadata_exchange';
const STANDARD = ['envoy.filters.http.fault', 'envoy.filters.http.cors', 'istio.stats', 'envoy.filters.http.router'];

test('inbound: security HTTP filters first in every HCM chain (ports and HTTP passthrough), network filters before tcp_proxy on TCP and TCP passthrough chains', () => {
  const { provider, calls } = recording();
  const l = buildVirtualInboundListener(instances, { mesh: DEFAULT_MESH_CONFIG, proxy: web, push, securityFilters: provider });
  const http = l.filter_chains!.filter((c) => c.filter_chain_match?.destination_port?.value === 9080);
  assert.equal(http.length, 2, 'PERMISSIVE: mTLS and plaintext');
  for (const chain of http) assert.deepEqual(hcmFilters(chain), [MX, 'test.jwt_authn', 'test.rbac', ...STANDARD]);
  const tcp = l.filter_chains!.filter((c) => c.filter_chain_match?.destination_port?.value === 7000 || /^virtualInbound(-plaintext|-tls-passthrough)?$/.test(c.name!));
  assert.equal(tcp.length, 6, 'PERMISSIVE TCP port and TCP passthrough: three chains each');
  const httpPassthrough = l.filter_chains!.filter((c) => c.name!.startsWith('virtualInbound-catchall-http'));
  assert.equal(httpPassthrough.length, 2);
  for (const chain of httpPassthrough) assert.deepEqual(hcmFilters(chain), [MX, 'test.jwt_authn', 'test.rbac', ...STANDARD]);
  // Istio's order: the TCP metadata exchange, the security filters, istio.stats (TCP metrics), tcp_proxy.
  for (const chain of tcp) assert.deepEqual(chain.filters?.map((f) => f.name), ['istio.metadata_exchange', 'test.network_rbac', 'istio.stats', 'envoy.filters.network.tcp_proxy']);
  const blackhole = l.filter_chains!.find((c) => c.name === 'virtualInbound-blackhole')!;
  assert.deepEqual(blackhole.filters?.map((f) => f.name), ['envoy.filters.network.tcp_proxy'], 'the loop guard needs no policy');

  const http9080 = calls.filter((c) => c.kind === 'http');
  assert.deepEqual(http9080.map((c) => [c.input.port, c.input.isGateway]), [[9080, false], [undefined, false]], 'asked once per port (the workload port), then for passthrough (no port)');
  assert.equal(http9080[0]!.input.proxy, web);
  assert.equal(http9080[0]!.input.push, push);
  assert.deepEqual(calls.filter((c) => c.kind === 'network').map((c) => c.input.port), [7000, undefined], 'the TCP port, then passthrough (no port)');
});

test('local inbound listeners get the same filters; without a push there are none (nothing to read policies from)', () => {
  const { provider } = recording();
  const [local] = buildLocalInboundListeners(instances, new Map([[9080, 19080]]), { mesh: DEFAULT_MESH_CONFIG, proxy: web, push, securityFilters: provider });
  for (const chain of local!.filter_chains!) assert.deepEqual(hcmFilters(chain), [MX, 'test.jwt_authn', 'test.rbac', ...STANDARD]);
  const bare = buildVirtualInboundListener(instances, { mesh: DEFAULT_MESH_CONFIG, proxy: web, securityFilters: provider });
  for (const chain of bare.filter_chains!.filter((c) => c.filter_chain_match?.destination_port?.value === 9080)) assert.deepEqual(hcmFilters(chain), [MX, ...STANDARD]);
});

test('gateway: every HCM starts with the security HTTP filters asked for the gateway (isGateway, no port)', () => {
  const { provider, calls } = recording();
  const ingress = fixtureProxy({ id: 'router~10.0.0.9~ingress-1.istio-system~istio-system.svc.cluster.local', type: 'router', namespace: 'istio-system', labels: { istio: 'ingressgateway' } });
  const gw = gateway('gw', {
    selector: { istio: 'ingressgateway' },
    servers: [
      { port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] },
      { port: { number: 8443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'], tls: { mode: 'SIMPLE', credentialName: 'cert' } },
    ],
  });
  const out = buildGatewayConfig(ingress, [gw], [], serviceLookupOf([productpage]), { mesh: DEFAULT_MESH_CONFIG, proxy: ingress, push, securityFilters: provider });
  assert.equal(out.listeners.length, 2);
  for (const l of out.listeners) for (const chain of l.filter_chains!) assert.deepEqual(hcmFilters(chain), [MX, 'test.jwt_authn', 'test.rbac', ...STANDARD]);
  assert.deepEqual(calls.map((c) => [c.kind, c.input.isGateway, c.input.port, c.input.proxy === ingress]), [['http', true, undefined, true]]);
});
