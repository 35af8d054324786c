// The local mesh manifest: Bookinfo's loads; each bad entry is named with its field path and left out, the rest kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadManifest, ManifestError, parseManifest } from '../../src/local/manifest.js';
import { planPorts } from '../../src/local/port-blocks.js';
import { registryYaml } from '../../src/local/config-dir.js';
import { parseAllDocuments } from 'yaml';

const BOOKINFO = fileURLToPath(new URL('../../../examples/bookinfo/', import.meta.url));

test("examples/bookinfo/mesh.yaml: six workloads with sidecars, the external stand-in, the ingress gateway; no problems", () => {
  const m = loadManifest(BOOKINFO);
  assert.deepEqual(m.problems, []);
  assert.deepEqual(m.workloads.map((w) => w.name), ['productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1', 'external-api']);
  assert.equal(m.workloads.find((w) => w.name === 'external-api')?.sidecar, false);
  assert.deepEqual(m.gateways.map((g) => [g.name, g.labels['istio'], g.ports]), [['istio-ingressgateway', 'ingressgateway', [8080, 8443]]]);
  assert.ok(m.workloads[0]!.command.endsWith('/dist/examples/bookinfo/src/productpage.js'), 'relative commands resolve against the manifest dir');
});

const file = '/mesh/mesh.yaml';
const W = (extra: string) => `workloads:\n- name: a\n  command: a.js\n  service: { host: a, port: 9080 }\n${extra}`;

test('duplicate names: the second is named and left out, the first and the rest start', () => {
  const m = parseManifest(W('- name: a\n  command: b.js\n  service: { host: b, port: 9080 }\n- name: c\n  command: c.js\n  service: { host: c, port: 9080 }\n'), file);
  assert.deepEqual(m.workloads.map((w) => [w.name, w.command]), [['a', '/mesh/a.js'], ['c', '/mesh/c.js']]);
  assert.match(m.problems.join('\n'), /\/mesh\/mesh\.yaml: workloads\[1\]\.name: duplicate name "a" \(already used by workloads\[0\]\)/);
  assert.match(m.problems.join('\n'), /workloads\[1\]: workload "a" left out/);
});

test('unknown fields, a missing command, a bad port, a bad protocol: each named by path, that entry left out', () => {
  const m = parseManifest(W('- name: typo\n  comand: x.js\n  service: { host: t, port: 9080 }\n- name: noport\n  command: n.js\n  service: { host: n, port: 70000 }\n- name: proto\n  command: p.js\n  service: { host: p, port: 1, protocol: SMTP }\n'), file);
  const text = m.problems.join('\n');
  assert.match(text, /workloads\[1\]\.comand: unknown field/);
  assert.match(text, /workloads\[1\]\.command: required/);
  assert.match(text, /workloads\[2\]\.service\.port: expected a port number 1-65535, got number 70000/);
  assert.match(text, /workloads\[3\]\.service\.protocol: expected one of HTTP, HTTP2, GRPC, TCP, got "SMTP"/);
  assert.deepEqual(m.workloads.map((w) => w.name), ['a']);
});

test('unusable manifests throw ManifestError naming the file: invalid YAML, not a mapping, nothing usable', () => {
  assert.throws(() => parseManifest('workloads: [', file), (e: unknown) => e instanceof ManifestError && e.code === 'TRELLIS_MANIFEST_INVALID' && /\/mesh\/mesh\.yaml: invalid YAML/.test(e.message));
  assert.throws(() => parseManifest('- a\n- b\n', file), /expected a mapping/);
  assert.throws(() => parseManifest('workloads:\n- name: x\n', file), /workloads\[0\]\.command: required[\s\S]*no usable workload/);
  assert.throws(() => loadManifest('/nonexistent/dir'), /cannot read the mesh manifest \(ENOENT\)/);
});

