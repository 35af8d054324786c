// The validation entry points: message format, typed errors, metadata rules, durations, and never throwing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigValidationError, TrellisError } from '../../src/common/errors.js';
import { formatDurationMs, parseDurationMs } from '../../src/api/duration.js';
import { formatProblem } from '../../src/api/problem.js';
import type { IstioResource } from '../../src/api/resource.js';
import { assertValidResource, describeProblems, isValidResource, validateResource } from '../../src/api/validate.js';
import { resource } from './helpers.js';

test('formatProblem: file: Kind namespace/name: field.path: what was expected', () => {
  const vs = resource('VirtualService', `
hosts: [reviews]
http:
- route:
  - {destination: {host: reviews, subset: v1}, weight: 50}
  - {destination: {host: reviews, subset: v3}, weight: 40}
`, 'reviews');
  assert.deepEqual(describeProblems(vs), ['test.yaml: VirtualService default/reviews: spec.http[0].route: weights must sum to 100 (got 90)']);
  const { origin: _origin, ...withoutOrigin } = vs;
  assert.equal(formatProblem(withoutOrigin, { path: 'spec.hosts', message: 'x' }), 'VirtualService default/reviews: spec.hosts: x');
});

test('assertValidResource throws a coded ConfigValidationError listing every problem; isValidResource narrows', () => {
  const bad = resource('DestinationRule', 'host: ""\nsubsets: [{name: v1}, {name: v1}]', 'r');
  assert.throws(
    () => assertValidResource(bad),
    (err: unknown) =>
      err instanceof ConfigValidationError &&
      err instanceof TrellisError &&
      err.code === 'TRELLIS_CONFIG_INVALID' &&
      err.details.length === 2 &&
      err.details[0] === 'test.yaml: DestinationRule default/r: spec.host: host is required',
  );
  const good = resource('DestinationRule', 'host: reviews\ntrafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}');
  assert.ok(isValidResource(good));
  if (isValidResource(good) && good.kind === 'DestinationRule') assert.equal(good.spec.trafficPolicy?.loadBalancer?.simple, 'LEAST_REQUEST');
  const typed = assertValidResource(good);
  assert.equal(typed.kind === 'DestinationRule' ? typed.spec.host : undefined, 'reviews');
});

test('metadata: names are lower-case DNS-1123, labels well-formed', () => {
  const r: IstioResource = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'Bad_Name', namespace: 'Prod', labels: { 'app.kubernetes.io/name': 'ok', '-bad': 'x' } },
    spec: {},
  };
  assert.deepEqual(validateResource(r), [
    { path: 'metadata.name', message: `invalid name "Bad_Name" (expected lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)` },
    { path: 'metadata.namespace', message: 'invalid namespace "Prod" (expected a DNS-1123 label)' },
    { path: 'metadata.labels["-bad"]', message: 'invalid label key "-bad" (expected name or prefix/name, alphanumerics with - _ .)' },
  ]);
});

test('validation never throws, whatever the resource holds', () => {
  const odd: unknown[] = [null, 7, 'spec', [], { http: [null, 3, 'x', [[]]] }, { hosts: [null, {}, 5] }];
  for (const spec of odd) {
    for (const kind of ['VirtualService', 'DestinationRule', 'Gateway', 'ServiceEntry', 'WorkloadEntry', 'Sidecar', 'PeerAuthentication', 'RequestAuthentication', 'AuthorizationPolicy', 'Telemetry'] as const) {
      const problems = validateResource({ apiVersion: 'x/v1', kind, metadata: { name: 'n', namespace: 'default' }, spec });
      assert.ok(Array.isArray(problems), `${kind} ${JSON.stringify(spec)}`);
    }
  }
  assert.deepEqual(validateResource({ apiVersion: 'x/v1', kind: 'VirtualService', metadata: { name: 'n', namespace: 'default' }, spec: { hosts: ['a'], http: [null] } }), [
    { path: 'spec.http[0]', message: 'expected an object, got null' },
  ]);
});

test('durations parse in Istio/Go syntax', () => {
  assert.equal(parseDurationMs('1.5s'), 1500);
  assert.equal(parseDurationMs('100ms'), 100);
  assert.equal(parseDurationMs('1m'), 60_000);
  assert.equal(parseDurationMs('1h30m'), 5_400_000);
  assert.equal(parseDurationMs('1.1s'), 1100);
  assert.equal(parseDurationMs('0'), 0);
  assert.equal(parseDurationMs('250us'), 0.25);
  for (const bad of ['', '10', 's', '1.5', '1 s', '1d', '.s']) assert.equal(parseDurationMs(bad), undefined, bad);
  assert.equal(formatDurationMs(1500), '1.5s');
});
