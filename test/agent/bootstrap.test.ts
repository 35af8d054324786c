// The agent's bootstrap: Istio's node id and metadata as the control plane parses them, and a file `trellis proxy` accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { buildProxyBootstrap, proxyBootstrapYaml } from '../../src/agent/bootstrap.js';
import { proxyFromNode } from '../../src/control/model/proxy.js';
import { LOCAL_INBOUND_PORTS_METADATA, localInboundPorts } from '../../src/control/translate/generators/proxy-inputs.js';
import { fromProtoJson } from '../../src/xds/proto-json.js';

const sidecar = {
  type: 'sidecar' as const, name: 'reviews-v2', namespace: 'default', labels: { app: 'reviews', version: 'v2' }, serviceAccount: 'bookinfo-reviews',
  adminPort: 15143, xdsPort: 15100, explicitProxyPort: 15141, inboundPorts: [{ inbound: 15142, app: 15140 }],
};

test("a sidecar bootstrap's node is parsed by the control plane as that workload, in explicit and local-inbound mode", () => {
  const bootstrap = parse(proxyBootstrapYaml(sidecar)) as Record<string, unknown>;
  const node = bootstrap['node'] as { id: string; metadata: Record<string, unknown> };
  assert.equal(node.id, 'sidecar~127.0.0.1~reviews-v2.default~default.svc.cluster.local');
  // What the xDS client sends: the node as an Envoy message (metadata a Struct).
  const message = fromProtoJson<Parameters<typeof proxyFromNode>[0]>('envoy.config.core.v3.Node', node);
  assert.deepEqual(message.problems, []);
  const proxy = proxyFromNode(message.value);
  assert.equal(proxy.type, 'sidecar');
  assert.equal(proxy.workloadName, 'reviews-v2');
  assert.equal(proxy.namespace, 'default');
  assert.deepEqual(proxy.labels, { app: 'reviews', version: 'v2' });
  assert.equal(proxy.serviceAccount, 'bookinfo-reviews');
  assert.equal(proxy.metadata['TRELLIS_EXPLICIT_PROXY_PORT'], '15141');
  assert.equal(proxy.metadata[LOCAL_INBOUND_PORTS_METADATA], '15142=15140');
  assert.deepEqual([...localInboundPorts(proxy)!], [[15142, 15140]]);
});

test('a gateway bootstrap is a router node without sidecar metadata; ADS goes to the static xds-grpc cluster', () => {
  const b = buildProxyBootstrap({ type: 'router', name: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, serviceAccount: 'gw', adminPort: 1, xdsPort: 2, explicitProxyPort: 3 });
  const node = b['node'] as { id: string; metadata: Record<string, unknown> };
  assert.equal(node.id, 'router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local');
  assert.equal(node.metadata['TRELLIS_EXPLICIT_PROXY_PORT'], undefined);
  const text = JSON.stringify(b);
  assert.match(text, /"cluster_name":"xds-grpc"/);
  assert.match(text, /"port_value":2/);
});

test('with sdsPort the bootstrap has Istio\'s sds-grpc static cluster (HTTP/2, loopback), which the proxy accepts as an SDS config source; without it there is none', async () => {
  const { SDS_CLUSTER, agentSdsConfig } = await import('../../src/agent/bootstrap.js');
  const { checkBootstrap } = await import('../../src/proxy/bootstrap.js');
  const { configSource } = await import('../../src/proxy/secret-references.js');
  const secured = buildProxyBootstrap({ ...sidecar, sdsPort: 15199 });
  const parsed = checkBootstrap(secured, 'bootstrap.yaml');
  const sds = parsed.clusters.find((c) => c.name === SDS_CLUSTER);
  assert.ok(sds, 'sds-grpc cluster');
  assert.equal(sds.type, 'STATIC');
  assert.deepEqual(sds.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address, { address: '127.0.0.1', port_value: 15199 });
  assert.match(JSON.stringify(secured), /http2_protocol_options/);
  const problems: string[] = [];
  const source = configSource(fromProtoJson<NonNullable<Parameters<typeof configSource>[0]>>('envoy.config.core.v3.ConfigSource', agentSdsConfig()).value, 'sds_config', problems);
  assert.deepEqual(problems, []);
  assert.deepEqual(source, { kind: 'grpc', clusterName: SDS_CLUSTER, mode: 'sotw' });
  assert.equal(checkBootstrap(buildProxyBootstrap(sidecar), 'b.yaml').clusters.some((c) => c.name === SDS_CLUSTER), false);
});

test('the ADS stream reconnects with a 3 s backoff ceiling (retry_back_off), which the proxy reads as its xDS backoff', async () => {
  const { parseBootstrap } = await import('../../src/proxy/bootstrap.js');
  const parsed = parseBootstrap(proxyBootstrapYaml(sidecar), 'sidecar.yaml');
  assert.deepEqual(parsed.ads?.backoff, { baseMs: 500, maxMs: 3_000 });
});
