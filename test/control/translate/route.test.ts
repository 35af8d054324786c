// RDS builders checked field by field on Bookinfo: VirtualService rules as Istio translates them, default routes, domains, catch-all, wire round trip.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../../src/xds/codec.js';
import { compileRouteConfiguration } from '../../../src/proxy/router/compile-route-table.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import {
  buildExplicitRouteConfiguration,
  buildInboundRouteConfiguration,
  buildOutboundRouteConfiguration,
  defaultRetryPolicy,
  type RouteBuildContext,
  type RouteConfiguration,
  type RouteEntry,
} from '../../../src/control/translate/route/index.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import {
  MESH,
  assertRouteConfigOnTheWire,
  details,
  http9080,
  instance,
  productpage,
  proxy,
  ratings,
  ratingsVs,
  reviews,
  reviewsVs,
  service,
  virtualService,
} from './bookinfo-translate-fixture.js';
import type { HTTPRoute } from '../../../src/api/index.js';

type Route = envoy.config.route.v3.Route;
type HTTPFault = envoy.extensions.filters.http.fault.v3.HTTPFault;
type CorsPolicy = envoy.extensions.filters.http.cors.v3.CorsPolicy;

const context = { proxy: proxy(), mesh: MESH };
const bookinfoEntries: RouteEntry[] = [
  { service: productpage },
  { service: details },
  { service: reviews, virtualService: reviewsVs },
  { service: ratings, virtualService: ratingsVs },
];

function vhost(config: RouteConfiguration, name: string) {
  const found = config.virtual_hosts?.find((v) => v.name === name);
  assert.ok(found, `virtual host ${name} in ${config.virtual_hosts?.map((v) => v.name).join(', ')}`);
  return found;
}

const DEFAULT_RETRY = {
  retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  num_retries: { value: 2 },
  host_selection_retry_max_attempts: 5,
  retriable_status_codes: [503],
};

