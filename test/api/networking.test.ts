// DestinationRule, ServiceEntry, WorkloadEntry, Gateway and Sidecar validation, one test per rule family.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { problems } from './helpers.js';

test('DestinationRule: load balancer simple is an enum; simple and consistentHash are one-of', () => {
  assert.deepEqual(problems('DestinationRule', 'host: reviews\ntrafficPolicy: {loadBalancer: {simple: FASTEST}}'), [
    {
      path: 'spec.trafficPolicy.loadBalancer.simple',
      message: 'unknown value "FASTEST", expected one of UNSPECIFIED, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST, LEAST_CONN',
    },
  ]);
  assert.deepEqual(
    problems('DestinationRule', 'host: reviews\ntrafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}'),
    [{ path: 'spec.trafficPolicy.loadBalancer', message: 'only one of simple, consistentHash may be set (got simple and consistentHash)' }],
  );
});

test('DestinationRule: localityLbSetting as Istio validates it (distribute xor failover, weights 1..100 summing to 100, wildcards, overlaps, failover regions, topology labels)', () => {
  const lb = (setting: string) => problems('DestinationRule', `host: reviews\ntrafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}, loadBalancer: {localityLbSetting: ${setting}}}`);
  const at = 'spec.trafficPolicy.loadBalancer.localityLbSetting';
  assert.deepEqual(lb('{enabled: true, failover: [{from: r1, to: r2}], failoverPriority: [app]}'), []);
  assert.deepEqual(lb('{distribute: [{from: r1/z1/*, to: {r1/z1/*: 80, r2/*: 20}}, {from: r2/*, to: {r2/*: 100}}]}'), []);
  assert.deepEqual(lb('{distribute: [{from: r1/*, to: {r1/*: 100}}], failover: [{from: r1, to: r2}]}'), [
    { path: at, message: "can not simultaneously specify 'distribute' and 'failover'" },
  ]);
  assert.deepEqual(lb('{distribute: [{from: r1/*, to: {r1/*: 60, r2/*: 30}}]}'), [{ path: `${at}.distribute[0].to`, message: 'total locality weight must be 100 (got 90)' }]);
  assert.deepEqual(lb('{distribute: [{from: r1/*, to: {r1/*: 0, r2/*: 100}}]}').map((p) => p.path), [`${at}.distribute[0].to["r1/*"]`]);
  assert.deepEqual(lb('{distribute: [{from: "r1/*/z", to: {"r1//z": 100}}]}').map((p) => p.message), [
    "locality r1/*/z wildcard '*' number can not exceed 1 and must be in the end",
    'locality r1//z must not contain empty region/zone/subzone info',
  ]);
  assert.deepEqual(lb('{distribute: [{from: r1/*, to: {r1/*: 100}}, {from: r1/z1, to: {r1/*: 100}}]}'), [
    { path: `${at}.distribute[1].from`, message: 'locality r1/z1 overlap with previous specified ones' },
  ]);
  // Either order, an exact repeat, a region-wide `from` after a zone; sibling zones and other regions do not overlap.
  assert.deepEqual(lb('{distribute: [{from: r1/z1, to: {r1/*: 100}}, {from: r1/*, to: {r1/*: 100}}, {from: r1/z1, to: {r1/*: 100}}, {from: r1, to: {r1/*: 100}}]}').map((p) => p.path), [
    `${at}.distribute[1].from`, `${at}.distribute[2].from`, `${at}.distribute[3].from`,
  ]);
  assert.deepEqual(lb('{distribute: [{from: r1/z1/*, to: {r1/*: 100}}, {from: r1/z2, to: {r1/*: 100}}, {from: r2/z1/s1, to: {r1/*: 100}}, {from: r2/z1/s2, to: {r1/*: 100}}]}'), []);
  assert.deepEqual(lb('{failover: [{from: r1, to: r1}, {from: r2, to: "r*"}]}'), [
    { path: `${at}.failover[0]`, message: 'locality lb failover settings must specify different regions' },
    { path: `${at}.failover[1].to`, message: "locality lb failover region should not contain '*' wildcard" },
  ]);
  assert.deepEqual(lb('{failover: [{from: r1, to: r2}], failoverPriority: [app, topology.kubernetes.io/zone]}'), [
    { path: `${at}.failoverPriority`, message: "can not simultaneously set 'failover' and topology label 'topology.kubernetes.io/zone' in 'failover_priority'" },
  ]);
  assert.deepEqual(lb('{enabled: "yes"}').map((p) => p.path), [`${at}.enabled`]);
});

