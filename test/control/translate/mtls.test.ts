// mTLS as generated for sidecars and clients: inbound chains per PeerAuthentication mode (mesh, namespace, workload, port), the
// DownstreamTlsContext, auto mTLS endpoint metadata and transport socket matches, DestinationRule ISTIO_MUTUAL, and push types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { MemoryConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../src/control/registry/index.js';
import { buildPushContext, type PushContext } from '../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import { proxyFromNode, type Proxy } from '../../../src/control/model/proxy.js';
import { proxyClusters, proxyListeners, edsGenerator, LOCAL_INBOUND_PORTS_METADATA } from '../../../src/control/translate/generators/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER } from '../../../src/xds/type-urls.js';
import { doc, resources } from '../support.js';

type Listener = envoy.config.listener.v3.Listener;
type FilterChain = envoy.config.listener.v3.FilterChain;
type Cluster = envoy.config.cluster.v3.Cluster;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
type UpstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;

const ISTIO_ALPNS = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];

/** web (HTTP service port 80 → workload port 9080, TCP 7000) at 10.0.0.5 in `default`; api in `shop` with three workloads. */
const WORLD = [
  doc('ServiceEntry', 'web', `hosts: [web.default.svc.cluster.local]
location: MESH_INTERNAL
resolution: STATIC
ports: [{number: 80, name: http, protocol: HTTP, targetPort: 9080}, {number: 7000, name: tcp, protocol: TCP}]
workloadSelector: {labels: {app: web}}`),
  doc('WorkloadEntry', 'web-v1', 'address: 10.0.0.5\nlabels: {app: web, version: v1}\nserviceAccount: web'),
  doc('ServiceEntry', 'api', `hosts: [api.shop.svc.cluster.local]
location: MESH_INTERNAL
resolution: STATIC
ports: [{number: 8080, name: http, protocol: HTTP}]
workloadSelector: {labels: {app: api}}`, 'shop'),
  doc('WorkloadEntry', 'api-v1', 'address: 10.1.0.1\nlabels: {app: api, version: v1}\nserviceAccount: api', 'shop'),
  doc('WorkloadEntry', 'api-v2', 'address: 10.1.0.2\nlabels: {app: api, version: v2}\nserviceAccount: api', 'shop'),
  // No sidecar: auto mTLS must never send it mTLS.
  doc('WorkloadEntry', 'api-legacy', 'address: 10.1.0.3\nlabels: {app: api, version: legacy, security.istio.io/tlsMode: disabled}', 'shop'),
].join('');

function peerAuthentication(name: string, namespace: string, spec: string): string {
  return doc('PeerAuthentication', name, spec, namespace).replace('networking.istio.io/v1', 'security.istio.io/v1');
}

function snapshot(extra = '', mesh = DEFAULT_MESH_CONFIG): PushContext {
  const store = new MemoryConfigStore();
  store.set(...resources(WORLD + extra));
  return buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh });
}

function sidecar(ip: string, namespace: string, workload: string, labels: Record<string, string>, metadata: Record<string, string> = {}): Proxy {
  const fields: Record<string, NonNullable<NonNullable<envoy.config.core.v3.Node['metadata']>['fields']>[string]> = {
    NAMESPACE: { string_value: namespace },
    WORKLOAD_NAME: { string_value: workload },
    LABELS: { struct_value: { fields: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, { string_value: v }])) } },
  };
  for (const [k, v] of Object.entries(metadata)) fields[k] = { string_value: v };
  return proxyFromNode({ id: `sidecar~${ip}~${workload}-1.${namespace}~${namespace}.svc.cluster.local`, metadata: { fields } });
}

const web = () => sidecar('10.0.0.5', 'default', 'web-v1', { app: 'web', version: 'v1' });
const client = () => sidecar('10.9.0.1', 'client', 'sleep', { app: 'sleep' });

function virtualInbound(push: PushContext, proxy = web()): Listener {
  const l = proxyListeners(proxy, push).find((x) => x.name === 'virtualInbound');
  assert.ok(l, 'virtualInbound');
  return l;
}

function alpnKind(alpn: readonly string[] | undefined): string {
  if (!alpn) return '';
  return alpn.every((p) => p.startsWith('istio')) ? 'istio-alpn' : 'http-alpn';
}