test('port blocks do not overlap; WorkloadEntries point at each sidecar inbound port, one ServiceEntry per service selecting the shared labels', () => {
  const m = loadManifest(BOOKINFO);
  const plan = planPorts(m, 20000);
  const all = [plan.control.xds, plan.control.monitoring, plan.control.secureXds, plan.control.dashboard];
  for (const p of plan.workloads.values()) all.push(...[p.app, p.outbound, p.inbound, p.admin, p.sds, p.status].filter((x): x is number => x !== undefined));
  for (const p of plan.gateways.values()) all.push(p.admin, p.sds, p.status);
  assert.equal(new Set(all).size, all.length, `ports collide: ${all.join(',')}`);
  assert.equal(plan.workloads.get('external-api')?.app, 19480, 'a fixed port stays');
  assert.deepEqual(plan.workloads.get('reviews-v2'), { app: 20040, outbound: 20041, inbound: 20042, admin: 20043, sds: 20044, status: 20045 });
  assert.throws(() => planPorts(m, 65500), /must lie within 1024-65535/);

  const docs = parseAllDocuments(registryYaml(m, plan).yaml).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> });
  const reviews = docs.find((d) => d.kind === 'ServiceEntry' && d.metadata.name === 'reviews')!;
  assert.deepEqual(reviews.spec['hosts'], ['reviews.default.svc.cluster.local']);
  assert.deepEqual(reviews.spec['workloadSelector'], { labels: { app: 'reviews' } });
  const v2 = docs.find((d) => d.kind === 'WorkloadEntry' && d.metadata.name === 'reviews-v2')!;
  assert.deepEqual(v2.spec['ports'], { 'http-9080': 20042 });
  assert.equal((v2.spec['labels'] as Record<string, string>)['version'], 'v2');
  // Every local workload runs beside a sidecar with a mesh certificate: auto mTLS sends it ISTIO_MUTUAL.
  assert.equal((v2.spec['labels'] as Record<string, string>)['security.istio.io/tlsMode'], 'istio');
  assert.ok(!docs.some((d) => d.metadata.name === 'external-api'), 'no registry entry for a workload without sidecar');
  const skipped = parseAllDocuments(registryYaml(m, plan, new Set(['reviews-v2'])).yaml).map((d) => (d.toJS() as { metadata: { name: string } }).metadata.name);
  assert.ok(!skipped.includes('reviews-v2') && skipped.includes('reviews-v3'));
});

test('mesh.workloadCertTtl sets the CA certificate lifetime; a value that is not a duration of at least 1s is a problem with its path', () => {
  const workload = W('');
  assert.equal(parseManifest(`mesh: { workloadCertTtl: 90s }\n${workload}`, file).mesh.workloadCertTtlSeconds, 90);
  assert.equal(parseManifest(workload, file).mesh.workloadCertTtlSeconds, undefined);
  for (const bad of ['0.5s', 'soon', '5']) {
    const m = parseManifest(`mesh: { workloadCertTtl: ${bad} }\n${workload}`, file);
    assert.equal(m.mesh.workloadCertTtlSeconds, undefined);
    assert.ok(m.problems.some((p) => p.includes('mesh.workloadCertTtl') && p.includes('at least 1s')), `${bad}: ${m.problems.join('; ')}`);
  }
});

test('mesh.extensionProviders (Istio meshConfig shape) reach the manifest; a bad provider is a problem with its path', () => {
  const ok = parseManifest(`mesh:\n  extensionProviders:\n  - name: ext-authz\n    envoyExtAuthzHttp: { service: authz.default.svc.cluster.local, port: 8000, includeRequestHeadersInCheck: [x-ext-authz] }\n${W('')}`, file);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.mesh.extensionProviders?.[0]?.name, 'ext-authz');
  const bad = parseManifest(`mesh:\n  extensionProviders:\n  - envoyExtAuthzHttp: { service: authz, port: 8000 }\n${W('')}`, file);
  assert.ok(bad.problems.some((p) => p.includes('mesh.extensionProviders[0].name')), bad.problems.join('; '));
});

