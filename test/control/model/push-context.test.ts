// PushContext: DestinationRule precedence, Sidecar scopes, VirtualServices by gateway and host, exportTo, instancesForProxy, push types per change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../src/control/registry/index.js';
import { buildPushContext, type PushContext } from '../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import type { Proxy } from '../../../src/control/model/proxy.js';
import type { ConfigKey, PushRequest } from '../../../src/control/model/push-request.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../../src/xds/type-urls.js';
import { doc, resources } from '../support.js';

const NS = ['default', 'shop', 'other', 'istio-system'];

function se(name: string, ns: string, extra = ''): string {
  return doc('ServiceEntry', name, `hosts: [${name}.${ns}.svc.cluster.local]
location: MESH_INTERNAL
resolution: STATIC
ports: [{number: 9080, name: http, protocol: HTTP}]
workloadSelector: {labels: {app: ${name}}}
${extra}`, ns);
}

function we(name: string, ns: string, app: string, address: string, labels = ''): string {
  return doc('WorkloadEntry', name, `address: ${address}\nlabels: {app: ${app}${labels}}\nserviceAccount: ${app}`, ns);
}

function snapshot(yaml: string): { push: PushContext; store: MemoryConfigStore; registry: ServiceEntryRegistry; rebuild: () => PushContext } {
  const store = new MemoryConfigStore();
  if (yaml.trim()) store.set(...resources(yaml));
  const registry = new ServiceEntryRegistry(store);
  const rebuild = () => buildPushContext({ store, registry, mesh: DEFAULT_MESH_CONFIG });
  return { push: rebuild(), store, registry, rebuild };
}

function proxy(ns: string, labels: Record<string, string> = {}, over: Partial<Proxy> = {}): Proxy {
  return {
    id: `sidecar~10.0.0.9~${labels.app ?? 'p'}-1.${ns}~${ns}.svc.cluster.local`, type: 'sidecar', ipAddresses: ['10.0.0.9'], podName: 'p-1',
    namespace: ns, domainSuffix: 'cluster.local', labels, serviceAccount: 'default', locality: { region: '', zone: '', subzone: '' },
    workloadName: labels.app ?? 'p', cluster: '', metadata: {}, ...over,
  };
}

function request(full: boolean, ...keys: ConfigKey[]): PushRequest {
  return { full, configsUpdated: keys, reasons: ['test'], start: 0 };
}

const base = [se('reviews', 'default'), se('ratings', 'shop'), se('secret', 'shop', 'exportTo: ["."]'), se('partner', 'shop', 'exportTo: [other]')].join('');

test('exportTo: a service exported to "." is seen only in its namespace, one exported to a namespace only there', () => {
  const { push } = snapshot(base);
  const hosts = (ns: string) => push.servicesVisibleTo(ns).map((s) => s.hostname).sort();
  assert.deepEqual(hosts('default'), ['ratings.shop.svc.cluster.local', 'reviews.default.svc.cluster.local']);
  assert.deepEqual(hosts('shop'), ['ratings.shop.svc.cluster.local', 'reviews.default.svc.cluster.local', 'secret.shop.svc.cluster.local']);
  assert.deepEqual(hosts('other'), ['partner.shop.svc.cluster.local', 'ratings.shop.svc.cluster.local', 'reviews.default.svc.cluster.local']);
  assert.equal(push.service('secret.shop.svc.cluster.local', 'default'), undefined);
  assert.equal(push.sidecarScope(proxy('default')).hasService('secret.shop.svc.cluster.local'), false);
});