/** `port transport [alpn?] tls|plain` per chain of a port: what matches and whether it terminates mTLS. */
function chainsOf(listener: Listener, port: number | 'passthrough'): string[] {
  return (listener.filter_chains ?? [])
    .filter((c) => (port === 'passthrough'
      ? c.name!.startsWith('virtualInbound') && c.name !== 'virtualInbound-blackhole' && c.filter_chain_match?.destination_port === undefined
      : c.filter_chain_match?.destination_port?.value === port))
    .map((c) => [
      c.filter_chain_match?.transport_protocol ?? '-',
      alpnKind(c.filter_chain_match?.application_protocols),
      c.transport_socket ? 'mtls' : 'no-tls-termination',
    ].filter(Boolean).join(' '));
}

const STRICT_HTTP = ['tls mtls'];
const PERMISSIVE_HTTP = ['tls istio-alpn mtls', 'raw_buffer no-tls-termination'];
const PERMISSIVE_TCP = [...PERMISSIVE_HTTP, 'tls no-tls-termination'];
const PLAINTEXT = ['raw_buffer no-tls-termination'];
/** Passthrough chains: HTTP (by ALPN) then TCP. */
const PASSTHROUGH_PERMISSIVE = ['tls istio-alpn mtls', 'raw_buffer http-alpn no-tls-termination', ...PERMISSIVE_TCP];
const PASSTHROUGH_STRICT = ['tls istio-alpn mtls', 'tls mtls'];

test('no PeerAuthentication: PERMISSIVE on every port and on passthrough', () => {
  const l = virtualInbound(snapshot());
  assert.deepEqual(chainsOf(l, 9080), PERMISSIVE_HTTP, 'the HTTP workload port (service port 80, targetPort 9080)');
  assert.deepEqual(chainsOf(l, 7000), PERMISSIVE_TCP, 'TCP: TLS without an Istio ALPN passes through to the app');
  assert.deepEqual(chainsOf(l, 'passthrough'), PASSTHROUGH_PERMISSIVE);
  const mtls = l.filter_chains!.find((c) => c.filter_chain_match?.destination_port?.value === 9080 && c.transport_socket)!;
  assert.deepEqual(mtls.filter_chain_match?.application_protocols, ISTIO_ALPNS);
});

test('mesh-wide STRICT: one mTLS chain per port, passthrough too; plaintext matches nothing', () => {
  const l = virtualInbound(snapshot(peerAuthentication('default', 'istio-system', 'mtls: {mode: STRICT}')));
  assert.deepEqual(chainsOf(l, 9080), STRICT_HTTP);
  assert.deepEqual(chainsOf(l, 7000), STRICT_HTTP);
  assert.deepEqual(chainsOf(l, 'passthrough'), PASSTHROUGH_STRICT);
  assert.ok(!l.filter_chains!.some((c) => c.filter_chain_match?.transport_protocol === 'raw_buffer'), 'no chain takes plaintext');
});

test('namespace DISABLE overrides mesh STRICT; a workload policy overrides its namespace; another namespace is untouched', () => {
  const mesh = peerAuthentication('default', 'istio-system', 'mtls: {mode: STRICT}');
  const ns = peerAuthentication('default', 'default', 'mtls: {mode: DISABLE}');
  assert.deepEqual(chainsOf(virtualInbound(snapshot(mesh + ns)), 9080), PLAINTEXT);
  const workload = peerAuthentication('web', 'default', 'selector: {matchLabels: {app: web}}\nmtls: {mode: PERMISSIVE}');
  assert.deepEqual(chainsOf(virtualInbound(snapshot(mesh + ns + workload)), 9080), PERMISSIVE_HTTP);
  const otherNs = peerAuthentication('default', 'shop', 'mtls: {mode: DISABLE}');
  assert.deepEqual(chainsOf(virtualInbound(snapshot(mesh + otherNs)), 9080), STRICT_HTTP);
});

