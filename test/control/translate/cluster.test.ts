// CDS builders, golden-style on a Bookinfo-like mesh: names, types, EDS config, LB, circuit breakers, outlier detection, TLS, and codec round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResources, type DestinationRule, type ServiceEntry, type WorkloadEntry } from '../../../src/api/index.js';
import { convertNamespace } from '../../../src/control/registry/serviceentry/service-entry-conversion.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import { proxyFromNode, type Proxy } from '../../../src/control/model/proxy.js';
import type { Service, ServiceInstance, ServicePort } from '../../../src/control/model/service.js';
import {
  buildBlackHoleCluster, buildInboundClusters, buildInboundPassthroughCluster, buildOutboundClusters, buildPassthroughCluster,
  clusterTrafficPolicy, HTTP_PROTOCOL_OPTIONS_TYPE, UPSTREAM_TLS_CONTEXT_TYPE, type Cluster, type ClusterBuildContext,
} from '../../../src/control/translate/cluster/index.js';
import { decodeMessage, encodeMessage, packAny, toJson, unpackAny } from '../../../src/xds/codec.js';
import { clusterResourceType } from '../../../src/xds/client/resource-types/index.js';
import { CLUSTER } from '../../../src/xds/type-urls.js';
import type { envoy, google } from '../../../src/xds/generated/types.js';

type UpstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
type HttpProtocolOptions = envoy.extensions.upstreams.http.v3.HttpProtocolOptions;

const MAX = 4294967295;

const MESH_YAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 10.0.1.1, labels: {app: reviews, version: v1}, serviceAccount: bookinfo-reviews, locality: us-east/zone-a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: 10.0.1.2, labels: {app: reviews, version: v2}, serviceAccount: bookinfo-reviews, locality: us-east/zone-b}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3, namespace: default}
spec: {address: 10.0.1.3, labels: {app: reviews, version: v3}, serviceAccount: bookinfo-reviews, locality: us-east/zone-a}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-v1, namespace: default}
spec: {address: 10.0.2.1, labels: {app: ratings, version: v1}, serviceAccount: bookinfo-ratings}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: details, namespace: default}
spec:
  hosts: [details.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: details}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: details-v1, namespace: default}
spec: {address: 10.0.3.1, labels: {app: details, version: v1}, serviceAccount: bookinfo-details}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9090, name: grpc-api, protocol: GRPC}]
  workloadSelector: {labels: {app: productpage}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage-v1, namespace: default}
