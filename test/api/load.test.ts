// Loading multi-document YAML: origins, namespaces, apiVersions, and every kind of bad document reported without losing the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatLoadProblem, loadFile, parseResources } from '../../src/api/load.js';
import { validateResource } from '../../src/api/validate.js';

const vs = (name: string, apiVersion = 'networking.istio.io/v1', extraMeta = '') => `apiVersion: ${apiVersion}
kind: VirtualService
metadata:
  name: ${name}${extraMeta}
spec:
  hosts: [${name}]
  http: [{route: [{destination: {host: ${name}}}]}]
`;

test('several documents load with their file and document index; namespace defaults to the parameter', () => {
  const text = [vs('a'), vs('b', 'networking.istio.io/v1beta1', '\n  namespace: shop'), '', vs('c', 'networking.istio.io/v1alpha3')].join('---\n');
  const { resources, problems } = parseResources(text, { source: 'mesh.yaml', defaultNamespace: 'prod' });
  assert.deepEqual(problems, []);
  assert.deepEqual(
    resources.map((r) => [r.kind, r.metadata.namespace, r.metadata.name, r.origin]),
    [
      ['VirtualService', 'prod', 'a', { source: 'mesh.yaml', document: 0 }],
      ['VirtualService', 'shop', 'b', { source: 'mesh.yaml', document: 1 }],
      ['VirtualService', 'prod', 'c', { source: 'mesh.yaml', document: 3 }],
    ],
  );
  assert.equal(parseResources(vs('d')).resources[0]!.metadata.namespace, 'default');
});

test('JSON documents load too (YAML is a superset)', () => {
  const json = JSON.stringify({
    apiVersion: 'security.istio.io/v1beta1',
    kind: 'PeerAuthentication',
    metadata: { name: 'default', namespace: 'istio-system' },
    spec: { mtls: { mode: 'STRICT' } },
  });
  const { resources, problems } = parseResources(json, { source: 'pa.json' });
  assert.deepEqual(problems, []);
  assert.deepEqual(resources[0]!.spec, { mtls: { mode: 'STRICT' } });
});

test('apiVersions: only the versions at which Istio serves the kind', () => {
  const doc = (apiVersion: string, kind: string) => `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: x}\nspec: {}\n`;
  const accepted = [
    ['networking.istio.io/v1alpha3', 'Sidecar'],
    ['networking.istio.io/v1', 'WorkloadEntry'],
    ['security.istio.io/v1', 'AuthorizationPolicy'],
    ['security.istio.io/v1beta1', 'RequestAuthentication'],
    ['telemetry.istio.io/v1alpha1', 'Telemetry'],
    ['telemetry.istio.io/v1', 'Telemetry'],
  ];
  for (const [apiVersion, kind] of accepted) assert.deepEqual(parseResources(doc(apiVersion!, kind!)).problems, [], `${apiVersion} ${kind}`);
  const { problems } = parseResources(
    [doc('security.istio.io/v1alpha3', 'PeerAuthentication'), doc('networking.istio.io/v1', 'AuthorizationPolicy'), doc('networking.istio.io/v2', 'Gateway')].join('---\n'),
    { source: 'f.yaml' },
  );
  assert.deepEqual(problems.map(formatLoadProblem), [
    'f.yaml:1:1: document 0: PeerAuthentication: apiVersion: unsupported apiVersion "security.istio.io/v1alpha3" for PeerAuthentication, expected one of security.istio.io/v1, security.istio.io/v1beta1',
    'f.yaml:6:1: document 1: AuthorizationPolicy: apiVersion: unsupported apiVersion "networking.istio.io/v1" for AuthorizationPolicy, expected one of security.istio.io/v1, security.istio.io/v1beta1',
    'f.yaml:11:1: document 2: Gateway: apiVersion: unsupported apiVersion "networking.istio.io/v2" for Gateway, expected one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3',
  ]);
  assert.ok(problems.every((p) => p.code === 'TRELLIS_CONFIG_UNSUPPORTED'));
});

test('broken YAML is reported with line:column and does not stop the other documents', () => {
  const text = `${vs('first')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: broken
spec:
  hosts: [broken
  http: []
---
${vs('last')}`;
  const { resources, problems } = parseResources(text, { source: 'broken.yaml' });
  assert.deepEqual(resources.map((r) => r.metadata.name), ['first', 'last']);
  assert.deepEqual(problems.map(formatLoadProblem), [
    'broken.yaml:15:3: document 1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
  ]);
  assert.equal(problems[0]!.code, 'TRELLIS_CONFIG_PARSE');
});