test('portLevelMtls by workload port: 7000 DISABLE under a STRICT workload; the service port (80) and other undeclared ports get passthrough chains of their own', () => {
  const push = snapshot(peerAuthentication('web', 'default', `selector: {matchLabels: {app: web}}
mtls: {mode: STRICT}
portLevelMtls: {"7000": {mode: DISABLE}, "80": {mode: DISABLE}, "9999": {mode: PERMISSIVE}}`));
  const l = virtualInbound(push);
  assert.deepEqual(chainsOf(l, 7000), PLAINTEXT);
  assert.deepEqual(chainsOf(l, 9080), STRICT_HTTP);
  // 80 is a service port, not a workload port: like any undeclared port it passes through (to nothing listening), in its mode.
  const port80 = l.filter_chains!.filter((c) => c.filter_chain_match?.destination_port?.value === 80);
  assert.deepEqual(port80.map((c) => c.name), ['virtualInbound-catchall-http-port-80', 'virtualInbound-port-80']);
  assert.deepEqual(chainsOf(l, 80), ['raw_buffer http-alpn no-tls-termination', ...PLAINTEXT]);
  const tcpProxy = unpackAny<{ cluster?: string }>(port80[1]!.filters!.at(-1)!.typed_config!, 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy');
  assert.equal(tcpProxy.cluster, 'InboundPassthroughClusterIpv4');
  const port9999 = l.filter_chains!.filter((c) => c.filter_chain_match?.destination_port?.value === 9999);
  assert.deepEqual(port9999.map((c) => c.name), [
    'virtualInbound-catchall-http-port-9999', 'virtualInbound-catchall-http-port-9999-plaintext',
    'virtualInbound-port-9999', 'virtualInbound-port-9999-plaintext', 'virtualInbound-port-9999-tls-passthrough',
  ]);
  assert.ok(port9999.every((c) => c.filter_chain_match?.prefix_ranges === undefined));
  assert.deepEqual(chainsOf(l, 'passthrough'), PASSTHROUGH_STRICT, 'the workload-wide mode for every other port');
  // Chain names are distinct (the LDS validation refuses duplicates).
  const names = l.filter_chains!.map((c) => c.name);
  assert.equal(new Set(names).size, names.length);
});

test('the DownstreamTlsContext: workload cert and root over sds-grpc, client certificate required, trust-domain SPIFFE SAN, Istio ciphers and ALPN', () => {
  const mesh = { ...DEFAULT_MESH_CONFIG, trustDomain: 'example.org' };
  const l = virtualInbound(snapshot(peerAuthentication('default', 'istio-system', 'mtls: {mode: STRICT}'), mesh));
  const chain = l.filter_chains!.find((c) => c.filter_chain_match?.destination_port?.value === 9080)!;
  assert.equal(chain.transport_socket?.name, 'envoy.transport_sockets.tls');
  const tls = unpackAny<DownstreamTlsContext>(chain.transport_socket!.typed_config!, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext');
  const sdsGrpc = {
    api_config_source: { api_type: 'GRPC', set_node_on_first_message_only: true, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
    initial_fetch_timeout: {},
    resource_api_version: 'V3',
  };
  assert.deepEqual(tls, {
    common_tls_context: {
      tls_params: {
        tls_minimum_protocol_version: 'TLSv1_2',
        tls_maximum_protocol_version: 'TLSv1_3',
        cipher_suites: ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-GCM-SHA256'],
      },
      alpn_protocols: ['h2', 'http/1.1'],
      tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: sdsGrpc }],
      combined_validation_context: {
        default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://example.org/' } }] },
        validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: sdsGrpc },
      },
    },
    require_client_certificate: { value: true },
  });
});

test('local sidecar: the bound 127.0.0.1:<endpoint port> listener gets the same chains, without destination_port, with a TLS inspector', () => {
  const local = sidecar('10.0.0.5', 'default', 'web-v1', { app: 'web', version: 'v1' }, { [LOCAL_INBOUND_PORTS_METADATA]: '9080=19080,7000=17000' });
  const strict = proxyListeners(local, snapshot(peerAuthentication('default', 'default', 'mtls: {mode: STRICT}')));
  const http = strict.find((l) => l.name === '127.0.0.1_9080')!;
  assert.deepEqual(http.filter_chains?.map((c) => c.filter_chain_match), [{ transport_protocol: 'tls' }]);
  assert.ok(http.filter_chains![0]!.transport_socket);
  assert.deepEqual(http.listener_filters?.map((f) => f.name), ['envoy.filters.listener.tls_inspector']);
  assert.equal(http.continue_on_listener_filters_timeout, true);

  const permissive = proxyListeners(local, snapshot());
  const tcp = permissive.find((l) => l.name === '127.0.0.1_7000')!;
  assert.deepEqual(tcp.filter_chains?.map((c) => c.filter_chain_match), [
    { transport_protocol: 'tls', application_protocols: ISTIO_ALPNS },
    { transport_protocol: 'raw_buffer' },
    { transport_protocol: 'tls' },
  ]);

  const disabled = proxyListeners(local, snapshot(peerAuthentication('default', 'default', 'mtls: {mode: DISABLE}'))).find((l) => l.name === '127.0.0.1_9080')!;
  assert.deepEqual(disabled.filter_chains?.map((c) => c.filter_chain_match), [{ transport_protocol: 'raw_buffer' }]);
  assert.equal(disabled.listener_filters, undefined, 'no TLS chain, no TLS inspector');
});

