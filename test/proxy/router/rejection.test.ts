import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XdsValidationError } from '../../../src/common/errors.js';
import { packAny } from '../../../src/xds/codec.js';
import { compileRouteConfiguration, type CompileRouteOptions } from '../../../src/proxy/router/compile-route-table.js';
import { configWith, type Route, type RouteConfiguration } from './support.js';

function rejects(config: RouteConfiguration, expected: string[], options?: CompileRouteOptions): void {
  assert.throws(
    () => compileRouteConfiguration(config, options),
    (err: unknown) => {
      assert.ok(err instanceof XdsValidationError);
      assert.equal(err.code, 'TRELLIS_XDS_INVALID_RESOURCE');
      assert.deepEqual(err.details, expected);
      return true;
    },
  );
}

const ok = { match: { prefix: '/' }, route: { cluster: 'c' } };
const routes = (...r: Route[]) => configWith([ok, ok, ...r]);

test('bad regexes are refused with the field path', () => {
  rejects(routes({ match: { safe_regex: { regex: '/(a' } }, route: { cluster: 'c' } }), [
    'virtual_hosts[0].routes[2].match.safe_regex.regex: does not compile: Invalid regular expression: /^(?:/(a)$/: Unterminated group',
  ]);
  rejects(routes({ match: { safe_regex: { regex: '(a)\\1' } }, route: { cluster: 'c' } }), ['virtual_hosts[0].routes[2].match.safe_regex.regex: does not compile: backreference \\1 is not supported by RE2']);
  rejects(routes({ match: { safe_regex: { regex: 'a(?=b)' } }, route: { cluster: 'c' } }), ['virtual_hosts[0].routes[2].match.safe_regex.regex: does not compile: lookaround assertions are not supported by RE2']);
  rejects(routes({ match: { prefix: '/', headers: [{ name: 'x', string_match: { safe_regex: { regex: '[' } } }] }, route: { cluster: 'c' } }), [
    'virtual_hosts[0].routes[2].match.headers[0].string_match.safe_regex.regex: does not compile: Invalid regular expression: /^(?:[)$/: Unterminated character class',
  ]);
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: 'a' }, substitution: '\\1' } } }), [
    'virtual_hosts[0].routes[2].route.regex_rewrite.substitution: refers to \\1 but the pattern has 0 capture group(s)',
  ]);
});

test('unsupported fields and actions are refused, never ignored', () => {
  rejects(routes({ match: { prefix: '/', tls_context: {} }, route: { cluster: 'c', hedge_policy: {}, rate_limits: [{}] } }), [
    'virtual_hosts[0].routes[2].match.tls_context: not supported by Trellis',
    'virtual_hosts[0].routes[2].route.hedge_policy: not supported by Trellis',
    'virtual_hosts[0].routes[2].route.rate_limits: not supported by Trellis',
  ]);
  rejects(routes({ match: { prefix: '/' }, non_forwarding_action: {} }), ['virtual_hosts[0].routes[2].non_forwarding_action: not supported by Trellis']);
  rejects(routes({ match: { prefix: '/' }, route: { cluster_specifier_plugin: 'p' } }), [
    'virtual_hosts[0].routes[2].route.cluster_specifier_plugin: not supported by Trellis',
    'virtual_hosts[0].routes[2].route: one of cluster, cluster_header, weighted_clusters is required',
  ]);
  rejects(routes({ match: { prefix: '/', headers: [{ name: 'x', string_match: { custom: { name: 'c' } } }] }, route: { cluster: 'c' } }), [
    'virtual_hosts[0].routes[2].match.headers[0].string_match.custom: not supported by Trellis',
  ]);
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx,gateway-eror', retry_priority: { name: 'envoy.retry_priorities.other' } } } }), [
    'virtual_hosts[0].routes[2].route.retry_policy.retry_on: unsupported retry condition "gateway-eror" (expected one of 5xx, gateway-error, reset, reset-before-request, connect-failure, envoy-ratelimited, retriable-4xx, refused-stream, retriable-status-codes, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)',
    'virtual_hosts[0].routes[2].route.retry_policy.retry_priority: unsupported retry priority "envoy.retry_priorities.other" (Trellis supports envoy.retry_priorities.previous_priorities)',
  ]);
  // previous_priorities needs its config message with a positive update_frequency, as Envoy's factory and validation do.
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_priority: { name: 'envoy.retry_priorities.previous_priorities' } } } }), [
    'virtual_hosts[0].routes[2].route.retry_policy.retry_priority.typed_config: expected type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig, got (none)',
  ]);
  const previousPriorities = (updateFrequency: number) => ({
    name: 'envoy.retry_priorities.previous_priorities',
    typed_config: packAny('envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', { update_frequency: updateFrequency }),
  });
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_priority: previousPriorities(0) } } }), [
    'virtual_hosts[0].routes[2].route.retry_policy.retry_priority.typed_config.update_frequency: must be greater than 0, got 0',
  ]);
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_priority: previousPriorities(-2) } } }), [
    'virtual_hosts[0].routes[2].route.retry_policy.retry_priority.typed_config.update_frequency: must be greater than 0, got -2',
  ]);
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_priority: { name: 'envoy.retry_priorities.previous_priorities', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', value: new Uint8Array([0x08]) } } } } }), [
    'virtual_hosts[0].routes[2].route.retry_policy.retry_priority.typed_config: malformed envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig: index out of range: 1 + 1 > 1',
  ]);
  assert.doesNotThrow(() => compileRouteConfiguration(routes({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_priority: previousPriorities(2) } } })));
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_host_predicate: [{ name: 'envoy.retry_host_predicates.omit_canary_hosts' }] } } }), [
    'virtual_hosts[0].routes[2].route.retry_policy.retry_host_predicate[0]: unsupported retry host predicate "envoy.retry_host_predicates.omit_canary_hosts" (Trellis supports envoy.retry_host_predicates.previous_hosts)',
  ]);
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c', hash_policy: [{ filter_state: { key: 'k' } }] } }), ['virtual_hosts[0].routes[2].route.hash_policy[0].filter_state: not supported by Trellis']);
  rejects(configWith([ok], { virtual_clusters: [{ name: 'v' }] }, { vhds: {} }), ['vhds: not supported by Trellis', 'virtual_hosts[0].virtual_clusters: not supported by Trellis']);
  rejects(routes({ match: { prefix: '/' }, direct_response: { status: 200, body: { filename: '/etc/passwd' } } }), ['virtual_hosts[0].routes[2].direct_response.body.filename: not supported by Trellis']);
});