spec: {address: 10.0.4.1, ports: {http: 19080, grpc-api: 19090}, labels: {app: productpage, version: v1}, serviceAccount: bookinfo-productpage}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.org]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy-db, namespace: default}
spec:
  hosts: [db.legacy.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints:
  - {address: db-primary.legacy.example.com, labels: {role: primary}}
  - {address: db-replica.legacy.example.com, labels: {role: replica}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: passthrough, namespace: default}
spec:
  hosts: [headless.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: NONE
  ports: [{number: 3306, name: tcp, protocol: TCP}]
`;

const RULES_YAML = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 250ms
        tcpKeepalive: {probes: 5, time: 7200s, interval: 75s}
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 1000
        maxRequestsPerConnection: 10
        maxRetries: 3
        idleTimeout: 30s
    outlierDetection:
      consecutive5xxErrors: 7
      consecutiveGatewayErrors: 3
      interval: 5s
      baseEjectionTime: 1.5s
      maxEjectionPercent: 50
      minHealthPercent: 25
      splitExternalLocalOriginErrors: true
      consecutiveLocalOriginFailures: 4
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: default}
spec:
  host: details
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage, namespace: default}
spec:
  host: productpage
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: legacy-db, namespace: default}
spec:
  host: db.legacy.example.com
  subsets:
  - {name: primary, labels: {role: primary}}
  - {name: nowhere, labels: {role: none}}
`;

interface Mesh {
  services: Map<string, Service>;
  instances: Map<string, readonly ServiceInstance[]>;
  rules: Map<string, DestinationRule>;
}

function loadMesh(extraRules = ''): Mesh {
  const { resources, problems } = parseResources(MESH_YAML + '---\n' + RULES_YAML + (extraRules ? '---\n' + extraRules : ''), { source: 'cluster.test.yaml' });
  assert.deepEqual(problems, []);
  const ses = resources.filter((r): r is ServiceEntry => r.kind === 'ServiceEntry');
  const wes = resources.filter((r): r is WorkloadEntry => r.kind === 'WorkloadEntry');
  const { services, instances } = convertNamespace('default', ses, wes, 'cluster.local');
  const rules = new Map<string, DestinationRule>();
  for (const r of resources) {
    if (r.kind !== 'DestinationRule') continue;
    const dr = r as DestinationRule;
    const host = dr.spec.host!.includes('.') ? dr.spec.host! : `${dr.spec.host}.default.svc.cluster.local`;
    rules.set(host, dr);
  }
  return { services, instances, rules };
}

function sidecar(workload = 'productpage-v1', ips = '10.0.4.1'): Proxy {
  return proxyFromNode({
    id: `sidecar~${ips.split(',')[0]}~${workload}-abc.default~default.svc.cluster.local`,
    metadata: { fields: { NAMESPACE: { string_value: 'default' }, INSTANCE_IPS: { string_value: ips } } },
  });
}

function contextFor(mesh: Mesh, overrides: Partial<ClusterBuildContext> = {}): ClusterBuildContext {
  return {
    proxy: sidecar(),
    mesh: DEFAULT_MESH_CONFIG,
    instances: (service: Service, port: ServicePort) => (mesh.instances.get(service.hostname) ?? []).filter((i) => i.servicePort.number === port.number),
    ...overrides,
  };
}

function build(host: string, overrides: Partial<ClusterBuildContext> = {}, extraRules = ''): Cluster[] {
  const mesh = loadMesh(extraRules);
  const service = mesh.services.get(host);
  assert.ok(service, `no service ${host}`);
  return buildOutboundClusters(service, mesh.rules.get(host), contextFor(mesh, overrides));
}

function byName(clusters: readonly Cluster[], name: string): Cluster {
  const found = clusters.find((c) => c.name === name);
  assert.ok(found, `no cluster ${name} in ${clusters.map((c) => c.name).join(', ')}`);
  return found;
}

function istioMeta(cluster: Cluster): Record<string, unknown> {
  const fields = cluster.metadata?.filter_metadata?.['istio']?.fields ?? {};
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, plain(v)]));
}

function plain(value: google.protobuf.Value): unknown {
  if (value.string_value !== undefined) return value.string_value;
  if (value.bool_value !== undefined) return value.bool_value;
  if (value.number_value !== undefined) return value.number_value;
  if (value.list_value) return (value.list_value.values ?? []).map(plain);
  if (value.struct_value) return Object.fromEntries(Object.entries(value.struct_value.fields ?? {}).map(([k, v]) => [k, plain(v)]));
  return null;
}

function tlsOf(socket: envoy.config.core.v3.TransportSocket | undefined): UpstreamTlsContext {
  assert.ok(socket, 'expected a transport socket');
  assert.equal(socket.name, 'envoy.transport_sockets.tls');
  return unpackAny<UpstreamTlsContext>(socket.typed_config!, `type.googleapis.com/${UPSTREAM_TLS_CONTEXT_TYPE}`);
}

function httpOptionsOf(cluster: Cluster): HttpProtocolOptions {
  const any = cluster.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS_TYPE];
  assert.ok(any, `${cluster.name} has no HttpProtocolOptions`);
  return unpackAny<HttpProtocolOptions>(any, `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS_TYPE}`);
}

const DEFAULT_THRESHOLDS = { max_connections: { value: MAX }, max_pending_requests: { value: MAX }, max_requests: { value: MAX }, max_retries: { value: MAX }, track_remaining: true };

test('reviews: one cluster per port plus one per subset, EDS over ADS named after the cluster, LEAST_REQUEST with v3 overriding to ROUND_ROBIN', () => {
  const clusters = build('reviews.default.svc.cluster.local');
  assert.deepEqual(clusters.map((c) => c.name), [
    'outbound|9080||reviews.default.svc.cluster.local',
    'outbound|9080|v1|reviews.default.svc.cluster.local',
    'outbound|9080|v2|reviews.default.svc.cluster.local',
    'outbound|9080|v3|reviews.default.svc.cluster.local',
  ]);
  for (const c of clusters) {
    assert.equal(c.type, 'EDS');
    assert.deepEqual(c.eds_cluster_config, {
      service_name: c.name,
      eds_config: { ads: {}, initial_fetch_timeout: { seconds: 0, nanos: 0 }, resource_api_version: 'V3' },
    });
    assert.equal(c.load_assignment, undefined);
    assert.deepEqual(c.connect_timeout, { seconds: 10, nanos: 0 });
    assert.equal(c.alt_stat_name, `${c.name};`);
    assert.deepEqual(c.circuit_breakers, { thresholds: [DEFAULT_THRESHOLDS] });
    assert.equal(c.outlier_detection, undefined);
  }
  assert.deepEqual(clusters.map((c) => c.lb_policy), ['LEAST_REQUEST', 'LEAST_REQUEST', 'LEAST_REQUEST', 'ROUND_ROBIN']);
  assert.deepEqual(istioMeta(clusters[0]!), {
    services: [{ host: 'reviews.default.svc.cluster.local', name: 'reviews.default.svc.cluster.local', namespace: 'default' }],
    config: '/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews',
  });
  assert.equal(istioMeta(clusters[2]!)['subset'], 'v2');
  // HTTP/1.1 port, nothing to say about the protocol: no extension options at all.
  assert.equal(clusters[0]!.typed_extension_protocol_options, undefined);
});