test('a PERMISSIVE workload whose entry says it has no mesh certificate (tlsMode: disabled) takes plaintext only; STRICT keeps refusing plaintext', () => {
  const noCert = doc('WorkloadEntry', 'web-v1', 'address: 10.0.0.5\nlabels: {app: web, version: v1, security.istio.io/tlsMode: disabled}\nserviceAccount: web');
  const store = new MemoryConfigStore();
  store.set(...resources(WORLD));
  store.set(...resources(noCert));
  const permissive = buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: DEFAULT_MESH_CONFIG });
  assert.deepEqual(chainsOf(virtualInbound(permissive), 9080), PLAINTEXT);
  store.set(...resources(peerAuthentication('default', 'default', 'mtls: {mode: STRICT}')));
  const strict = buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: DEFAULT_MESH_CONFIG });
  assert.deepEqual(chainsOf(virtualInbound(strict), 9080), STRICT_HTTP);
});

function cluster(push: PushContext, name: string, proxy = client()): Cluster {
  const c = proxyClusters(proxy, push).find((x) => x.name === name);
  assert.ok(c, name);
  return c;
}

function endpoints(push: PushContext, name: string, proxy = client()): Record<string, boolean> {
  const cla = edsGenerator.generate(proxy, push, { full: true, configsUpdated: [], reasons: ['test'], start: 0 }).find((r) => r.name === name)!.resource as ClusterLoadAssignment;
  const out: Record<string, boolean> = {};
  for (const group of cla.endpoints ?? []) {
    for (const ep of group.lb_endpoints ?? []) {
      const match = ep.metadata?.filter_metadata?.['envoy.transport_socket_match'];
      out[ep.endpoint!.address!.socket_address!.address!] = match?.fields?.['tlsMode']?.string_value === 'istio';
    }
  }
  return out;
}

const API = 'outbound|8080||api.shop.svc.cluster.local';

test('auto mTLS: transport socket matches on the cluster, tlsMode:istio only on endpoints with a sidecar whose PeerAuthentication allows mTLS', () => {
  const none = snapshot();
  assert.deepEqual(cluster(none, API).transport_socket_matches?.map((m) => m.name), ['tlsMode-istio', 'tlsMode-disabled']);
  assert.deepEqual(endpoints(none, API), { '10.1.0.1': true, '10.1.0.2': true, '10.1.0.3': false });

  // A workload policy of the destination (v2 DISABLE) and a port-level DISABLE (v1, port 8080) drop the endpoint metadata.
  const v2 = peerAuthentication('api-v2', 'shop', 'selector: {matchLabels: {version: v2}}\nmtls: {mode: DISABLE}');
  assert.deepEqual(endpoints(snapshot(v2), API), { '10.1.0.1': true, '10.1.0.2': false, '10.1.0.3': false });
  const v1Port = peerAuthentication('api-v1', 'shop', 'selector: {matchLabels: {version: v1}}\nmtls: {mode: STRICT}\nportLevelMtls: {"8080": {mode: DISABLE}}');
  assert.deepEqual(endpoints(snapshot(v1Port), API), { '10.1.0.1': false, '10.1.0.2': true, '10.1.0.3': false });
  const otherPort = peerAuthentication('api-v1', 'shop', 'selector: {matchLabels: {version: v1}}\nportLevelMtls: {"9999": {mode: DISABLE}}');
  assert.deepEqual(endpoints(snapshot(otherPort), API), { '10.1.0.1': true, '10.1.0.2': true, '10.1.0.3': false });

  // The destination namespace DISABLE: clients infer the service is plaintext and build no TLS at all.
  const nsDisable = snapshot(peerAuthentication('default', 'shop', 'mtls: {mode: DISABLE}'));
  assert.equal(cluster(nsDisable, API).transport_socket_matches, undefined);
  assert.equal(cluster(nsDisable, API).transport_socket, undefined);
  assert.deepEqual(endpoints(nsDisable, API), { '10.1.0.1': false, '10.1.0.2': false, '10.1.0.3': false });
  // The client's own namespace policy says nothing about how it reaches shop.
  assert.ok(cluster(snapshot(peerAuthentication('default', 'client', 'mtls: {mode: DISABLE}')), API).transport_socket_matches);
});