test('DestinationRule precedence: proxy namespace, then service namespace (exported), then root namespace; exportTo and wildcards', () => {
  const dr = (name: string, ns: string, host: string, extra = '') => doc('DestinationRule', name, `host: ${host}\n${extra}`, ns);
  const { push } = snapshot(base + [
    dr('root-all', 'istio-system', '"*.svc.cluster.local"', 'trafficPolicy: {loadBalancer: {simple: RANDOM}}'),
    dr('ratings', 'shop', 'ratings', 'subsets: [{name: v1, labels: {version: v1}}]'),
    dr('ratings-private', 'shop', 'reviews.default.svc.cluster.local', 'exportTo: ["."]'),
    dr('ratings-for-default', 'default', 'ratings.shop.svc.cluster.local', 'subsets: [{name: mine, labels: {version: v9}}]'),
  ].join(''));
  const ratings = push.service('ratings.shop.svc.cluster.local')!;
  const reviews = push.service('reviews.default.svc.cluster.local')!;
  assert.equal(push.destinationRule(proxy('default'), ratings)?.metadata.name, 'ratings-for-default', "the proxy's namespace wins");
  assert.deepEqual(push.subsetLabels(proxy('default'), ratings, 'mine'), { version: 'v9' });
  assert.equal(push.subsetLabels(proxy('default'), ratings, 'v1'), undefined, 'the shadowed rule\'s subsets do not apply');
  assert.equal(push.destinationRule(proxy('other'), ratings)?.metadata.name, 'ratings', "then the service's namespace");
  assert.equal(push.destinationRule(proxy('other'), reviews)?.metadata.name, 'root-all', 'then the root namespace (a wildcard host)');
  assert.equal(push.destinationRule(proxy('shop'), reviews)?.metadata.name, 'ratings-private', 'a "." rule applies in its own namespace');
  assert.equal(push.destinationRule(proxy('default'), reviews)?.metadata.name, 'root-all', 'and nowhere else');
});

test('DestinationRules of one namespace for one host merge (first subset and policy win); workloadSelector rules apply to their workloads only', () => {
  const { push } = snapshot(base + [
    doc('DestinationRule', 'a', 'host: reviews\nsubsets: [{name: v1, labels: {version: v1}}]', 'default'),
    doc('DestinationRule', 'b', 'host: reviews\ntrafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\nsubsets: [{name: v1, labels: {version: x}}, {name: v2, labels: {version: v2}}]', 'default'),
    doc('DestinationRule', 'c', 'host: reviews\nworkloadSelector: {matchLabels: {app: canary}}\ntrafficPolicy: {loadBalancer: {simple: RANDOM}}', 'default'),
  ].join(''));
  const reviews = push.service('reviews.default.svc.cluster.local')!;
  const merged = push.destinationRule(proxy('default', { app: 'web' }), reviews)!;
  assert.deepEqual(merged.spec.subsets?.map((s) => `${s.name}=${s.labels?.version}`), ['v1=v1', 'v2=v2']);
  assert.equal(merged.spec.trafficPolicy?.loadBalancer?.simple, 'LEAST_REQUEST');
  assert.equal(push.destinationRule(proxy('default', { app: 'canary' }), reviews)?.metadata.name, 'c');
});

test('VirtualServices by gateway (mesh vs ns/name, short and FQDN gateway names) and by host, with short names resolved in the VirtualService namespace', () => {
  const vs = (name: string, ns: string, spec: string) => doc('VirtualService', name, spec, ns);
  const { push } = snapshot(base + [
    doc('Gateway', 'edge', 'selector: {istio: ingressgateway}\nservers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]', 'istio-system'),
    vs('mesh-only', 'default', 'hosts: [reviews]\nhttp: [{route: [{destination: {host: reviews}}]}]'),
    vs('edge', 'default', 'hosts: ["*"]\ngateways: [istio-system/edge]\nhttp: [{route: [{destination: {host: reviews}}]}]'),
    vs('both', 'shop', 'hosts: [ratings]\ngateways: [mesh, edge.istio-system.svc.cluster.local]\nhttp: [{route: [{destination: {host: ratings}}]}]'),
    vs('local-gw', 'shop', 'hosts: [ratings]\ngateways: [shop-gw]\nhttp: [{route: [{destination: {host: ratings}}]}]'),
  ].join(''));
  const names = (list: readonly { metadata: { name: string } }[]) => list.map((v) => v.metadata.name);
  assert.deepEqual(names(push.virtualServicesForGateway('mesh', 'default')), ['both', 'mesh-only']);
  assert.deepEqual(names(push.virtualServicesForGateway('istio-system/edge', 'istio-system')), ['both', 'edge']);
  assert.deepEqual(names(push.virtualServicesForGateway('shop/shop-gw', 'shop')), ['local-gw']);
  const both = push.virtualServicesForGateway('mesh', 'default').find((v) => v.metadata.name === 'both')!;
  assert.deepEqual(both.spec.hosts, ['ratings.shop.svc.cluster.local']);
  assert.equal(both.spec.http?.[0]?.route?.[0]?.destination.host, 'ratings.shop.svc.cluster.local', 'destinations resolve in the VirtualService namespace');
  assert.equal(push.virtualServiceFor(proxy('other'), 'reviews.default.svc.cluster.local')?.metadata.name, 'mesh-only');
  assert.equal(push.virtualServiceFor(proxy('other'), 'details.default.svc.cluster.local'), undefined);
});

