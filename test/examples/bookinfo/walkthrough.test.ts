// The walkthrough files: each README step's config directory analyzes clean over the Bookinfo base config, and each file says what the walkthrough needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const walkthrough = join(repo, 'examples/bookinfo/walkthrough');
const cli = join(repo, 'dist/src/cli/main.js');
// Stand-in for the mesh's base config until `trellis up` ships its own: the services and the ingress gateway.
const base = ['services.yaml', 'gateway.yaml'].map((f) => join(repo, 'test/fixtures/bookinfo', f));

/** The config directory after each README step (files other than the base). */
const STEPS: Record<string, string[]> = {
  'route all to v1': ['destination-rule-all.yaml', 'virtual-service-all-v1.yaml'],
  'jason to v2': ['destination-rule-all.yaml', 'virtual-service-reviews-test-v2.yaml'],
  'delay for jason': ['destination-rule-all.yaml', 'virtual-service-reviews-test-v2.yaml', 'virtual-service-ratings-test-delay.yaml'],
  'abort for jason': ['destination-rule-all.yaml', 'virtual-service-reviews-test-v2.yaml', 'virtual-service-ratings-test-abort.yaml'],
  '50/50 v1 and v3': ['destination-rule-all.yaml', 'virtual-service-reviews-50-v3.yaml'],
  'all to v3': ['destination-rule-all.yaml', 'virtual-service-reviews-v3.yaml'],
  'egress REGISTRY_ONLY': ['destination-rule-all.yaml', 'egress-registry-only.yaml'],
  'egress with the ServiceEntry': ['destination-rule-all.yaml', 'egress-registry-only.yaml', 'external-api.yaml'],
  'security: deny all': ['security/allow-nothing.yaml'],
  'security: productpage viewer': ['security/allow-nothing.yaml', 'security/productpage-viewer.yaml'],
  'security: details and reviews viewers': ['security/allow-nothing.yaml', 'security/productpage-viewer.yaml', 'security/details-viewer.yaml', 'security/reviews-viewer.yaml'],
  'security: ratings viewer': ['security/allow-nothing.yaml', 'security/productpage-viewer.yaml', 'security/details-viewer.yaml', 'security/reviews-viewer.yaml', 'security/ratings-viewer.yaml'],
  'security: JWT at the ingress': ['security/jwt-ingress.yaml'],
  'security: PERMISSIVE': ['security/peer-authentication-permissive.yaml'],
};

function analyze(files: string[]): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bookinfo-walkthrough-'));
  try {
    for (const f of [...base, ...files.map((name) => join(walkthrough, name))]) copyFileSync(f, join(dir, f.split('/').pop() as string));
    const run = spawnSync(process.execPath, [cli, 'analyze', dir], { encoding: 'utf8', timeout: 60_000 });
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Doc = { kind: string; metadata: { name: string; namespace: string }; spec: Record<string, any> };
function load(name: string): Doc[] {
  return parseAllDocuments(readFileSync(join(walkthrough, name), 'utf8')).map((d) => d.toJSON() as Doc);
}

test('every walkthrough file is used by a step', () => {
  const used = new Set(Object.values(STEPS).flat());
  assert.deepEqual(readdirSync(walkthrough).filter((f) => f.endsWith('.yaml')).filter((f) => !used.has(f)), []);
  assert.deepEqual(readdirSync(join(walkthrough, 'security')).filter((f) => f.endsWith('.yaml')).filter((f) => !used.has(`security/${f}`)), []);
});

for (const [step, files] of Object.entries(STEPS)) {
  test(`step "${step}" analyzes clean`, { timeout: 90_000 }, () => {
    const { status, output } = analyze(files);
    assert.equal(status, 0, output);
    assert.match(output, /No validation issues found/);
  });
}

test('all files at once conflict (so each step replaces the previous file, as the README says)', { timeout: 90_000 }, () => {
  const { status, output } = analyze(Object.values(STEPS).flat().filter((f, i, a) => a.indexOf(f) === i));
  assert.notEqual(status, 0);
  assert.match(output, /IST0106.*VirtualService default\/reviews/);
});

test('the files say what the walkthrough needs', () => {
  for (const f of readdirSync(walkthrough).filter((n) => n.endsWith('.yaml'))) {
    for (const d of load(f)) assert.equal(d.metadata.namespace, 'default', `${f} ${d.kind} ${d.metadata.name}`);
  }
  assert.deepEqual(load('virtual-service-all-v1.yaml').map((d) => [d.metadata.name, d.spec.http[0].route[0].destination.subset]), [
    ['productpage', 'v1'], ['reviews', 'v1'], ['ratings', 'v1'], ['details', 'v1'],
  ]);
  const [testV2] = load('virtual-service-reviews-test-v2.yaml');
  assert.deepEqual(testV2?.spec.http[0].match, [{ headers: { 'end-user': { exact: 'jason' } } }]);
  assert.equal(testV2?.spec.http[0].route[0].destination.subset, 'v2');
  assert.equal(testV2?.spec.http[1].route[0].destination.subset, 'v1');
  const [split] = load('virtual-service-reviews-50-v3.yaml');
  assert.deepEqual(split?.spec.http[0].route.map((r: { destination: { subset: string }; weight: number }) => [r.destination.subset, r.weight]), [['v1', 50], ['v3', 50]]);
  assert.equal(load('virtual-service-reviews-v3.yaml')[0]?.spec.http[0].route[0].destination.subset, 'v3');
  const [delay] = load('virtual-service-ratings-test-delay.yaml');
  assert.deepEqual(delay?.spec.http[0].fault, { delay: { percentage: { value: 100 }, fixedDelay: '7s' } });
  assert.deepEqual(delay?.spec.http[0].match, [{ headers: { 'end-user': { exact: 'jason' } } }]);
  const [abort] = load('virtual-service-ratings-test-abort.yaml');
  assert.deepEqual(abort?.spec.http[0].fault, { abort: { percentage: { value: 100 }, httpStatus: 500 } });
  assert.deepEqual(load('destination-rule-all.yaml').map((d) => [d.spec.host, d.spec.subsets.map((s: { name: string }) => s.name)]), [
    ['productpage', ['v1']], ['reviews', ['v1', 'v2', 'v3']], ['ratings', ['v1']], ['details', ['v1']],
  ]);
  const [sidecar] = load('egress-registry-only.yaml');
  assert.equal(sidecar?.spec.outboundTrafficPolicy.mode, 'REGISTRY_ONLY');
  const [external] = load('external-api.yaml');
  assert.deepEqual(external?.spec.hosts, ['api.external.test']);
  assert.equal(external?.spec.location, 'MESH_EXTERNAL');
  assert.deepEqual(external?.spec.endpoints, [{ address: '127.0.0.1', ports: { http: 19480 } }]);
});