test('auto mTLS without DestinationRule TLS: tlsMode-istio match with ISTIO_MUTUAL (SNI, SDS from the node agent over sds-grpc, ALPN, SPIFFE SANs), plaintext otherwise', () => {
  const clusters = build('reviews.default.svc.cluster.local');
  const v1 = byName(clusters, 'outbound|9080|v1|reviews.default.svc.cluster.local');
  assert.equal(v1.transport_socket, undefined);
  const [istio, disabled] = v1.transport_socket_matches ?? [];
  assert.equal(v1.transport_socket_matches?.length, 2);
  assert.equal(istio!.name, 'tlsMode-istio');
  // Istio's TCPClusterMx: tcp_proxy exchanges peer metadata over Istio mTLS.
  assert.deepEqual(v1.filters?.map((f) => [f.name, unpackAny<google.protobuf.Struct>(f.typed_config!, 'type.googleapis.com/google.protobuf.Struct').fields?.['protocol']?.string_value]), [['istio.metadata_exchange', 'istio-peer-exchange']]);
  assert.deepEqual(istio!.match, { fields: { tlsMode: { string_value: 'istio' } } });
  const tls = tlsOf(istio!.transport_socket);
  assert.equal(tls.sni, 'outbound_.9080_.v1_.reviews.default.svc.cluster.local');
  const common = tls.common_tls_context!;
  assert.deepEqual(common.tls_params, { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' });
  assert.deepEqual(common.alpn_protocols, ['istio-peer-exchange', 'istio']);
  // Istio's ConstructSdsSecretConfig. Unpacked from the Any, so zero-valued fields read back as absent: the 0s initial
  // fetch timeout is `{}`.
  const sdsGrpc = {
    api_config_source: { api_type: 'GRPC', set_node_on_first_message_only: true, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
    initial_fetch_timeout: {},
    resource_api_version: 'V3',
  };
  assert.deepEqual(common.tls_certificate_sds_secret_configs, [{ name: 'default', sds_config: sdsGrpc }]);
  assert.deepEqual(common.combined_validation_context, {
    default_validation_context: { match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }] },
    validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: sdsGrpc },
  });
  assert.equal(disabled!.name, 'tlsMode-disabled');
  assert.deepEqual(disabled!.match, {});
  assert.equal(disabled!.transport_socket?.name, 'envoy.transport_sockets.raw_buffer');
  // The default cluster's SNI has an empty subset, like Istio's.
  const main = byName(clusters, 'outbound|9080||reviews.default.svc.cluster.local');
  assert.equal(tlsOf(main.transport_socket_matches![0]!.transport_socket).sni, 'outbound_.9080_._.reviews.default.svc.cluster.local');
});

test('auto mTLS is off when the mesh disables it, PeerAuthentication says DISABLE, or the service is mesh-external; service accounts come from the context when given', () => {
  assert.equal(build('reviews.default.svc.cluster.local', { mesh: { ...DEFAULT_MESH_CONFIG, enableAutoMtls: false } })[0]!.transport_socket_matches, undefined);
  assert.equal(build('reviews.default.svc.cluster.local', { peerAuthenticationMode: () => 'DISABLE' })[0]!.transport_socket_matches, undefined);
  const strict = build('reviews.default.svc.cluster.local', { peerAuthenticationMode: () => 'STRICT', serviceAccounts: () => ['spiffe://example.org/ns/x/sa/y'] })[0]!;
  const tls = tlsOf(strict.transport_socket_matches![0]!.transport_socket);
  assert.deepEqual(tls.common_tls_context?.combined_validation_context?.default_validation_context, { match_subject_alt_names: [{ exact: 'spiffe://example.org/ns/x/sa/y' }] });
  for (const c of build('httpbin.org')) {
    assert.equal(c.transport_socket, undefined);
    assert.equal(c.transport_socket_matches, undefined);
  }
});