test('DestinationRule: consistentHash needs exactly one hash key; cookies need name and ttl', () => {
  assert.deepEqual(
    problems('DestinationRule', `
host: reviews
trafficPolicy:
  loadBalancer:
    consistentHash: {httpHeaderName: x-user, useSourceIp: true}
portLevelSettings: []
`),
    [
      { path: 'spec.portLevelSettings', message: 'unknown field' },
      { path: 'spec.trafficPolicy.loadBalancer.consistentHash', message: 'only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName may be set (got httpHeaderName and useSourceIp)' },
    ],
  );
  assert.deepEqual(problems('DestinationRule', 'host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: user}}}}'), [
    { path: 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl', message: 'ttl required for HttpCookie' },
  ]);
  assert.deepEqual(problems('DestinationRule', 'host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {}}}'), [
    { path: 'spec.trafficPolicy.loadBalancer.consistentHash', message: 'consistentHash needs one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName' },
  ]);
});

test('DestinationRule: subset names are unique DNS-1123 labels; labels well-formed', () => {
  assert.deepEqual(
    problems('DestinationRule', `
host: reviews
subsets:
- {name: v1, labels: {version: v1}}
- {name: v1, labels: {version: v2}}
- {name: V_3, labels: {"bad key!": v3, version: "not valid!"}}
- labels: {version: v4}
`),
    [
      { path: 'spec.subsets[1].name', message: 'duplicate subset name "v1" (also spec.subsets[0])' },
      { path: 'spec.subsets[2].name', message: 'subset name "V_3" is invalid (expected a DNS-1123 label)' },
      { path: 'spec.subsets[2].labels["bad key!"]', message: 'invalid label key "bad key!" (expected name or prefix/name, alphanumerics with - _ .)' },
      { path: 'spec.subsets[2].labels.version', message: 'invalid label value "not valid!" (at most 63 alphanumerics with - _ .)' },
      { path: 'spec.subsets[3].name', message: 'subset name is required' },
    ],
  );
});

test('DestinationRule: connection pool, outlier detection, TLS and port-level settings', () => {
  assert.deepEqual(
    problems('DestinationRule', `
host: "*.example.com"
trafficPolicy:
  connectionPool:
    tcp: {maxConnections: -1, connectTimeout: 0s}
    http: {http1MaxPendingRequests: 1.5, h2UpgradePolicy: SOMETIMES}
  outlierDetection: {consecutive5xxErrors: 5, interval: 10, maxEjectionPercent: 150}
  tls: {mode: MUTUAL}
  portLevelSettings:
  - port: {number: 9080}
  - loadBalancer: {simple: ROUND_ROBIN}
`),
    [
      { path: 'spec.trafficPolicy.connectionPool.tcp.maxConnections', message: 'must be non-negative (got -1)' },
      { path: 'spec.trafficPolicy.connectionPool.tcp.connectTimeout', message: 'duration must be at least 1ms (got 0s)' },
      { path: 'spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests', message: 'expected an integer, got a number (1.5)' },
      { path: 'spec.trafficPolicy.connectionPool.http.h2UpgradePolicy', message: 'unknown value "SOMETIMES", expected one of DEFAULT, DO_NOT_UPGRADE, UPGRADE' },
      { path: 'spec.trafficPolicy.outlierDetection.interval', message: 'expected a string, got a number (10)' },
      { path: 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', message: 'percentage 150 is not in range 0..100' },
      { path: 'spec.trafficPolicy.tls.clientCertificate', message: 'client certificate required for mutual tls' },
      { path: 'spec.trafficPolicy.tls.privateKey', message: 'private key required for mutual tls' },
      { path: 'spec.trafficPolicy.portLevelSettings[0]', message: 'port traffic policy must have at least one field' },
      { path: 'spec.trafficPolicy.portLevelSettings[1].port', message: 'portLevelSettings entry must have a port number' },
    ],
  );
  assert.deepEqual(problems('DestinationRule', 'trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}'), [{ path: 'spec.host', message: 'host is required' }]);
});

test('ServiceEntry: hosts required, resolution enum, STATIC needs endpoints or a workloadSelector', () => {
  assert.deepEqual(problems('ServiceEntry', 'hosts: []\nresolution: STATIK\nports: [{number: 80, name: http}]'), [
    { path: 'spec.resolution', message: 'unknown value "STATIK", expected one of NONE, STATIC, DNS, DNS_ROUND_ROBIN' },
    { path: 'spec.hosts', message: 'service entry must have at least one host' },
  ]);
  assert.deepEqual(problems('ServiceEntry', 'hosts: [a.internal]\nresolution: STATIC\nports: [{number: 80, name: http, protocol: HTTP}]'), [
    { path: 'spec.endpoints', message: 'STATIC resolution requires endpoints or a workloadSelector' },
  ]);
  assert.deepEqual(
    problems('ServiceEntry', `
hosts: [a.internal]
location: MESH_INTERNAL
resolution: STATIC
ports: [{number: 80, name: http, protocol: HTTP}]
endpoints:
- {address: 10.0.0.1, ports: {http: 8080}, labels: {version: v1}}
- {address: a.example.com}
- {address: 10.0.0.2, ports: {grpc: 9090}}
`),
    [
      { path: 'spec.endpoints[1].address', message: '"a.example.com" is not a valid IP address (STATIC resolution needs IPs)' },
      { path: 'spec.endpoints[2].ports.grpc', message: 'endpoint port "grpc" is not defined by the service entry' },
    ],
  );
});

test('ServiceEntry: ports unique by number and name, known protocols, name required', () => {
  assert.deepEqual(
    problems('ServiceEntry', `
hosts: [api.example.com]
resolution: DNS
ports:
- {number: 443, name: https, protocol: HTTPS}
- {number: 443, name: https, protocol: TLS}
- {number: 8080, protocol: QUIC}
`),
    [
      { path: 'spec.ports[1].name', message: 'service entry port name "https" already defined (spec.ports[0])' },
      { path: 'spec.ports[1].number', message: 'service entry port 443 already defined (spec.ports[0])' },
      { path: 'spec.ports[2].protocol', message: 'unsupported protocol "QUIC", expected one of HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, HTTP_PROXY, MONGO, MYSQL, REDIS, TCP, TLS, UDP' },
      { path: 'spec.ports[2].name', message: 'port name is required' },
    ],
  );
  assert.deepEqual(problems('ServiceEntry', 'hosts: ["*", "*.example.com"]\naddresses: [10.0.0.0/8]\nresolution: DNS\nports: [{number: 5432, name: tcp, protocol: TCP}]'), [
    { path: 'spec.hosts[0]', message: 'wildcard host "*" is not allowed here' },
    { path: 'spec.addresses', message: 'CIDR addresses are allowed only for NONE/STATIC resolution types' },
    { path: 'spec.hosts[1]', message: 'hosts must be FQDN if no endpoints are provided for resolution mode DNS' },
    { path: 'spec.hosts', message: 'multiple hosts provided with non-HTTP, non-TLS ports' },
  ]);
});

test('WorkloadEntry: address required unless network is set', () => {
  assert.deepEqual(problems('WorkloadEntry', 'labels: {app: x}'), [
    { path: 'spec.address', message: 'address is required (it may be empty only when network is set)' },
  ]);
  assert.deepEqual(problems('WorkloadEntry', 'network: remote\nlabels: {app: x}'), []);
  assert.deepEqual(problems('WorkloadEntry', 'address: 127.0.0.1\nports: {http: 0}\nweight: -1\nlocality: us-east//a'), [
    { path: 'spec.ports.http', message: 'must be in the range 1..65535 (got 0)' },
    { path: 'spec.locality', message: 'locality "us-east//a" must be region, region/zone or region/zone/subzone' },
    { path: 'spec.weight', message: 'must be in the range 0..4294967295 (got -1)' },
  ]);
});

test('Gateway: servers need port, hosts and, for HTTPS, TLS credentials by mode', () => {
  assert.deepEqual(problems('Gateway', 'selector: {istio: ingressgateway}\nservers: []'), [
    { path: 'spec.servers', message: 'gateway must have at least one server' },
  ]);
  assert.deepEqual(
    problems('Gateway', `
servers:
- port: {number: 443, name: https, protocol: HTTPS}
  hosts: [shop.example.com]
  tls: {mode: SIMPLE}
- port: {number: 8443, name: https-2, protocol: HTTPS}
  hosts: [prod/shop.example.com, "bad ns/x.example.com", shop]
  tls: {mode: SIMPLE, credentialName: shop-cert}
- port: {number: 8444, name: https-3, protocol: HTTPS}
  hosts: ["*"]
- port: {number: 80, protocol: HTTP}
  hosts: ["*"]
`),
    [
      { path: 'spec.servers[0].tls.serverCertificate', message: 'SIMPLE TLS requires a server certificate (serverCertificate and privateKey, or credentialName)' },
      { path: 'spec.servers[0].tls.privateKey', message: 'SIMPLE TLS requires a private key (serverCertificate and privateKey, or credentialName)' },
      { path: 'spec.servers[1].hosts[1]', message: 'invalid namespace value "bad ns" in gateway' },
      { path: 'spec.servers[1].hosts[2]', message: 'short names (non FQDN) are not allowed: "shop"' },
      { path: 'spec.servers[2].tls', message: 'server must have TLS settings for HTTPS/TLS protocols' },
      { path: 'spec.servers[3].port.name', message: 'port name is required' },
    ],
  );
  assert.deepEqual(problems('Gateway', 'servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]', 'bad.name'), [
    { path: 'metadata.name', message: 'invalid gateway name "bad.name" (expected a DNS-1123 label, no dots)' },
  ]);
});

test('Sidecar: egress hosts are namespace/host; ingress needs a port and a well-formed default endpoint', () => {
  assert.deepEqual(
    problems('Sidecar', `
workloadSelector: {labels: {app: "*"}}
ingress:
- port: {number: 9080, name: http, protocol: HTTP}
  defaultEndpoint: 10.1.1.1:8080
egress:
- hosts: [istio-system/*, reviews.default.svc.cluster.local, "./*.example.com"]
- port: {number: 99999}
  hosts: ["*/*"]
`),
    [
      { path: 'spec.workloadSelector.labels.app', message: 'wildcard is not supported in selector: "app=*"' },
      {
        path: 'spec.ingress[0].defaultEndpoint',
        message: 'sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, or unix://filepath',
      },
      { path: 'spec.egress[0]', message: 'sidecar: the egress listener with empty port should be the last listener in the list' },
      { path: 'spec.egress[0].hosts[1]', message: 'host must be of form namespace/dnsName' },
      { path: 'spec.egress[1].port.number', message: 'must be in the range 1..65535 (got 99999)' },
    ],
  );
});