test('structural problems: missing match/action, weights, status, header names, substitutions, per-filter config', () => {
  rejects(routes({ route: { cluster: 'c' } }), ['virtual_hosts[0].routes[2].match: a match is required']);
  rejects(routes({ match: {} , route: { cluster: 'c' } }), ['virtual_hosts[0].routes[2].match: one of prefix, path, safe_regex, path_separated_prefix is required']);
  rejects(routes({ match: { prefix: '/' } }), ['virtual_hosts[0].routes[2]: one of route, redirect, direct_response is required']);
  rejects(routes({ match: { path_separated_prefix: '/api/' }, route: { cluster: 'c' } }), ['virtual_hosts[0].routes[2].match.path_separated_prefix: must not be empty, contain ? or #, or end in / (got "/api/")']);
  rejects(routes({ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: {} }, { name: 'b' }, { weight: { value: 1 } }] } } }), [
    'virtual_hosts[0].routes[2].route.weighted_clusters.clusters[1].weight: is missing',
    'virtual_hosts[0].routes[2].route.weighted_clusters.clusters[2]: at least one of name or cluster_header need to be specified',
  ]);
  rejects(routes({ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: {} }] } } }), [
    'virtual_hosts[0].routes[2].route.weighted_clusters: sum of weights in the weighted_cluster must be greater than 0',
  ]);
  rejects(routes({ match: { prefix: '/' }, direct_response: { status: 600 } }), ['virtual_hosts[0].routes[2].direct_response.status: must be an HTTP status in [100, 599] (got 600)']);
  rejects(routes({ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'x'.repeat(4097) } } }), [
    'virtual_hosts[0].routes[2].direct_response.body: response body size is 4097 bytes; maximum is 4096',
  ]);
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c' }, request_headers_to_add: [{ header: { key: ':path', value: '/x' } }, { header: { key: 'x', value: '%FOO%' } }], request_headers_to_remove: ['Host'] }), [
    'virtual_hosts[0].routes[2].request_headers_to_remove[0]: :-prefixed or host headers may not be removed',
    'virtual_hosts[0].routes[2].request_headers_to_add[0].header.key: :-prefixed or host headers may not be modified',
    'virtual_hosts[0].routes[2].request_headers_to_add[1].header.value: unsupported substitution %FOO% (Trellis supports %DOWNSTREAM_REMOTE_ADDRESS%, %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, %DOWNSTREAM_LOCAL_ADDRESS%, %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%, %UPSTREAM_REMOTE_ADDRESS%, %UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, %PROTOCOL%, %HOSTNAME%, %START_TIME%, %REQ%, %RESP%)',
  ]);
  rejects(routes({ match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.fault': { type_url: 'type.googleapis.com/x', value: new Uint8Array() } } }), [
    'virtual_hosts[0].routes[2].typed_per_filter_config["envoy.filters.http.fault"]: no HTTP filter takes per-route config here (filter envoy.filters.http.fault)',
  ]);
  rejects(
    routes({ match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { f: { type_url: 'type.googleapis.com/x', value: new Uint8Array() } } }),
    ['virtual_hosts[0].routes[2].typed_per_filter_config["f"]: abort.http_status: must be in [200, 600)'],
    {
      perFilterConfig: () => {
        throw new XdsValidationError(['abort.http_status: must be in [200, 600)']);
      },
    },
  );
});

test('validate_clusters checks cluster names against the cluster manager when asked', () => {
  const config = configWith([{ match: { prefix: '/' }, route: { cluster: 'known', request_mirror_policies: [{ cluster: 'ghost' }] } }], {}, { validate_clusters: { value: true } });
  rejects(config, ["virtual_hosts[0].routes[0].route.request_mirror_policies[0].cluster: unknown cluster 'ghost'"], { clusterExists: (n) => n === 'known' });
  rejects(config, ['validate_clusters: cluster validation was asked for but no cluster list is available here']);
  assert.ok(compileRouteConfiguration({ ...config, validate_clusters: {} }));
});

test('every problem in one configuration is reported at once', () => {
  assert.throws(
    () => compileRouteConfiguration(configWith([{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }, { match: { prefix: '/' }, direct_response: { status: 1 } }])),
    (err: XdsValidationError) => err.details.length === 2,
  );
});