test('ratings: connectionPool becomes circuit breakers, connect timeout, keepalive and HTTP protocol options; outlierDetection with its durations', () => {
  const clusters = build('ratings.default.svc.cluster.local');
  assert.deepEqual(clusters.map((c) => c.name), ['outbound|9080||ratings.default.svc.cluster.local', 'outbound|9080|v1|ratings.default.svc.cluster.local']);
  for (const c of clusters) {
    assert.deepEqual(c.circuit_breakers, {
      thresholds: [{ max_connections: { value: 100 }, max_pending_requests: { value: 10 }, max_requests: { value: 1000 }, max_retries: { value: 3 }, track_remaining: true }],
    });
    assert.deepEqual(c.connect_timeout, { seconds: 0, nanos: 250_000_000 });
    assert.deepEqual(c.upstream_connection_options, { tcp_keepalive: { keepalive_probes: { value: 5 }, keepalive_time: { value: 7200 }, keepalive_interval: { value: 75 } } });
    assert.deepEqual(c.outlier_detection, {
      enforcing_success_rate: { value: 0 },
      consecutive_5xx: { value: 7 },
      enforcing_consecutive_5xx: { value: 100 },
      consecutive_gateway_failure: { value: 3 },
      enforcing_consecutive_gateway_failure: { value: 100 },
      interval: { seconds: 5, nanos: 0 },
      base_ejection_time: { seconds: 1, nanos: 500_000_000 },
      max_ejection_percent: { value: 50 },
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: { value: 4 },
      enforcing_consecutive_local_origin_failure: { value: 100 },
      enforcing_local_origin_success_rate: { value: 0 },
    });
    assert.deepEqual(c.common_lb_config, { healthy_panic_threshold: { value: 25 } });
    assert.equal(c.lb_policy, 'LEAST_REQUEST');
    const options = httpOptionsOf(c);
    assert.deepEqual(options.common_http_protocol_options, { idle_timeout: { seconds: 30 }, max_requests_per_connection: { value: 10 } });
    assert.deepEqual(options.explicit_http_config, { http_protocol_options: {} });
  }
});

test('an outlierDetection without minHealthPercent still writes a panic threshold of 0, and a zero error count disables that detector', () => {
  const [c] = build('ratings.default.svc.cluster.local', {}, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings2, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 0, interval: 100ms}
`);
  assert.deepEqual(c!.outlier_detection, { enforcing_success_rate: { value: 0 }, consecutive_5xx: { value: 0 }, enforcing_consecutive_5xx: { value: 0 }, interval: { seconds: 0, nanos: 100_000_000 } });
  assert.deepEqual(c!.common_lb_config, { healthy_panic_threshold: { value: 0 } });
});

test('details: consistentHash is RING_HASH with Envoy\'s 1024 minimum ring size; ringHash and maglev set their own sizes', () => {
  const [details] = build('details.default.svc.cluster.local');
  assert.equal(details!.lb_policy, 'RING_HASH');
  assert.deepEqual(details!.ring_hash_lb_config, { minimum_ring_size: { value: 1024 } });
  const rule = (lb: string): string => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: default}
spec:
  host: details
  trafficPolicy:
    loadBalancer: ${lb}
`;
  const [ring] = build('details.default.svc.cluster.local', {}, rule('{consistentHash: {httpCookie: {name: u, ttl: 0s}, ringHash: {minimumRingSize: 4096}}}'));
  assert.equal(ring!.lb_policy, 'RING_HASH');
  assert.deepEqual(ring!.ring_hash_lb_config, { minimum_ring_size: { value: 4096 } });
  const [maglev] = build('details.default.svc.cluster.local', {}, rule('{consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}'));
  assert.equal(maglev!.lb_policy, 'MAGLEV');
  assert.deepEqual(maglev!.maglev_lb_config, { table_size: { value: 65537 } });
  assert.equal(maglev!.ring_hash_lb_config, undefined);
  const [random] = build('details.default.svc.cluster.local', {}, rule('{simple: RANDOM, localityLbSetting: {enabled: true, failover: [{from: us-east, to: us-west}]}}'));
  assert.equal(random!.lb_policy, 'RANDOM');
  const [warm] = build('details.default.svc.cluster.local', {}, rule('{simple: ROUND_ROBIN, warmupDurationSecs: 90s}'));
  assert.deepEqual(warm!.round_robin_lb_config, { slow_start_config: { slow_start_window: { seconds: 90, nanos: 0 } } });
  const [passthrough] = build('details.default.svc.cluster.local', {}, rule('{simple: PASSTHROUGH}'));
  assert.equal(passthrough!.type, 'ORIGINAL_DST');
  assert.equal(passthrough!.lb_policy, 'CLUSTER_PROVIDED');
  assert.equal(passthrough!.eds_cluster_config, undefined);
});

