// Trellis's own control plane output (Istio-style RDS for Bookinfo, through the protobuf wire) compiles and routes as Istio users expect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildInboundRouteConfiguration, buildOutboundRouteConfiguration } from '../../../src/control/translate/route/index.js';
import { compileRouteConfiguration } from '../../../src/proxy/router/compile-route-table.js';
import type { ClusterRouteAction, RedirectRouteAction } from '../../../src/proxy/router/route-table.js';
import { decodeMessage, encodeMessage } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { MESH, details, productpage, proxy, ratings, ratingsVs, reviews, virtualService } from '../../control/translate/bookinfo-translate-fixture.js';
import { request } from './support.js';

type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

function overTheWire(config: RouteConfiguration): RouteConfiguration {
  const name = 'envoy.config.route.v3.RouteConfiguration';
  return decodeMessage<RouteConfiguration>(name, encodeMessage(name, config));
}

const reviewsVs = virtualService('reviews', {
  hosts: ['reviews'],
  http: [
    { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }], retries: { attempts: 3, retryOn: '5xx,503', perTryTimeout: '2s' } },
    { match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', authority: 'new.example.com', redirectCode: 302 } },
    { match: [{ uri: { prefix: '/static' } }], directResponse: { status: 200, body: { string: 'hi' } } },
    {
      match: [{ uri: { prefix: '/v1' }, withoutHeaders: { 'x-ban': { exact: 'yes' } } }],
      rewrite: { uri: '/v2' },
      headers: { request: { set: { 'x-route': 'v1' } } },
      mirror: { host: 'reviews', subset: 'v3' },
      mirrorPercentage: { value: 50 },
      corsPolicy: { allowOrigins: [{ exact: 'https://a.com' }] },
      route: [{ destination: { host: 'reviews', subset: 'v1' } }],
    },
    {
      route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight: 50, headers: { request: { set: { 'x-subset': 'v1' } } } },
        { destination: { host: 'reviews', subset: 'v3' }, weight: 50 },
      ],
    },
  ],
});

test('the control plane\'s outbound RouteConfiguration for Bookinfo compiles and routes', () => {
  const config = overTheWire(
    buildOutboundRouteConfiguration('9080', 9080, [{ service: productpage }, { service: details }, { service: reviews, virtualService: reviewsVs }, { service: ratings, virtualService: ratingsVs }], {
      proxy: proxy(),
      mesh: MESH,
    }),
  );
  const filterNames: string[] = [];
  const table = compileRouteConfiguration(config, {
    perFilterConfig: (name) => {
      filterNames.push(name);
      return { name };
    },
  });
  const pick = (headers: Record<string, string>, path = '/', authority = 'reviews:9080', random = 0) => table.match(request(path, headers, authority), random);

  const jason = pick({ 'end-user': 'jason' })!;
  const jasonAction = jason.action as ClusterRouteAction;
  assert.equal(jasonAction.pickCluster(request('/'), 0), 'outbound|9080|v2|reviews.default.svc.cluster.local');
  assert.equal(jasonAction.timeoutMs, 0, 'Istio disables the route timeout');
  assert.equal(jasonAction.retryPolicy?.numRetries, 3);
  assert.deepEqual([...jasonAction.retryPolicy!.retriableStatusCodes], [503]);
  assert.equal(jasonAction.retryPolicy?.avoidPreviousHosts, true);
  assert.equal(jason.virtualHost.includeRequestAttemptCount, true);

  const redirect = pick({}, '/old?x=1')!.action as RedirectRouteAction;
  assert.equal(redirect.status, 302);
  assert.equal(redirect.location(request('/old?x=1', {}, 'reviews:9080')), 'http://new.example.com/new?x=1');

  assert.deepEqual(pick({}, '/static/a')!.action, { kind: 'direct_response', status: 200, body: 'hi' });

  const v1 = pick({}, '/v1/items')!;
  const v1Action = v1.action as ClusterRouteAction;
  assert.deepEqual(v1Action.mirrorPolicies, [{ cluster: 'outbound|9080|v3|reviews.default.svc.cluster.local', fraction: 0.5 }]);
  assert.deepEqual(v1.perFilterConfig.get('envoy.filters.http.cors'), { name: 'envoy.filters.http.cors' });
  const headers = request('/v1/items');
  v1Action.rewritePath(headers);
  assert.equal(headers[':path'], '/v2/items');
  // withoutHeaders x-ban: yes → falls through to the weighted route.
  const banned = pick({ 'x-ban': 'yes' }, '/v1/items')!;
  assert.ok(banned.action.kind === 'cluster' && banned.action.pickCluster(request('/'), 0.75) === 'outbound|9080|v3|reviews.default.svc.cluster.local');
  const target = (banned.action as ClusterRouteAction).pickTarget(request('/'), 0.25)!;
  assert.equal(target.cluster, 'outbound|9080|v1|reviews.default.svc.cluster.local');
  assert.ok(target.requestHeaders);

  // Domains: short name, FQDN, with port, VIP.
  for (const authority of ['reviews', 'reviews.default.svc.cluster.local:9080', '10.96.0.20:9080']) {
    assert.equal(table.match(request('/', {}, authority), 0)?.virtualHost.name, 'reviews.default.svc.cluster.local:9080', authority);
  }
  assert.equal(table.match(request('/', {}, 'unknown.example.org'), 0)?.virtualHost.name, 'allow_any');
  const ratingsJason = table.match(request('/', { 'end-user': 'jason' }, 'ratings:9080'), 0)!;
  assert.ok(ratingsJason.perFilterConfig.has('envoy.filters.http.fault'));
  assert.ok(filterNames.includes('envoy.filters.http.fault'));
});

test('the control plane\'s inbound RouteConfiguration compiles (max_stream_duration honoured)', () => {
  const table = compileRouteConfiguration(overTheWire(buildInboundRouteConfiguration('inbound|9080||', 9080)));
  const action = table.match(request('/anything'), 0)!.action as ClusterRouteAction;
  assert.equal(action.pickCluster(request('/'), 0), 'inbound|9080||');
  assert.equal(action.timeoutMs, 0);
  assert.deepEqual(action.maxStreamDuration, { maxStreamDurationMs: 0, grpcTimeoutHeaderMaxMs: 0 });
});
