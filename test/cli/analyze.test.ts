// `trellis analyze DIR` as a user runs it: every field problem with its path, cross-resource references, exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const repo = fileURLToPath(new URL('../../../', import.meta.url));

function analyze(dir: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, 'analyze', dir, ...args], { encoding: 'utf8', cwd: repo, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('analyze-broken: all 10 broken resources with their field paths, exit 1', () => {
  const { status, stdout, stderr } = analyze('test/fixtures/analyze-broken');
  assert.equal(status, 1, stderr);
  const expected: Array<[string, string]> = [
    ['VirtualService default/reviews-split', 'spec.http[0].route'],
    ['VirtualService default/ratings-timeout', 'spec.http[0].timeout'],
    ['VirtualService default/details-regex', 'spec.http[0].match[0].uri.regex'],
    ['VirtualService default/ratings-fault', 'spec.http[0].fault.abort.httpStatus'],
    ['DestinationRule default/reviews-subsets', 'spec.subsets[1].name'],
    ['DestinationRule default/ratings-lb', 'spec.trafficPolicy.loadBalancer.simple'],
    ['ServiceEntry default/legacy-static', 'spec.endpoints'],
    ['ServiceEntry default/billing', 'spec.ports[0].number'],
    ['Gateway default/secure-gateway', 'spec.servers[0].tls.privateKey'],
    ['AuthorizationPolicy default/header-check', 'spec.rules[0].when[0].key'],
  ];
  const schemaLines = stdout.split('\n').filter((l) => l.startsWith('Error [IST0106]'));
  assert.equal(schemaLines.length, 10, stdout);
  for (const [resource, path] of expected) {
    assert.ok(schemaLines.some((l) => l.includes(`(${resource} `) && l.includes(`Schema validation error: ${path}: `)), `${resource} ${path} in:\n${stdout}`);
  }
  // The valid resources are consistent with each other: nothing else is reported.
  assert.equal(stdout.split('\n').filter((l) => l.startsWith('Error ') || l.startsWith('Warning ')).length, 10, stdout);
  assert.match(stderr, /Analyzers found issues/);
});

test('a clean directory prints the all-clear and exits 0', () => {
  const { status, stdout } = analyze('test/fixtures/bookinfo');
  assert.equal(status, 0);
  assert.equal(stdout, '\u2714 No validation issues found when analyzing namespace: default.\n');
});

test('cross-resource checks: unknown host, undefined subset, missing gateway, two VirtualServices for a host, subset matching no workload', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-analyze-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'mesh.yaml'),
    `apiVersion: networking.istio.io/v1
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
spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v9, labels: {version: v9}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviewz}
      weight: 50
    - destination: {host: reviews, subset: v4}
      weight: 50
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-again, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  gateways: [no-such-gateway, mesh]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`,
  );
  const { status, stdout } = analyze(dir);
  assert.equal(status, 1);
  const file = join(dir, 'mesh.yaml');
  assert.match(stdout, new RegExp(`^Error \\[IST0101\\] \\(VirtualService default/reviews ${escape(file)}\\) Referenced host not found: "reviewz"$`, 'm'));
  assert.match(stdout, /^Error \[IST0101\] \(VirtualService default\/reviews .*\) Referenced host\+subset in destinationrule not found: "reviews\+v4"$/m);
  assert.match(stdout, /^Error \[IST0101\] \(VirtualService default\/reviews-again .*\) Referenced gateway not found: "no-such-gateway"$/m);
  assert.equal(stdout.match(/^Error \[IST0109\] .*define the same host "reviews\.default\.svc\.cluster\.local"/gm)?.length, 2, stdout);
  assert.match(stdout, /^Warning \[IST0173\] \(DestinationRule default\/reviews .*\) The Subset v9 defined in the DestinationRule does not select any workload/m);
  assert.doesNotMatch(stdout, /Subset v1 /);

  const json = JSON.parse(analyze(dir, '-o', 'json').stdout) as Array<{ code: string; path?: string }>;
  assert.ok(json.some((m) => m.code === 'IST0101' && m.path === 'spec.http[0].route[1].destination.subset'));
});

test('a directory that does not exist is an error, not a crash', () => {
  const { status, stderr } = analyze('/nonexistent/trellis-config');
  assert.equal(status, 1);
  assert.match(stderr, /^Error: .*nonexistent/m);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