test('no DestinationRule: LEAST_REQUEST (Istio\'s default), default circuit breakers, no config metadata', () => {
  const mesh = loadMesh();
  const service = mesh.services.get('reviews.default.svc.cluster.local')!;
  const clusters = buildOutboundClusters(service, undefined, contextFor(mesh));
  assert.deepEqual(clusters.map((c) => c.name), ['outbound|9080||reviews.default.svc.cluster.local']);
  assert.equal(clusters[0]!.lb_policy, 'LEAST_REQUEST');
  assert.deepEqual(clusters[0]!.circuit_breakers, { thresholds: [DEFAULT_THRESHOLDS] });
  assert.equal(istioMeta(clusters[0]!)['config'], undefined);
  assert.deepEqual(clusters[0]!.common_lb_config, {});
});

test('productpage: DestinationRule ISTIO_MUTUAL is a plain transport socket on every cluster; a GRPC port is HTTP/2 and offers h2 in ALPN', () => {
  const clusters = build('productpage.default.svc.cluster.local');
  assert.deepEqual(clusters.map((c) => c.name), [
    'outbound|9080||productpage.default.svc.cluster.local',
    'outbound|9080|v1|productpage.default.svc.cluster.local',
    'outbound|9090||productpage.default.svc.cluster.local',
    'outbound|9090|v1|productpage.default.svc.cluster.local',
  ]);
  for (const c of clusters) {
    assert.equal(c.transport_socket_matches, undefined);
    const tls = tlsOf(c.transport_socket);
    const [, port, subset] = c.name!.split('|');
    assert.equal(tls.sni, `outbound_.${port}_.${subset}_.productpage.default.svc.cluster.local`);
    assert.deepEqual(tls.common_tls_context?.combined_validation_context?.default_validation_context, {
      match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage' }],
    });
  }
  const grpc = byName(clusters, 'outbound|9090||productpage.default.svc.cluster.local');
  assert.deepEqual(tlsOf(grpc.transport_socket).common_tls_context?.alpn_protocols, ['istio-peer-exchange', 'istio', 'h2']);
  assert.deepEqual(httpOptionsOf(grpc).explicit_http_config, { http2_protocol_options: {} });
  assert.deepEqual(tlsOf(byName(clusters, 'outbound|9080||productpage.default.svc.cluster.local').transport_socket).common_tls_context?.alpn_protocols, ['istio-peer-exchange', 'istio']);
});

test('httpbin.org (DNS ServiceEntry without endpoints): STRICT_DNS to the host itself, inline load assignment, DNS options, external metadata', () => {
  const clusters = build('httpbin.org');
  assert.deepEqual(clusters.map((c) => c.name), ['outbound|80||httpbin.org', 'outbound|443||httpbin.org']);
  for (const c of clusters) {
    assert.equal(c.type, 'STRICT_DNS');
    assert.equal(c.eds_cluster_config, undefined);
    assert.equal(c.dns_lookup_family, 'V4_ONLY');
    assert.equal(c.respect_dns_ttl, true);
    assert.deepEqual(c.dns_refresh_rate, { seconds: 60, nanos: 0 });
    const port = Number(c.name!.split('|')[1]);
    assert.equal(c.load_assignment?.cluster_name, c.name);
    assert.equal(c.load_assignment?.endpoints?.length, 1);
    const [lb] = c.load_assignment!.endpoints![0]!.lb_endpoints!;
    assert.deepEqual(lb!.endpoint?.address, { socket_address: { address: 'httpbin.org', port_value: port } });
    assert.equal(istioMeta(c)['external'], true);
  }
});