test('several VirtualServices for one host merge in order (first wins per route); an exact host beats a wildcard', () => {
  const { push } = snapshot(base + [
    doc('VirtualService', 'b-second', 'hosts: [reviews]\nhttp: [{name: from-b, route: [{destination: {host: reviews}}]}]', 'default'),
    doc('VirtualService', 'a-first', 'hosts: [reviews.default.svc.cluster.local]\nhttp: [{name: from-a, match: [{uri: {prefix: /a}}], route: [{destination: {host: reviews}}]}]', 'default'),
    doc('VirtualService', 'wild', 'hosts: ["*.shop.svc.cluster.local"]\nhttp: [{name: wild, route: [{destination: {host: ratings.shop.svc.cluster.local}}]}]', 'default'),
  ].join(''));
  const merged = push.virtualServiceFor(proxy('default'), 'reviews.default.svc.cluster.local')!;
  assert.deepEqual(merged.spec.http?.map((r) => r.name), ['from-a', 'from-b']);
  assert.deepEqual(merged.spec.hosts, ['reviews.default.svc.cluster.local']);
  assert.equal(push.virtualServiceFor(proxy('default'), 'ratings.shop.svc.cluster.local')?.metadata.name, 'wild');
});

test('Sidecar scope: a workload-selected Sidecar beats the namespace default, which beats the root default; egress hosts filter services and VirtualServices', () => {
  const { push } = snapshot(base + se('details', 'default') + [
    doc('Sidecar', 'root', 'egress: [{hosts: ["./*"]}]', 'istio-system'),
    doc('Sidecar', 'ns-default', 'egress: [{hosts: ["shop/*"]}]', 'other'),
    doc('Sidecar', 'reviews-only', 'workloadSelector: {labels: {app: web}}\negress: [{hosts: ["default/reviews.default.svc.cluster.local"]}]', 'other'),
    doc('VirtualService', 'details-to-ratings', 'hosts: [details]\nhttp: [{route: [{destination: {host: ratings.shop.svc.cluster.local}}]}]', 'default'),
    doc('VirtualService', 'reviews', 'hosts: [reviews]\nhttp: [{route: [{destination: {host: reviews}}]}]', 'default'),
  ].join(''));
  const hosts = (p: Proxy) => push.sidecarScope(p).services.map((s) => s.hostname).sort();
  const web = proxy('other', { app: 'web' });
  assert.equal(push.sidecarScope(web).name, 'other/reviews-only');
  assert.deepEqual(hosts(web), ['reviews.default.svc.cluster.local']);
  assert.deepEqual(push.sidecarScope(web).virtualServices.map((v) => v.metadata.name), ['reviews']);
  assert.equal(push.sidecarScope(proxy('other', { app: 'x' })).name, 'other/ns-default');
  assert.deepEqual(hosts(proxy('other', { app: 'x' })), ['partner.shop.svc.cluster.local', 'ratings.shop.svc.cluster.local']);
  // The root Sidecar's "./*" means the proxy's own namespace; VirtualService destinations are added to the scope.
  assert.equal(push.sidecarScope(proxy('default')).name, 'istio-system/root');
  assert.deepEqual(hosts(proxy('default')), ['details.default.svc.cluster.local', 'ratings.shop.svc.cluster.local', 'reviews.default.svc.cluster.local']);
  assert.deepEqual(hosts(proxy('shop')), ['ratings.shop.svc.cluster.local', 'secret.shop.svc.cluster.local']);
  const gateway = proxy('other', { app: 'web' }, { type: 'router' });
  assert.equal(push.sidecarScope(gateway).name, 'default', 'Sidecar resources do not apply to gateways');
});