test("annotations: Istio's prometheus.io/* become the sidecar agent's ISTIO_PROMETHEUS_ANNOTATIONS (service port → the local app port)", async () => {
  const { prometheusAnnotationsEnv } = await import('../../src/local/prometheus-annotations.js');
  const m = parseManifest(W('  annotations: { prometheus.io/scrape: "true", prometheus.io/port: "9080", prometheus.io/path: /custom, team: x }\n- name: b\n  command: b.js\n  service: { host: b, port: 9080 }\n  annotations: { prometheus.io/scrape: "true", prometheus.io/port: 9100 }\n- name: c\n  command: c.js\n  service: { host: c, port: 9080 }\n  annotations: { prometheus.io/scrape: "false" }\n'), file);
  assert.deepEqual(m.problems, []);
  const [a, b, c] = m.workloads;
  assert.deepEqual(a!.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9080', 'prometheus.io/path': '/custom', team: 'x' });
  assert.deepEqual(JSON.parse(prometheusAnnotationsEnv(a!, 20100)!), { scrape: 'true', port: '20100', path: '/custom' });
  assert.deepEqual(JSON.parse(prometheusAnnotationsEnv(b!, 20110)!), { scrape: 'true', port: '9100', path: '/metrics' }, 'another port is used as it is');
  assert.equal(prometheusAnnotationsEnv(c!, 20120), undefined);
  const bookinfo = loadManifest(BOOKINFO).workloads.find((w) => w.name === 'productpage-v1')!;
  assert.deepEqual(JSON.parse(prometheusAnnotationsEnv(bookinfo, 15110)!), { scrape: 'true', port: '15110', path: '/metrics' }, "Bookinfo's productpage merges its own /metrics");
});

test('annotations: bad prometheus.io values and a non-map are named and the workload left out', () => {
  const m = parseManifest(W('  annotations: { prometheus.io/scrape: "yes", prometheus.io/port: "http", prometheus.io/path: metrics }\n- name: b\n  command: b.js\n  service: { host: b, port: 9080 }\n  annotations: [x]\n- name: c\n  command: c.js\n  service: { host: c, port: 9080 }\n'), file);
  assert.deepEqual(m.workloads.map((w) => w.name), ['c']);
  const text = m.problems.join('\n');
  assert.match(text, /workloads\[0\]\.annotations\.prometheus\.io\/scrape: expected "true" or "false", got "yes"/);
  assert.match(text, /workloads\[0\]\.annotations\.prometheus\.io\/port: expected a port number 1-65535, got "http"/);
  assert.match(text, /workloads\[0\]\.annotations\.prometheus\.io\/path: expected a path starting with \/, got "metrics"/);
  assert.match(text, /workloads\[1\]\.annotations: expected a mapping of strings, got a list/);
});

test("port plan: each sidecar and gateway block has the agent's status port (block + 5)", () => {
  const plan = planPorts(loadManifest(BOOKINFO), 20000);
  assert.equal(plan.workloads.get('productpage-v1')?.status, 20015);
  assert.equal(plan.workloads.get('external-api')?.status, undefined, 'no sidecar, no agent');
  assert.equal(plan.gateways.get('istio-ingressgateway')?.status, 20085);
});

test("locality: a workload's WorkloadEntry locality and its sidecar's node.locality; anything but 1-3 non-empty parts is named and left out", async () => {
  const m = parseManifest(W('  labels: { app: a }\n  locality: us-east/zone-a\n- name: b\n  command: b.js\n  service: { host: b, port: 9080 }\n  locality: "us-east//x"\n- name: c\n  command: c.js\n  service: { host: c, port: 9080 }\n  locality: r/z/s/extra\n- name: d\n  command: d.js\n  service: { host: d, port: 9080 }\n  locality: 7\n'), file);
  assert.deepEqual(m.workloads.map((w) => [w.name, w.locality]), [['a', 'us-east/zone-a']]);
  const text = m.problems.join('\n');
  assert.match(text, /workloads\[1\]\.locality: expected region, region\/zone or region\/zone\/subzone, got "us-east\/\/x"/);
  assert.match(text, /workloads\[2\]\.locality: expected region, region\/zone or region\/zone\/subzone, got "r\/z\/s\/extra"/);
  assert.match(text, /workloads\[3\]\.locality: expected a non-empty string, got number 7/);
  const docs = parseAllDocuments(registryYaml(m, planPorts(m, 20000)).yaml).map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> });
  assert.equal(docs.find((d) => d.kind === 'WorkloadEntry')!.spec['locality'], 'us-east/zone-a');
  const { buildProxyBootstrap } = await import('../../src/agent/bootstrap.js');
  const base = { type: 'sidecar' as const, name: 'a', namespace: 'default', labels: {}, serviceAccount: 'a', adminPort: 1, xdsPort: 2 };
  assert.deepEqual((buildProxyBootstrap({ ...base, locality: 'us-east/zone-a/rack-1' })['node'] as { locality: unknown }).locality, { region: 'us-east', zone: 'zone-a', sub_zone: 'rack-1' });
  assert.deepEqual((buildProxyBootstrap({ ...base, locality: 'us-east' })['node'] as { locality: unknown }).locality, { region: 'us-east' });
  assert.equal((buildProxyBootstrap(base)['node'] as { locality?: unknown }).locality, undefined);
});