test('DestinationRule ISTIO_MUTUAL is a plain transport socket (every endpoint), DISABLE none, and neither depends on endpoint metadata', () => {
  const dr = (mode: string) => doc('DestinationRule', 'api', `host: api.shop.svc.cluster.local\ntrafficPolicy: {tls: {mode: ${mode}}}`, 'shop');
  const mutual = cluster(snapshot(dr('ISTIO_MUTUAL')), API);
  assert.equal(mutual.transport_socket_matches, undefined);
  const tls = unpackAny<UpstreamTlsContext>(mutual.transport_socket!.typed_config!, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
  assert.equal(tls.sni, 'outbound_.8080_._.api.shop.svc.cluster.local');
  assert.deepEqual(tls.common_tls_context?.combined_validation_context?.default_validation_context, { match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/shop/sa/api' }] });
  assert.equal(tls.common_tls_context?.tls_certificate_sds_secret_configs?.[0]?.sds_config?.api_config_source?.grpc_services?.[0]?.envoy_grpc?.cluster_name, 'sds-grpc');
  const disabled = snapshot(dr('DISABLE'));
  assert.equal(cluster(disabled, API).transport_socket, undefined);
  assert.equal(cluster(disabled, API).transport_socket_matches, undefined);
  assert.deepEqual(endpoints(disabled, API), { '10.1.0.1': false, '10.1.0.2': false, '10.1.0.3': false });
});

test('push types: a PeerAuthentication change reaches the workloads it selects (LDS) and the clients of its namespace (CDS, EDS)', () => {
  const before = snapshot();
  const after = snapshot(peerAuthentication('api-v2', 'shop', 'selector: {matchLabels: {version: v2}}\nmtls: {mode: DISABLE}'));
  const request = { full: true, configsUpdated: [{ kind: 'PeerAuthentication' as const, namespace: 'shop', name: 'api-v2' }], reasons: ['test'], start: 0 };
  const types = [...after.pushTypes(client(), request, before)].sort();
  assert.deepEqual(types, [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER].sort());
  const api = sidecar('10.1.0.2', 'shop', 'api-v2', { app: 'api', version: 'v2' });
  assert.ok(after.pushTypes(api, request, before).has(LISTENER));
  // A proxy that cannot see shop's services and is not in shop: nothing.
  const isolated = snapshot(doc('Sidecar', 'default', 'egress: [{hosts: ["./*"]}]', 'client'));
  const isolatedAfter = snapshot(doc('Sidecar', 'default', 'egress: [{hosts: ["./*"]}]', 'client') + peerAuthentication('api-v2', 'shop', 'selector: {matchLabels: {version: v2}}\nmtls: {mode: DISABLE}'));
  assert.equal(isolatedAfter.pushTypes(client(), request, isolated).size, 0);
});

test('auto mTLS needs a sidecar endpoint on the port: a service whose endpoints all lack one gets no mTLS socket (no `default` reference), and CDS is pushed when that changes', () => {
  const legacyOnly = [
    doc('ServiceEntry', 'old', `hosts: [old.shop.svc.cluster.local]
location: MESH_INTERNAL
resolution: STATIC
ports: [{number: 8080, name: http, protocol: HTTP}]
workloadSelector: {labels: {app: old}}`, 'shop'),
    doc('WorkloadEntry', 'old-1', 'address: 10.2.0.1\nlabels: {app: old, security.istio.io/tlsMode: disabled}', 'shop'),
  ].join('');
  const before = snapshot(legacyOnly);
  const old = cluster(before, 'outbound|8080||old.shop.svc.cluster.local');
  assert.equal(old.transport_socket_matches, undefined);
  assert.equal(old.transport_socket, undefined);
  const after = snapshot(legacyOnly + doc('WorkloadEntry', 'old-2', 'address: 10.2.0.2\nlabels: {app: old}\nserviceAccount: old', 'shop'));
  assert.deepEqual(cluster(after, 'outbound|8080||old.shop.svc.cluster.local').transport_socket_matches?.map((m) => m.name), ['tlsMode-istio', 'tlsMode-disabled']);
  const endpointsChanged = { full: false, configsUpdated: [{ kind: 'Endpoints' as const, namespace: 'shop', name: 'old.shop.svc.cluster.local' }], reasons: ['test'], start: 0 };
  assert.deepEqual([...after.pushTypes(client(), endpointsChanged, before)].sort(), [CLUSTER, CLUSTER_LOAD_ASSIGNMENT].sort());
  // An endpoint change that keeps a sidecar endpoint is EDS only.
  const more = snapshot(legacyOnly + doc('WorkloadEntry', 'old-2', 'address: 10.2.0.2\nlabels: {app: old}\nserviceAccount: old', 'shop') + doc('WorkloadEntry', 'old-3', 'address: 10.2.0.3\nlabels: {app: old}\nserviceAccount: old', 'shop'));
  assert.deepEqual([...more.pushTypes(client(), endpointsChanged, after)], [CLUSTER_LOAD_ASSIGNMENT]);
});