test('gateways select gateway proxies by labels; sidecars get none', () => {
  const { push } = snapshot(base + [
    doc('Gateway', 'ingress', 'selector: {istio: ingressgateway}\nservers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]', 'default'),
    doc('Gateway', 'egress', 'selector: {istio: egressgateway}\nservers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]', 'default'),
  ].join(''));
  const gw = proxy('istio-system', { istio: 'ingressgateway' }, { type: 'router' });
  assert.deepEqual(push.gatewaysForProxy(gw).map((g) => g.metadata.name), ['ingress']);
  assert.deepEqual(push.gatewaysForProxy(proxy('istio-system', { istio: 'ingressgateway' })), []);
});

test('security policies: root namespace ones apply mesh-wide, namespace ones by selector', () => {
  const sec = (kind: string, name: string, ns: string, spec: string) => doc(kind, name, spec, ns).replace('networking.istio.io/v1', 'security.istio.io/v1');
  const { push } = snapshot(base + [
    sec('PeerAuthentication', 'mesh', 'istio-system', 'mtls: {mode: STRICT}'),
    sec('PeerAuthentication', 'web', 'default', 'selector: {matchLabels: {app: web}}\nmtls: {mode: PERMISSIVE}'),
    sec('AuthorizationPolicy', 'deny-other', 'other', 'action: DENY\nrules: [{}]'),
  ].join(''));
  assert.deepEqual(push.peerAuthentications(proxy('default', { app: 'web' })).map((p) => p.metadata.name), ['mesh', 'web']);
  assert.deepEqual(push.peerAuthentications(proxy('default', { app: 'api' })).map((p) => p.metadata.name), ['mesh']);
  assert.deepEqual(push.authorizationPolicies(proxy('default')).map((p) => p.metadata.name), []);
  assert.deepEqual(push.authorizationPolicies(proxy('other')).map((p) => p.metadata.name), ['deny-other']);
});

test('instancesForProxy: the instances at the proxy IP in its namespace; on a shared 127.0.0.1, only its own workload', () => {
  const { push } = snapshot(base + se('details', 'default') + [
    we('reviews-v1', 'default', 'reviews', '10.0.0.9', ', version: v1'),
    we('reviews-v2', 'default', 'reviews', '127.0.0.1', ', version: v2'),
    we('details-v1', 'default', 'details', '127.0.0.1', ', version: v1'),
    we('ratings-v1', 'shop', 'ratings', '10.0.0.9'),
  ].join(''));
  assert.deepEqual(push.instancesForProxy(proxy('default', { app: 'reviews', version: 'v1' })).map((i) => `${i.hostname} ${i.source.name}`),
    ['reviews.default.svc.cluster.local reviews-v1'], 'the ratings instance at the same IP is in another namespace');
  const local = (labels: Record<string, string>, workloadName: string) => push.instancesForProxy(proxy('default', labels, { ipAddresses: ['127.0.0.1'], workloadName })).map((i) => i.source.name);
  assert.deepEqual(local({ app: 'details', version: 'v1' }, 'details-v1-abc'), ['details-v1'], 'by labels');
  assert.deepEqual(local({}, 'reviews-v2'), ['reviews-v2'], 'by WorkloadEntry name');
  assert.deepEqual(push.instancesForProxy(proxy('default', {}, { ipAddresses: ['10.9.9.9'] })), []);
  assert.deepEqual(push.instancesByHost('reviews.default.svc.cluster.local', 9080).map((i) => i.address).sort(), ['10.0.0.9', '127.0.0.1']);
  assert.deepEqual(push.serviceAccounts('reviews.default.svc.cluster.local'), ['reviews']);
});

