// The shared fixtures: Bookinfo validates clean; analyze-broken yields exactly its 10 documented problems with field paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFile } from '../../src/api/load.js';
import { formatProblem } from '../../src/api/problem.js';
import { resourceRef, type IstioResource } from '../../src/api/resource.js';
import { describeProblems, validateResource } from '../../src/api/validate.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

async function loadDir(dir: string): Promise<IstioResource[]> {
  const resources: IstioResource[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const { resources: loaded, problems } = await loadFile(join(dir, file), { source: file });
    assert.deepEqual(problems, [], file);
    resources.push(...loaded);
  }
  return resources;
}

test('Bookinfo loads and validates clean', async () => {
  const resources = await loadDir(join(fixtures, 'bookinfo'));
  const byKind = (kind: string) => resources.filter((r) => r.kind === kind).map((r) => r.metadata.name).sort();
  assert.deepEqual(byKind('ServiceEntry'), ['details', 'productpage', 'ratings', 'reviews']);
  assert.deepEqual(byKind('WorkloadEntry'), ['details-v1', 'productpage-v1', 'ratings-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3']);
  assert.deepEqual(byKind('DestinationRule'), ['details', 'productpage', 'ratings', 'reviews']);
  assert.deepEqual(byKind('VirtualService'), ['bookinfo', 'ratings', 'reviews']);
  assert.deepEqual(resources.flatMap(describeProblems), []);

  const reviews = resources.find((r) => r.kind === 'DestinationRule' && r.metadata.name === 'reviews')!;
  assert.deepEqual(reviews.spec, {
    host: 'reviews',
    trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } },
    subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
  });
});

test('analyze-broken: all 10 broken resources are reported with their field paths, valid ones are not', async () => {
  const resources = await loadDir(join(fixtures, 'analyze-broken'));
  const report = resources.flatMap((r) => validateResource(r).map((p) => ({ ref: resourceRef(r), source: r.origin?.source, path: p.path, line: formatProblem(r, p) })));
  assert.deepEqual(
    report.map(({ source, ref, path }) => `${source}: ${ref}: ${path}`),
    [
      'destination-rules.yaml: DestinationRule default/reviews-subsets: spec.subsets[1].name',
      'destination-rules.yaml: DestinationRule default/ratings-lb: spec.trafficPolicy.loadBalancer.simple',
      'gateways-and-policies.yaml: Gateway default/secure-gateway: spec.servers[0].tls.privateKey',
      'gateways-and-policies.yaml: AuthorizationPolicy default/header-check: spec.rules[0].when[0].key',
      'service-entries.yaml: ServiceEntry default/legacy-static: spec.endpoints',
      'service-entries.yaml: ServiceEntry default/billing: spec.ports[0].number',
      'virtual-services.yaml: VirtualService default/reviews-split: spec.http[0].route',
      'virtual-services.yaml: VirtualService default/ratings-timeout: spec.http[0].timeout',
      'virtual-services.yaml: VirtualService default/details-regex: spec.http[0].match[0].uri.regex',
      'virtual-services.yaml: VirtualService default/ratings-fault: spec.http[0].fault.abort.httpStatus',
    ],
  );
  assert.equal(new Set(report.map((r) => r.ref)).size, 10);
  assert.ok(report.some((r) => r.line === 'virtual-services.yaml: VirtualService default/reviews-split: spec.http[0].route: weights must sum to 100 (got 90)'));
  const valid = resources.filter((r) => validateResource(r).length === 0).map(resourceRef);
  assert.deepEqual(valid.sort(), [
    'DestinationRule default/details',
    'PeerAuthentication default/default',
    'ServiceEntry default/inventory',
    'VirtualService default/productpage',
    'WorkloadEntry default/inventory-v1',
  ]);
});