test('duplicate keys and tab indentation are YAML errors too', () => {
  const { problems } = parseResources('apiVersion: a/v1\nkind: Gateway\nkind: Gateway\n', { source: 'dup.yaml' });
  assert.deepEqual(problems.map(formatLoadProblem), ['dup.yaml:3:1: document 0: invalid YAML: Map keys must be unique']);
  const tabs = parseResources('a: 1\n\tb: 2\n', { source: 'tabs.yaml' });
  assert.deepEqual(tabs.problems.map(formatLoadProblem), ['tabs.yaml:2:1: document 0: invalid YAML: Tabs are not allowed as indentation']);
});

test('unknown kinds, missing kind, missing metadata.name and non-resources are problems naming file and document', () => {
  const text = [
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n',
    'apiVersion: networking.istio.io/v1\nmetadata: {name: x}\n',
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {namespace: shop}\nspec: {host: a}\n',
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec: {host: a}\n',
    '- just\n- a list\n',
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a, labels: {version: 2}}\nspec: {host: a}\n',
    vs('ok'),
  ].join('---\n');
  const { resources, problems } = parseResources(text, { source: 'mixed.yaml' });
  assert.deepEqual(resources.map((r) => r.metadata.name), ['ok']);
  assert.deepEqual(problems.map(formatLoadProblem), [
    'mixed.yaml:1:1: document 0: kind: unsupported kind "Deployment" (apiVersion apps/v1); Trellis reads VirtualService, DestinationRule, Gateway, ServiceEntry, WorkloadEntry, Sidecar, PeerAuthentication, RequestAuthentication, AuthorizationPolicy, Telemetry',
    'mixed.yaml:5:1: document 1: kind: kind is required',
    'mixed.yaml:8:1: document 2: DestinationRule: metadata.name: name is required',
    'mixed.yaml:13:1: document 3: DestinationRule: metadata.name: name is required',
    'mixed.yaml:17:1: document 4: expected a resource (apiVersion, kind, metadata, spec), got a list',
    'mixed.yaml:20:1: document 5: DestinationRule default/a: metadata.labels.version: expected a string, got a number (2) (quote it)',
  ]);
  assert.deepEqual(problems.map((p) => p.code), [
    'TRELLIS_CONFIG_UNSUPPORTED',
    'TRELLIS_CONFIG_INVALID',
    'TRELLIS_CONFIG_INVALID',
    'TRELLIS_CONFIG_INVALID',
    'TRELLIS_CONFIG_INVALID',
    'TRELLIS_CONFIG_INVALID',
  ]);
});

test('a resource with a wrong-typed spec still loads, and validation says what is wrong', () => {
  const { resources, problems } = parseResources('apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: [servers]\n');
  assert.deepEqual(problems, []);
  assert.deepEqual(validateResource(resources[0]!), [{ path: 'spec', message: 'expected an object, got a list' }]);
});

test('alias bombs are refused instead of expanding', () => {
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 0; i < 8; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`);
  const { resources, problems } = parseResources(bomb.join('\n'), { source: 'bomb.yaml' });
  assert.equal(resources.length, 0);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.code, 'TRELLIS_CONFIG_PARSE');
});

test('loadFile: reads a file; a missing file is one problem, not an exception', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-api-'));
  try {
    const file = join(dir, 'vs.yaml');
    await writeFile(file, vs('reviews'));
    const ok = await loadFile(file);
    assert.deepEqual(ok.problems, []);
    assert.deepEqual(ok.resources[0]!.origin, { source: file, document: 0 });
    const missing = await loadFile(join(dir, 'gone.yaml'));
    assert.deepEqual(missing.resources, []);
    assert.deepEqual(missing.problems.map(formatLoadProblem), [`${join(dir, 'gone.yaml')}: cannot read file: file not found (deleted while being read?)`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('10,000 resources in one file load, all of them, and validate', () => {
  const docs: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: svc-${i}
  namespace: ns-${i % 10}
spec:
  hosts: [svc-${i}.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}}]
`);
  }
  const { resources, problems } = parseResources(docs.join('---\n'), { source: 'big.yaml' });
  assert.deepEqual(problems, []);
  assert.equal(resources.length, 10_000);
  assert.equal(new Set(resources.map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).size, 10_000);
  assert.deepEqual(resources[9_999]!.origin, { source: 'big.yaml', document: 9_999 });
  assert.equal(resources.filter((r) => validateResource(r).length > 0).length, 0);
});