test('push types: endpoint-only → EDS only; VirtualService → LDS/RDS; DestinationRule → CDS/EDS/LDS/RDS; ServiceEntry → all; out of scope → nothing', () => {
  const { push } = snapshot(base + [
    doc('DestinationRule', 'reviews', 'host: reviews', 'default'),
    doc('VirtualService', 'reviews', 'hosts: [reviews]\nhttp: [{route: [{destination: {host: reviews}}]}]', 'default'),
    doc('Sidecar', 'narrow', 'egress: [{hosts: ["default/*"]}]', 'other'),
    doc('Gateway', 'ingress', 'selector: {istio: ingressgateway}\nservers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]', 'default'),
  ].join(''));
  const types = (p: Proxy, r: PushRequest) => [...push.pushTypes(p, r)].map((t) => t.split('.').at(-1)).sort();
  const sidecar = proxy('default'), narrow = proxy('other');
  const gw = proxy('default', { istio: 'ingressgateway' }, { type: 'router' });
  const key = (kind: ConfigKey['kind'], name: string, namespace = 'default'): ConfigKey => ({ kind, name, namespace });

  assert.deepEqual(types(sidecar, request(false, key('Endpoints', 'reviews.default.svc.cluster.local'))), ['ClusterLoadAssignment']);
  assert.deepEqual(types(sidecar, request(false)), ['ClusterLoadAssignment']);
  assert.deepEqual(types(narrow, request(false, key('Endpoints', 'ratings.shop.svc.cluster.local', 'shop'))), [], 'outside the Sidecar scope');
  assert.deepEqual(types(sidecar, request(true, key('VirtualService', 'reviews'))), ['Listener', 'RouteConfiguration']);
  assert.deepEqual(types(sidecar, request(true, key('DestinationRule', 'reviews'))), ['Cluster', 'ClusterLoadAssignment', 'Listener', 'RouteConfiguration']);
  assert.deepEqual(types(sidecar, request(true, key('ServiceEntry', 'ratings', 'shop'))), ['Cluster', 'ClusterLoadAssignment', 'Listener', 'NameTable', 'RouteConfiguration']);
  assert.deepEqual(types(sidecar, request(true, key('ServiceEntry', 'ratings.shop.svc.cluster.local', 'shop'))).length, 5, 'a registry host key');
  assert.deepEqual(types(sidecar, request(true, key('ServiceEntry', 'ratings.shop.svc.cluster.local', ''))).length, 5, 'a host the registry deleted (no namespace left): the scope had it');
  assert.deepEqual(types(narrow, request(true, key('ServiceEntry', 'ratings.shop.svc.cluster.local', ''))), [], 'a deleted host the scope never had');
  assert.deepEqual(types(narrow, request(true, key('ServiceEntry', 'ratings', 'shop'))), []);
  assert.deepEqual(types(sidecar, request(true, key('ServiceEntry', 'secret', 'shop'))), [], 'not exported to default');
  assert.deepEqual(types(narrow, request(true, key('Sidecar', 'narrow', 'other'))), ['Cluster', 'ClusterLoadAssignment', 'Listener', 'NameTable', 'RouteConfiguration']);
  assert.deepEqual(types(sidecar, request(true, key('Sidecar', 'narrow', 'other'))), []);
  assert.deepEqual(types(sidecar, request(true, key('Gateway', 'ingress'))), [], 'gateways only for gateways');
  assert.deepEqual(types(gw, request(true, key('Gateway', 'ingress'))), ['Listener', 'RouteConfiguration']);
  assert.deepEqual(types(sidecar, request(true)).length, 6, 'a full push of everything (NDS included)');
  assert.equal(push.affects(narrow, request(true, key('DestinationRule', 'reviews'))), true, 'reviews is in default/*');
  assert.equal(push.affects(proxy('shop'), request(true, key('AuthorizationPolicy', 'x', 'other'))), false);
  assert.equal(push.affects(proxy('other'), request(true, key('AuthorizationPolicy', 'x', 'other'))), true, 'a deleted policy in the proxy namespace');
});

test('push types against the previous snapshot: a deleted DestinationRule and a VirtualService that pulls a service into a Sidecar scope', () => {
  const { push: before, store, rebuild } = snapshot(base + se('details', 'default') + [
    doc('DestinationRule', 'details', 'host: details', 'default'),
    doc('Sidecar', 'narrow', 'egress: [{hosts: ["./*"]}]', 'default'),
  ].join(''));
  const p = proxy('default');
  store.delete('DestinationRule', 'default', 'details');
  let after = rebuild();
  const dr: ConfigKey = { kind: 'DestinationRule', namespace: 'default', name: 'details' };
  assert.equal(after.affects(p, request(true, dr)), false, 'the new snapshot alone no longer knows the rule');
  assert.equal(after.affects(p, request(true, dr), before), true, 'the previous one does');

  store.set(...resources(doc('VirtualService', 'details', 'hosts: [details]\nhttp: [{route: [{destination: {host: ratings.shop.svc.cluster.local}}]}]', 'default')));
  const previous = after;
  after = rebuild();
  const types = [...after.pushTypes(p, request(true, { kind: 'VirtualService', namespace: 'default', name: 'details' }), previous)];
  assert.deepEqual(types.sort(), [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION].sort());
});