test('a DNS ServiceEntry with endpoints: subset clusters carry only their labelled endpoints, and a subset matching none is left out', () => {
  const clusters = build('db.legacy.example.com');
  assert.deepEqual(clusters.map((c) => c.name), ['outbound|5432||db.legacy.example.com', 'outbound|5432|primary|db.legacy.example.com']);
  const addresses = (c: Cluster): string[] => c.load_assignment!.endpoints!.flatMap((l) => l.lb_endpoints!.map((e) => e.endpoint!.address!.socket_address!.address!));
  assert.deepEqual(addresses(clusters[0]!), ['db-primary.legacy.example.com', 'db-replica.legacy.example.com']);
  assert.deepEqual(addresses(clusters[1]!), ['db-primary.legacy.example.com']);
  // TCP port: no HTTP protocol options.
  assert.equal(clusters[0]!.typed_extension_protocol_options, undefined);
  // An IPv6-only proxy resolves AAAA records.
  const v6 = build('db.legacy.example.com', { proxy: sidecar('productpage-v1', 'fd00::1') });
  assert.equal(v6[0]!.dns_lookup_family, 'V6_ONLY');
});

test('resolution NONE: ORIGINAL_DST with CLUSTER_PROVIDED and no mTLS for a sidecar; EDS once instances are known or for a gateway', () => {
  const [c] = build('headless.default.svc.cluster.local');
  assert.equal(c!.name, 'outbound|3306||headless.default.svc.cluster.local');
  assert.equal(c!.type, 'ORIGINAL_DST');
  assert.equal(c!.lb_policy, 'CLUSTER_PROVIDED');
  assert.equal(c!.eds_cluster_config, undefined);
  assert.equal(c!.transport_socket, undefined);
  assert.equal(c!.transport_socket_matches, undefined);
  const router = proxyFromNode({ id: 'router~10.0.9.1~gw-abc.default~default.svc.cluster.local' });
  const [gw] = build('headless.default.svc.cluster.local', { proxy: router });
  assert.equal(gw!.type, 'EDS');
  assert.equal(gw!.eds_cluster_config?.service_name, gw!.name);
});