function withoutPredicate(policy: envoy.config.route.v3.RetryPolicy | undefined) {
  assert.ok(policy);
  const { retry_host_predicate, ...rest } = policy;
  assert.equal(retry_host_predicate?.[0]?.name, 'envoy.retry_host_predicates.previous_hosts');
  assert.equal(retry_host_predicate?.[0]?.typed_config?.type_url, 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate');
  return rest;
}

/** One VirtualService rule for reviews, built on port 9080, returning its routes. */
function routesOf(http: HTTPRoute[], ctx: Partial<RouteBuildContext> = {}, entries: RouteEntry[] = []): Route[] {
  const vs = virtualService('reviews', { hosts: ['reviews'], http });
  const config = buildOutboundRouteConfiguration('9080', 9080, [{ service: reviews, virtualService: vs }, ...entries], { ...context, ...ctx });
  assertRouteConfigOnTheWire(config);
  return vhost(config, 'reviews.default.svc.cluster.local:9080').routes ?? [];
}

describe('outbound route configuration "9080" for Bookinfo', () => {
  const config = buildOutboundRouteConfiguration('9080', 9080, bookinfoEntries, context);

  test('named for the port, one virtual host per service then allow_any, clusters not validated', () => {
    assert.equal(config.name, '9080');
    assert.deepEqual(config.virtual_hosts?.map((v) => v.name), [
      'productpage.default.svc.cluster.local:9080',
      'details.default.svc.cluster.local:9080',
      'reviews.default.svc.cluster.local:9080',
      'ratings.default.svc.cluster.local:9080',
      'allow_any',
    ]);
    assert.deepEqual(config.validate_clusters, { value: false });
    assert.deepEqual(config.max_direct_response_body_size_bytes, { value: 1048576 });
  });

  test('domains: FQDN, short names from the proxy namespace, the VIP, each with and without the port', () => {
    assert.deepEqual(vhost(config, 'reviews.default.svc.cluster.local:9080').domains, [
      'reviews.default.svc.cluster.local',
      'reviews.default.svc.cluster.local:9080',
      'reviews',
      'reviews:9080',
      'reviews.default',
      'reviews.default:9080',
      'reviews.default.svc',
      'reviews.default.svc:9080',
      '10.96.0.20',
      '10.96.0.20:9080',
    ]);
    assert.equal(vhost(config, 'reviews.default.svc.cluster.local:9080').include_request_attempt_count, true);
  });

  test('from another namespace the bare short name is not a domain; ServiceEntry hosts get no short names', () => {
    const other = buildOutboundRouteConfiguration('9080', 9080, [{ service: reviews }, { service: service('api.example.com', [http9080]) }], {
      ...context,
      proxy: proxy({ namespace: 'shop' }),
    });
    assert.deepEqual(vhost(other, 'reviews.default.svc.cluster.local:9080').domains, [
      'reviews.default.svc.cluster.local',
      'reviews.default.svc.cluster.local:9080',
      'reviews.default',
      'reviews.default:9080',
      'reviews.default.svc',
      'reviews.default.svc:9080',
      '10.96.0.20',
      '10.96.0.20:9080',
    ]);
    assert.deepEqual(vhost(other, 'api.example.com:9080').domains, ['api.example.com', 'api.example.com:9080']);
  });

  test('a service without VirtualService gets Istio\'s default route', () => {
    const routes = vhost(config, 'details.default.svc.cluster.local:9080').routes!;
    assert.equal(routes.length, 1);
    const route = routes[0]!;
    assert.equal(route.name, 'default');
    assert.deepEqual(route.match, { prefix: '/' });
    assert.deepEqual(route.decorator, { operation: 'details.default.svc.cluster.local:9080/*' });
    assert.equal(route.route?.cluster, 'outbound|9080||details.default.svc.cluster.local');
    assert.deepEqual(route.route?.timeout, { seconds: 0 });
    assert.deepEqual(route.route?.max_grpc_timeout, { seconds: 0 });
    assert.deepEqual(withoutPredicate(route.route?.retry_policy), DEFAULT_RETRY);
  });

  test('reviews: end-user jason goes to v2', () => {
    const route = vhost(config, 'reviews.default.svc.cluster.local:9080').routes![0]!;
    assert.equal(route.name, undefined);
    assert.deepEqual(route.match, {
      prefix: '/',
      case_sensitive: { value: true },
      headers: [{ name: 'end-user', string_match: { exact: 'jason' } }],
    });
    assert.equal(route.route?.cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
    assert.equal(route.route?.weighted_clusters, undefined);
    assert.deepEqual(route.route?.timeout, { seconds: 0 });
    assert.deepEqual(withoutPredicate(route.route?.retry_policy), DEFAULT_RETRY);
    assert.deepEqual(route.decorator, { operation: 'reviews.default.svc.cluster.local:9080/*' });
    assert.deepEqual(route.metadata, {
      filter_metadata: { istio: { fields: { config: { string_value: '/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews' } } } },
    });
  });

  test('reviews: everyone else 50/50 between v1 and v3, and nothing after the catch-all', () => {
    const routes = vhost(config, 'reviews.default.svc.cluster.local:9080').routes!;
    assert.equal(routes.length, 2);
    const route = routes[1]!;
    // A rule without match: Istio's TranslateRouteMatch(nil), prefix only.
    assert.deepEqual(route.match, { prefix: '/' });
    assert.equal(route.route?.cluster, undefined);
    assert.deepEqual(route.route?.weighted_clusters, {
      clusters: [
        { name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: { value: 50 } },
        { name: 'outbound|9080|v3|reviews.default.svc.cluster.local', weight: { value: 50 } },
      ],
    });
    // Several clusters: the operation names the VirtualService and the listener port.
    assert.deepEqual(route.decorator, { operation: 'reviews:9080/*' });
  });

  test('ratings: a 7 s delay for jason and a 500 for 10 %, as fault filter per-route config', () => {
    const routes = vhost(config, 'ratings.default.svc.cluster.local:9080').routes!;
    assert.deepEqual(routes.map((r) => r.name), ['jason-delay', 'abort']);
    const delay = unpackAny<HTTPFault>(routes[0]!.typed_per_filter_config!['envoy.filters.http.fault']!, 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault');
    assert.deepEqual(delay, { delay: { fixed_delay: { seconds: 7 }, percentage: { numerator: 1000000, denominator: 'MILLION' } } });
    const abort = unpackAny<HTTPFault>(routes[1]!.typed_per_filter_config!['envoy.filters.http.fault']!);
    assert.deepEqual(abort, { abort: { http_status: 500, percentage: { numerator: 100000, denominator: 'MILLION' } } });
    assert.equal(routes[0]!.route?.cluster, 'outbound|9080|v1|ratings.default.svc.cluster.local');
    assert.deepEqual(Object.keys(routes[0]!.typed_per_filter_config!), ['envoy.filters.http.fault']);
  });

  test('allow_any passes unknown hosts through without timeout; REGISTRY_ONLY answers 502', () => {
    assert.deepEqual(vhost(config, 'allow_any'), {
      name: 'allow_any',
      domains: ['*'],
      routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster', timeout: { seconds: 0 }, max_grpc_timeout: { seconds: 0 } } }],
      include_request_attempt_count: true,
    });
    const closed = buildOutboundRouteConfiguration('9080', 9080, bookinfoEntries, { ...context, mesh: { ...DEFAULT_MESH_CONFIG, outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    assert.deepEqual(vhost(closed, 'block_all').routes, [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }]);
    const sidecarOverride = buildOutboundRouteConfiguration('9080', 9080, bookinfoEntries, { ...context, outboundTrafficPolicy: 'REGISTRY_ONLY' });
    assert.ok(sidecarOverride.virtual_hosts?.some((v) => v.name === 'block_all'));
  });

  test('encodes, and the xDS client\'s RDS validation accepts it', () => {
    const decoded = assertRouteConfigOnTheWire(config);
    assert.equal(decoded.virtual_hosts?.length, 5);
    assert.equal(decoded.virtual_hosts?.[2]?.routes?.[1]?.route?.weighted_clusters?.clusters?.[0]?.weight?.value, 50);
  });

  test('a domain served by an earlier virtual host is not repeated (Envoy refuses duplicates)', () => {
    const twin = service('reviews', [http9080], { addresses: ['10.96.0.20'], hostname: 'reviews.default.svc.cluster.local' });
    const dup = buildOutboundRouteConfiguration('9080', 9080, [{ service: reviews }, { service: { ...twin, hostname: 'reviews.default.svc.cluster.local.' } }], context);
    assertRouteConfigOnTheWire(dup);
    const second = dup.virtual_hosts![1]!;
    assert.ok(!second.domains!.includes('10.96.0.20'));
  });
});

describe('VirtualService http rules → Envoy routes', () => {
  test('uri exact, prefix, regex; ignoreUriCase; methods, authority and query parameters', () => {
    const routes = routesOf([
      {
        match: [
          { uri: { exact: '/login' }, method: { exact: 'POST' } },
          { uri: { prefix: '/api' }, ignoreUriCase: true, queryParams: { debug: { exact: '1' }, trace: {} } },
          { uri: { regex: '^/v[0-9]+/.*' }, authority: { prefix: 'reviews' } },
        ],
        route: [{ destination: { host: 'reviews' } }],
      },
    ]);
    assert.deepEqual(routes.map((r) => r.match), [
      { path: '/login', case_sensitive: { value: true }, headers: [{ name: ':method', string_match: { exact: 'POST' } }] },
      {
        prefix: '/api',
        case_sensitive: { value: false },
        query_parameters: [
          { name: 'debug', string_match: { exact: '1' } },
          { name: 'trace', present_match: true },
        ],
      },
      { safe_regex: { regex: '^/v[0-9]+/.*' }, case_sensitive: { value: true }, headers: [{ name: ':authority', string_match: { prefix: 'reviews' } }] },
    ]);
    assert.deepEqual(routes.map((r) => r.decorator?.operation), [
      'reviews.default.svc.cluster.local:9080/login',
      'reviews.default.svc.cluster.local:9080/api*',
      'reviews.default.svc.cluster.local:9080^/v[0-9]+/.*',
    ]);
  });

  test('headers: exact/prefix/regex/present sorted by name; withoutHeaders inverted', () => {
    const [route] = routesOf([
      {
        match: [
          {
            headers: { 'x-b': { prefix: 'pre' }, 'x-a': { regex: 'a+' }, 'x-c': {}, 'x-star': { regex: '*' } },
            withoutHeaders: { 'x-ban': { exact: 'yes' }, 'x-any': {} },
          },
        ],
        route: [{ destination: { host: 'reviews' } }],
      },
    ]);
    assert.deepEqual(route!.match!.headers, [
      { name: 'x-a', string_match: { safe_regex: { regex: 'a+' } } },
      { name: 'x-any', present_match: true, invert_match: true },
      { name: 'x-b', string_match: { prefix: 'pre' } },
      { name: 'x-ban', string_match: { exact: 'yes' }, invert_match: true, treat_missing_header_as_empty: true },
      { name: 'x-c', present_match: true },
      { name: 'x-star', present_match: true },
    ]);
  });

  test('a match for another port is dropped; when nothing is left the default route serves', () => {
    const routes = routesOf([
      { match: [{ port: 8080, uri: { prefix: '/a' } }, { port: 9080, uri: { prefix: '/b' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
    ]);
    assert.deepEqual(routes.map((r) => r.match?.prefix), ['/b']);
    const fallback = routesOf([{ match: [{ port: 8080 }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] }]);
    assert.deepEqual(fallback.map((r) => r.name), ['default']);
  });

  test('sourceLabels and gateways are decided at generation against the proxy and the gateway', () => {
    const http: HTTPRoute[] = [
      { match: [{ sourceLabels: { app: 'productpage' }, uri: { prefix: '/pp' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
      { match: [{ sourceLabels: { app: 'ratings' }, uri: { prefix: '/rt' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
      { match: [{ gateways: ['mesh'], uri: { prefix: '/mesh' } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
      { match: [{ gateways: ['bookinfo-gateway'], uri: { prefix: '/gw' } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
      { match: [{ sourceNamespace: 'other', uri: { prefix: '/ns' } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
    ];
    assert.deepEqual(routesOf(http).map((r) => r.match?.prefix), ['/pp', '/mesh']);
    // The same rules built for the gateway `default/bookinfo-gateway` keep only its match.
    const vs = virtualService('reviews', { hosts: ['reviews'], gateways: ['mesh', 'bookinfo-gateway'], http });
    const config = buildOutboundRouteConfiguration('9080', 9080, [{ service: reviews, virtualService: vs }], { ...context, gateway: 'default/bookinfo-gateway' });
    assert.deepEqual(vhost(config, 'reviews.default.svc.cluster.local:9080').routes!.map((r) => r.match?.prefix), ['/pp', '/gw']);
  });

  test('a VirtualService bound only to a gateway does not apply to sidecars', () => {
    const vs = virtualService('reviews', { hosts: ['reviews'], gateways: ['bookinfo-gateway'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] });
    const config = buildOutboundRouteConfiguration('9080', 9080, [{ service: reviews, virtualService: vs }], context);
    assert.equal(vhost(config, 'reviews.default.svc.cluster.local:9080').routes![0]!.name, 'default');
  });

  test('destination port: explicit, else the service\'s only port, else the listener port', () => {
    const multi = service('multi', [http9080, { name: 'admin', number: 9090, protocol: 'HTTP' }]);
    const routes = routesOf(
      [
        { match: [{ uri: { prefix: '/x' } }], route: [{ destination: { host: 'reviews', port: { number: 9999 } } }] },
        { match: [{ uri: { prefix: '/y' } }], route: [{ destination: { host: 'ratings.default.svc.cluster.local' } }] },
        { match: [{ uri: { prefix: '/z' } }], route: [{ destination: { host: 'multi' } }] },
        { route: [{ destination: { host: 'unknown.example.com' } }] },
      ],
      { services: (h: string) => (h === ratings.hostname ? service('ratings', [{ name: 'http', number: 7070, protocol: 'HTTP' }]) : undefined) },
      [{ service: multi }],
    );
    assert.deepEqual(routes.map((r) => r.route?.cluster), [
      'outbound|9999||reviews.default.svc.cluster.local',
      'outbound|7070||ratings.default.svc.cluster.local',
      'outbound|9080||multi.default.svc.cluster.local',
      'outbound|9080||unknown.example.com',
    ]);
  });

  test('zero-weight destinations are left out of weighted_clusters', () => {
    const [route] = routesOf([
      { route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 100 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 0 }, { destination: { host: 'reviews', subset: 'v3' } }] },
    ]);
    assert.deepEqual(route!.route?.weighted_clusters, { clusters: [{ name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: { value: 100 } }] });
  });

  test('redirect: uri, authority, 301 by default, other codes, scheme and port (no :443 for https)', () => {
    const routes = routesOf([
      { match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', authority: 'new.example.com' } },
      { match: [{ uri: { exact: '/tmp' } }], redirect: { uri: '/t', redirectCode: 307 } },
      { match: [{ uri: { exact: '/secure' } }], redirect: { scheme: 'https', port: 443 } },
      { match: [{ uri: { exact: '/port' } }], redirect: { port: 8443, redirectCode: 302 } },
      { match: [{ uri: { exact: '/same' } }], redirect: { derivePort: 'FROM_REQUEST_PORT', authority: 'x' } },
    ]);
    assert.deepEqual(routes.map((r) => r.redirect), [
      { host_redirect: 'new.example.com', path_redirect: '/new', response_code: 'MOVED_PERMANENTLY' },
      { path_redirect: '/t', response_code: 'TEMPORARY_REDIRECT' },
      { scheme_redirect: 'https', response_code: 'MOVED_PERMANENTLY' },
      { port_redirect: 8443, response_code: 'FOUND' },
      { host_redirect: 'x', port_redirect: 9080, response_code: 'MOVED_PERMANENTLY' },
    ]);
    assert.ok(routes.every((r) => r.route === undefined));
    assert.equal(routes[0]!.decorator?.operation, 'reviews:9080/old');
  });

  test('rewrite: uri prefix, uriRegexRewrite, authority; timeout', () => {
    const routes = routesOf([
      { match: [{ uri: { prefix: '/v1' } }], rewrite: { uri: '/v2', authority: 'reviews.internal' }, timeout: '1.5s', route: [{ destination: { host: 'reviews' } }] },
      { match: [{ uri: { prefix: '/r' } }], rewrite: { uriRegexRewrite: { match: '^/r/(.*)$', rewrite: '/\\1' } }, route: [{ destination: { host: 'reviews' } }] },
    ]);
    assert.equal(routes[0]!.route?.prefix_rewrite, '/v2');
    assert.equal(routes[0]!.route?.host_rewrite_literal, 'reviews.internal');
    assert.deepEqual(routes[0]!.route?.timeout, { seconds: 1, nanos: 500000000 });
    assert.deepEqual(routes[0]!.route?.max_grpc_timeout, { seconds: 1, nanos: 500000000 });
    assert.deepEqual(routes[1]!.route?.regex_rewrite, { pattern: { regex: '^/r/(.*)$' }, substitution: '/\\1' });
    assert.equal(routes[1]!.route?.prefix_rewrite, undefined);
  });

  test('retries: attempts, perTryTimeout, retryOn with status codes; attempts 0 disables them', () => {
    const routes = routesOf([
      { match: [{ uri: { prefix: '/a' } }], retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx, 503,gateway-error' }, route: [{ destination: { host: 'reviews' } }] },
      { match: [{ uri: { prefix: '/b' } }], retries: { attempts: 0 }, route: [{ destination: { host: 'reviews' } }] },
      { match: [{ uri: { prefix: '/c' } }], retries: { attempts: 4, retryOn: '502', retryIgnorePreviousHosts: false }, route: [{ destination: { host: 'reviews' } }] },
    ]);
    assert.deepEqual(withoutPredicate(routes[0]!.route?.retry_policy), {
      retry_on: '5xx,gateway-error,retriable-status-codes',
      num_retries: { value: 3 },
      host_selection_retry_max_attempts: 5,
      retriable_status_codes: [503],
      per_try_timeout: { seconds: 2 },
    });
    assert.equal(routes[1]!.route?.retry_policy, undefined);
    assert.deepEqual(routes[2]!.route?.retry_policy, {
      retry_on: 'retriable-status-codes',
      num_retries: { value: 4 },
      host_selection_retry_max_attempts: 5,
      retriable_status_codes: [502],
    });
    assert.deepEqual(withoutPredicate(defaultRetryPolicy()), DEFAULT_RETRY);
    // MeshConfig with no default retries: the default route has none either.
    const noRetries = buildOutboundRouteConfiguration('9080', 9080, [{ service: details }], { ...context, mesh: { ...MESH, defaultRetryAttempts: 0 } });
    assert.equal(noRetries.virtual_hosts![0]!.routes![0]!.route?.retry_policy, undefined);
  });

  test('retries: retryRemoteLocalities → previous_priorities (update_frequency 2), backoff → retry_back_off; the proxy accepts both', () => {
    const routes = routesOf([
      { match: [{ uri: { prefix: '/r' } }], retries: { attempts: 3, retryRemoteLocalities: true, backoff: '0.1s', retryIgnorePreviousHosts: true }, route: [{ destination: { host: 'reviews' } }] },
      { match: [{ uri: { prefix: '/l' } }], retries: { attempts: 3, retryRemoteLocalities: false }, route: [{ destination: { host: 'reviews' } }] },
    ]);
    const policy = routes[0]!.route!.retry_policy!;
    assert.equal(policy.retry_priority?.name, 'envoy.retry_priorities.previous_priorities');
    const config = unpackAny<envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig>(
      policy.retry_priority!.typed_config!,
      'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
    );
    assert.equal(config.update_frequency, 2);
    assert.deepEqual(policy.retry_back_off, { base_interval: { seconds: 0, nanos: 100_000_000 } });
    assert.equal(policy.retry_host_predicate?.length, 1);
    assert.equal(routes[1]!.route!.retry_policy!.retry_priority, undefined);
    assert.doesNotThrow(() => compileRouteConfiguration({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes }] }));
  });

  test('mirror and mirrors with percentages → request_mirror_policies runtime_fraction', () => {
    const routes = routesOf([
      { match: [{ uri: { prefix: '/a' } }], mirror: { host: 'reviews', subset: 'v3' }, route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
      { match: [{ uri: { prefix: '/b' } }], mirror: { host: 'ratings' }, mirrorPercentage: { value: 25 }, route: [{ destination: { host: 'reviews' } }] },
      { match: [{ uri: { prefix: '/c' } }], mirror: { host: 'ratings' }, mirrorPercentage: { value: 0 }, route: [{ destination: { host: 'reviews' } }] },
      {
        match: [{ uri: { prefix: '/d' } }],
        mirrors: [{ destination: { host: 'ratings', subset: 'v2' }, percentage: { value: 12.5 } }, { destination: { host: 'details' } }],
        route: [{ destination: { host: 'reviews' } }],
      },
    ], {}, [{ service: ratings }, { service: details }]);
    assert.deepEqual(routes[0]!.route?.request_mirror_policies, [
      { cluster: 'outbound|9080|v3|reviews.default.svc.cluster.local', runtime_fraction: { default_value: { numerator: 100, denominator: 'HUNDRED' } }, trace_sampled: { value: false } },
    ]);
    assert.deepEqual(routes[1]!.route?.request_mirror_policies?.[0]?.runtime_fraction, { default_value: { numerator: 250000, denominator: 'MILLION' } });
    assert.equal(routes[2]!.route?.request_mirror_policies, undefined);
    assert.deepEqual(routes[3]!.route?.request_mirror_policies?.map((m) => [m.cluster, m.runtime_fraction?.default_value]), [
      ['outbound|9080|v2|ratings.default.svc.cluster.local', { numerator: 125000, denominator: 'MILLION' }],
      ['outbound|9080||details.default.svc.cluster.local', { numerator: 100, denominator: 'HUNDRED' }],
    ]);
  });

  test('headers: set overwrites, add appends, remove; Host in set becomes host_rewrite_literal; per-destination headers', () => {
    const routes = routesOf([
      {
        match: [{ uri: { prefix: '/a' } }],
        headers: {
          request: { set: { 'x-b': '2', 'x-a': '1', host: 'reviews.internal' }, add: { 'x-trace': 't' }, remove: ['x-secret', ':path'] },
          response: { set: { 'cache-control': 'no-store' }, remove: ['server'] },
        },
        route: [{ destination: { host: 'reviews' }, headers: { response: { add: { 'x-from': 'reviews' } } } }],
      },
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 90, headers: { request: { set: { 'x-version': 'v1' } } } },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 10 },
        ],
      },
    ]);
    const [first, second] = routes;
    assert.deepEqual(first!.request_headers_to_add, [
      { header: { key: 'x-a', value: '1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-b', value: '2' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-trace', value: 't' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
    ]);
    assert.deepEqual(first!.request_headers_to_remove, ['x-secret']);
    assert.deepEqual(first!.response_headers_to_add, [
      { header: { key: 'cache-control', value: 'no-store' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-from', value: 'reviews' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
    ]);
    assert.deepEqual(first!.response_headers_to_remove, ['server']);
    assert.equal(first!.route?.host_rewrite_literal, 'reviews.internal');
    assert.deepEqual(second!.route?.weighted_clusters?.clusters?.[0]?.request_headers_to_add, [
      { header: { key: 'x-version', value: 'v1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
  });

  test('corsPolicy → envoy.filters.http.cors CorsPolicy per route', () => {
    const [route] = routesOf([
      {
        corsPolicy: {
          allowOrigins: [{ exact: 'https://a.example.com' }, { regex: 'https://.*\\.b\\.com' }],
          allowMethods: ['GET', 'POST'],
          allowHeaders: ['x-a', 'x-b'],
          exposeHeaders: ['x-c'],
          maxAge: '24h',
          allowCredentials: true,
        },
        route: [{ destination: { host: 'reviews' } }],
      },
    ]);
    const any = route!.typed_per_filter_config!['envoy.filters.http.cors']!;
    assert.equal(any.type_url, 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy');
    assert.deepEqual(unpackAny<CorsPolicy>(any), {
      allow_origin_string_match: [{ exact: 'https://a.example.com' }, { safe_regex: { regex: 'https://.*\\.b\\.com' } }],
      allow_methods: 'GET,POST',
      allow_headers: 'x-a,x-b',
      expose_headers: 'x-c',
      max_age: '86400',
      allow_credentials: { value: true },
      // HUNDRED is the enum's zero value, which proto3 does not put on the wire.
      filter_enabled: { default_value: { numerator: 100 } },
      forward_not_matching_preflights: { value: true },
    });
  });

  test('directResponse and named matches (`rule.match`)', () => {
    const routes = routesOf([
      { name: 'rule', match: [{ name: 'health', uri: { exact: '/healthz' } }], directResponse: { status: 200, body: { string: 'ok' } } },
      { route: [{ destination: { host: 'reviews' } }] },
    ]);
    assert.equal(routes[0]!.name, 'rule.health');
    assert.deepEqual(routes[0]!.direct_response, { status: 200, body: { inline_string: 'ok' } });
  });
});

describe('inbound and explicit route configurations', () => {
  test('inbound|9080||: one * virtual host to the inbound cluster, no timeout or retries', () => {
    const config = buildInboundRouteConfiguration('inbound|9080||', 9080, [instance(productpage, http9080)], context);
    assert.deepEqual(config, {
      name: 'inbound|9080||',
      virtual_hosts: [
        {
          name: 'inbound|http|9080',
          domains: ['*'],
          routes: [
            {
              name: 'default',
              match: { prefix: '/' },
              route: {
                cluster: 'inbound|9080||',
                timeout: { seconds: 0 },
                max_stream_duration: { max_stream_duration: { seconds: 0 }, grpc_timeout_header_max: { seconds: 0 } },
              },
              decorator: { operation: 'productpage.default.svc.cluster.local:9080/*' },
            },
          ],
        },
      ],
      validate_clusters: { value: false },
    });
    assertRouteConfigOnTheWire(config);
  });

  test('outbound_http holds every HTTP port of every service, then allow_any', () => {
    const multi = service('multi', [http9080, { name: 'admin', number: 9090, protocol: 'HTTP' }, { name: 'db', number: 5432, protocol: 'TCP' }]);
    const config = buildExplicitRouteConfiguration([...bookinfoEntries, { service: multi }], context);
    assert.equal(config.name, 'outbound_http');
    assert.deepEqual(config.virtual_hosts?.map((v) => v.name), [
      'productpage.default.svc.cluster.local:9080',
      'details.default.svc.cluster.local:9080',
      'reviews.default.svc.cluster.local:9080',
      'ratings.default.svc.cluster.local:9080',
      'multi.default.svc.cluster.local:9080',
      'multi.default.svc.cluster.local:9090',
      'allow_any',
    ]);
    // The second port of multi cannot claim the bare names again.
    assert.deepEqual(vhost(config, 'multi.default.svc.cluster.local:9090').domains, [
      'multi.default.svc.cluster.local:9090',
      'multi:9090',
      'multi.default:9090',
      'multi.default.svc:9090',
    ]);
    assert.equal(vhost(config, 'multi.default.svc.cluster.local:9090').routes![0]!.route?.cluster, 'outbound|9090||multi.default.svc.cluster.local');
    assert.equal(vhost(config, 'reviews.default.svc.cluster.local:9080').routes!.length, 2);
    assertRouteConfigOnTheWire(config);
  });
});
