import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostNamesService, parseConfigz, serviceConfig } from '../../src/dashboard/service-config.js';
import { parseSyncz, promqlVector } from '../../src/dashboard/mesh-source.js';

const configz = parseConfigz({
  pushVersion: '7',
  resources: [
    { kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' }, spec: { hosts: ['reviews'], http: [] } },
    { kind: 'VirtualService', metadata: { name: 'reviews-other', namespace: 'other' }, spec: { hosts: ['reviews'] } },
    { kind: 'VirtualService', metadata: { name: 'all-fqdn', namespace: 'other' }, spec: { hosts: ['ratings.default.svc.cluster.local'] } },
    { kind: 'VirtualService', metadata: { name: 'bookinfo', namespace: 'default' }, spec: { hosts: ['*'], gateways: ['bookinfo-gateway'] } },
    { kind: 'VirtualService', metadata: { name: 'both', namespace: 'default' }, spec: { hosts: ['ratings'], gateways: ['bookinfo-gateway', 'mesh'] } },
    { kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' }, spec: { host: 'reviews.default.svc.cluster.local', subsets: [] } },
    { kind: 'Gateway', metadata: { name: 'gw', namespace: 'default' }, spec: {} },
  ],
  problems: [{ code: 'TRELLIS_X', resource: 'VirtualService default/reviews', path: 'spec.http[0].route[0].weight', text: 'VirtualService default/reviews: spec.http[0].route[0].weight: expected 0-100' }],
});

test('a service gets the VirtualServices and DestinationRules whose hosts name it, and the problems of those', () => {
  const reviews = serviceConfig(configz, 'reviews', 'default');
  assert.deepEqual(reviews.virtualServices.map((r) => r.metadata.name), ['reviews']);
  assert.deepEqual(reviews.destinationRules.map((r) => r.metadata.name), ['reviews']);
  assert.equal(reviews.problems.length, 1);
  const ratings = serviceConfig(configz, 'ratings', 'default');
  // A VirtualService bound to gateways only does not apply to calls inside the mesh; one that also lists `mesh` does.
  assert.deepEqual(ratings.virtualServices.map((r) => r.metadata.name), ['all-fqdn', 'both']);
  assert.equal(ratings.problems.length, 0);
  assert.equal(hostNamesService('*.default.svc.cluster.local', 'x', 'ratings', 'default'), true);
  assert.equal(hostNamesService('reviews.other', 'default', 'reviews', 'default'), false);
});

test('configz and syncz of an unexpected shape are refused with a message', () => {
  assert.throws(() => parseConfigz({ resources: 'no' }), /expected an object with a "resources" array/);
  assert.throws(() => parseSyncz({}), /expected an array of proxies/);
  const sync = parseSyncz([{ proxy: 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local', types: { CDS: { state: 'SYNCED' }, LDS: { state: 'NACKED', nack: { message: 'listener x: bad filter' } } } }]);
  assert.deepEqual(sync[0]!.types, { CDS: { state: 'SYNCED' }, LDS: { state: 'NACKED', nack: 'listener x: bad filter' } });
});

test('a Prometheus vector answer becomes samples; an error answer throws its error', () => {
  const body = JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: { reporter: 'destination', le: '5' }, value: [1, '12.5'] }] } });
  assert.deepEqual(promqlVector('istio_request_duration_milliseconds_bucket', body), [{ name: 'istio_request_duration_milliseconds_bucket', labels: { reporter: 'destination', le: '5' }, value: 12.5 }]);
  assert.throws(() => promqlVector('x', JSON.stringify({ status: 'error', error: 'parse error at char 3' })), /parse error at char 3/);
});