test('merge rules: portLevelSettings replace the top-level policy without inheriting it; a subset overrides field by field; subset port-level wins', () => {
  const extra = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {tcp: {maxConnections: 7}}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      outlierDetection: {consecutive5xxErrors: 2}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      connectionPool: {http: {maxRetries: 9}}
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {simple: LEAST_REQUEST}
`;
  const clusters = build('reviews.default.svc.cluster.local', {}, extra);
  const main = byName(clusters, 'outbound|9080||reviews.default.svc.cluster.local');
  assert.equal(main.lb_policy, 'ROUND_ROBIN');
  // The port-level entry has no connectionPool, so the top-level maxConnections: 7 does not apply.
  assert.deepEqual(main.circuit_breakers, { thresholds: [DEFAULT_THRESHOLDS] });
  const v1 = byName(clusters, 'outbound|9080|v1|reviews.default.svc.cluster.local');
  assert.equal(v1.lb_policy, 'ROUND_ROBIN');
  assert.deepEqual(v1.outlier_detection?.consecutive_5xx, { value: 2 });
  const v2 = byName(clusters, 'outbound|9080|v2|reviews.default.svc.cluster.local');
  assert.equal(v2.lb_policy, 'LEAST_REQUEST');
  // The subset's port-level entry replaces its own connectionPool too.
  assert.deepEqual(v2.circuit_breakers, { thresholds: [DEFAULT_THRESHOLDS] });
  assert.equal(v2.outlier_detection, undefined);
  // This rule has no v3 subset.
  assert.equal(clusters.length, 3);
  // The same merge, exported for the EDS generator.
  const mesh = loadMesh(extra);
  assert.deepEqual(clusterTrafficPolicy(mesh.rules.get('reviews.default.svc.cluster.local'), 9080, 'v1'), {
    loadBalancer: { simple: 'ROUND_ROBIN' },
    outlierDetection: { consecutive5xxErrors: 2 },
  });
});

test('TLS SIMPLE / MUTUAL / DISABLE from a DestinationRule: files, SNI and SANs, auto_sni, alpn_override metadata; credentialName needs a workloadSelector on sidecars', () => {
  const rule = (tls: string, selector = ''): string => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin.org
  ${selector}
  trafficPolicy:
    tls: ${tls}
`;
  const [simple] = build('httpbin.org', {}, rule('{mode: SIMPLE, sni: httpbin.org, subjectAltNames: [httpbin.org], caCertificates: /etc/ca.pem}'));
  const s = tlsOf(simple!.transport_socket);
  assert.equal(s.sni, 'httpbin.org');
  assert.deepEqual(s.common_tls_context?.validation_context, { match_subject_alt_names: [{ exact: 'httpbin.org' }], trusted_ca: { filename: '/etc/ca.pem' } });
  assert.equal(s.common_tls_context?.tls_certificates, undefined);
  assert.equal(istioMeta(simple!)['alpn_override'], 'false');

  const [mutual] = build('httpbin.org', {}, rule('{mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}'));
  const m = tlsOf(mutual!.transport_socket);
  assert.equal(m.sni, undefined);
  assert.deepEqual(m.common_tls_context?.tls_certificates, [{ certificate_chain: { filename: '/c.pem' }, private_key: { filename: '/k.pem' } }]);
  // No CA named: the system roots.
  assert.deepEqual(m.common_tls_context?.validation_context, { system_root_certs: {} });
  assert.deepEqual(httpOptionsOf(mutual!).upstream_http_protocol_options, { auto_sni: true, auto_san_validation: true });

  const [insecure] = build('httpbin.org', {}, rule('{mode: SIMPLE, insecureSkipVerify: true}'));
  assert.deepEqual(tlsOf(insecure!.transport_socket).common_tls_context?.validation_context, {});
  assert.deepEqual(httpOptionsOf(insecure!).upstream_http_protocol_options, { auto_sni: true });

  const [disabled] = build('reviews.default.svc.cluster.local', {}, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: DISABLE}}
`);
  assert.equal(disabled!.transport_socket, undefined);
  assert.equal(disabled!.transport_socket_matches, undefined);

  const [noSelector] = build('httpbin.org', {}, rule('{mode: SIMPLE, credentialName: httpbin-ca}'));
  assert.equal(noSelector!.transport_socket, undefined);
  const [selected] = build('httpbin.org', {}, rule('{mode: MUTUAL, credentialName: httpbin-cred}', 'workloadSelector: {labels: {app: productpage}}'));
  const cred = tlsOf(selected!.transport_socket).common_tls_context!;
  assert.deepEqual(cred.tls_certificate_sds_secret_configs, [{ name: 'kubernetes://httpbin-cred', sds_config: { ads: {}, resource_api_version: 'V3' } }]);
  assert.deepEqual(cred.combined_validation_context?.validation_context_sds_secret_config, { name: 'kubernetes://httpbin-cred-cacert', sds_config: { ads: {}, resource_api_version: 'V3' } });
});

test('protocol options: useClientProtocol uses the downstream protocol, h2UpgradePolicy UPGRADE makes HTTP/2, the mesh policy upgrades only HTTP ports', () => {
  const rule = (http: string): string => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {connectionPool: {http: ${http}}}
`;
  const [client] = build('reviews.default.svc.cluster.local', {}, rule('{useClientProtocol: true}'));
  assert.deepEqual(httpOptionsOf(client!).use_downstream_protocol_config, { http_protocol_options: {}, http2_protocol_options: {} });
  assert.equal(httpOptionsOf(client!).explicit_http_config, undefined);
  const [upgraded] = build('reviews.default.svc.cluster.local', {}, rule('{h2UpgradePolicy: UPGRADE}'));
  assert.deepEqual(httpOptionsOf(upgraded!).explicit_http_config, { http2_protocol_options: {} });
  assert.deepEqual(tlsOf(upgraded!.transport_socket_matches![0]!.transport_socket).common_tls_context?.alpn_protocols, ['istio-peer-exchange', 'istio', 'h2']);
  const meshUpgrade = { mesh: { ...DEFAULT_MESH_CONFIG, h2UpgradePolicy: 'UPGRADE' as const } };
  assert.deepEqual(httpOptionsOf(build('reviews.default.svc.cluster.local', meshUpgrade)[0]!).explicit_http_config, { http2_protocol_options: {} });
  assert.equal(build('db.legacy.example.com', meshUpgrade)[0]!.typed_extension_protocol_options, undefined);
  const [notUpgraded] = build('reviews.default.svc.cluster.local', meshUpgrade, rule('{h2UpgradePolicy: DO_NOT_UPGRADE}'));
  assert.equal(notUpgraded!.typed_extension_protocol_options, undefined);
});

test('inbound clusters: inbound|<port>|| STATIC to 127.0.0.1:<workload port>, default connection pool, services metadata; built-in clusters', () => {
  const mesh = loadMesh();
  const own = mesh.instances.get('productpage.default.svc.cluster.local')!;
  const inbound = buildInboundClusters(sidecar(), own, DEFAULT_MESH_CONFIG);
  assert.deepEqual(inbound.map((c) => c.name), ['inbound|19080||', 'inbound|19090||']);
  const [http, grpc] = inbound;
  assert.equal(http!.type, 'STATIC');
  assert.deepEqual(http!.load_assignment, {
    cluster_name: 'inbound|19080||',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 19080 } } } }] }],
  });
  assert.deepEqual(http!.connect_timeout, { seconds: 10, nanos: 0 });
  assert.deepEqual(http!.circuit_breakers, { thresholds: [DEFAULT_THRESHOLDS] });
  assert.equal(http!.lb_policy, undefined);
  assert.equal(http!.transport_socket, undefined);
  assert.equal(http!.alt_stat_name, 'inbound|19080||;');
  assert.deepEqual(istioMeta(http!)['services'], [{ host: 'productpage.default.svc.cluster.local', name: 'productpage.default.svc.cluster.local', namespace: 'default' }]);
  assert.deepEqual(httpOptionsOf(grpc!).explicit_http_config, { http2_protocol_options: {} });

  const blackhole = buildBlackHoleCluster();
  assert.deepEqual(blackhole, { name: 'BlackHoleCluster', type: 'STATIC', connect_timeout: { seconds: 10, nanos: 0 }, lb_policy: 'ROUND_ROBIN', alt_stat_name: 'BlackHoleCluster;' });
  const passthrough = buildPassthroughCluster();
  assert.equal(passthrough.name, 'PassthroughCluster');
  assert.equal(passthrough.type, 'ORIGINAL_DST');
  assert.equal(passthrough.lb_policy, 'CLUSTER_PROVIDED');
  assert.deepEqual(httpOptionsOf(passthrough), {
    common_http_protocol_options: { idle_timeout: { seconds: 300 } },
    use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
  });
  const inboundPassthrough = buildInboundPassthroughCluster();
  assert.equal(inboundPassthrough.name, 'InboundPassthroughClusterIpv4');
  assert.equal(inboundPassthrough.type, 'ORIGINAL_DST');
  assert.deepEqual(inboundPassthrough.upstream_bind_config, { source_address: { address: '127.0.0.6', port_value: 0 } });
});

test('every built cluster encodes, round-trips through the codec unchanged, and passes the xDS client\'s CDS validation', () => {
  const mesh = loadMesh();
  const context = contextFor(mesh);
  const all: Cluster[] = [];
  for (const service of mesh.services.values()) all.push(...buildOutboundClusters(service, mesh.rules.get(service.hostname), context));
  all.push(...buildInboundClusters(sidecar(), mesh.instances.get('productpage.default.svc.cluster.local')!, DEFAULT_MESH_CONFIG));
  all.push(buildBlackHoleCluster(), buildPassthroughCluster(), buildInboundPassthroughCluster());
  assert.ok(all.length >= 20, `only ${all.length} clusters`);
  const names = new Set<string>();
  for (const cluster of all) {
    assert.ok(!names.has(cluster.name!), `duplicate ${cluster.name}`);
    names.add(cluster.name!);
    const bytes = encodeMessage('envoy.config.cluster.v3.Cluster', cluster);
    const decoded = decodeMessage<Cluster>('envoy.config.cluster.v3.Cluster', bytes);
    assert.deepEqual(toJson('envoy.config.cluster.v3.Cluster', decoded), toJson('envoy.config.cluster.v3.Cluster', cluster), cluster.name);
    assert.deepEqual(encodeMessage('envoy.config.cluster.v3.Cluster', decoded), bytes, cluster.name);
    const accepted = clusterResourceType.decode(packAny('envoy.config.cluster.v3.Cluster', cluster), cluster.name!);
    assert.equal(accepted.name, cluster.name);
    assert.equal(clusterResourceType.typeUrl, CLUSTER);
  }
});

test('building is deterministic: the same input encodes to the same bytes', () => {
  const first = build('reviews.default.svc.cluster.local').map((c) => encodeMessage('envoy.config.cluster.v3.Cluster', c));
  const second = build('reviews.default.svc.cluster.local').map((c) => encodeMessage('envoy.config.cluster.v3.Cluster', c));
  assert.deepEqual(first, second);
});
