import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteConfiguration } from '../../../src/proxy/router/compile-route-table.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { configWith, request } from './support.js';

type RouteMatch = envoy.config.route.v3.RouteMatch;
type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;

/** Whether a single route with `match` matches the request. */
function matches(match: RouteMatch, path: string, headers: Record<string, string | string[]> = {}, random = 0): boolean {
  const table = compileRouteConfiguration(configWith([{ name: 'r', match, direct_response: { status: 200 } }]));
  return table.match(request(path, headers), random) !== undefined;
}

test('path matches: prefix, path, safe_regex (full match), path_separated_prefix, case_sensitive', () => {
  const cases: Array<[RouteMatch, string, boolean]> = [
    [{ prefix: '/api' }, '/api/v1', true],
    [{ prefix: '/api' }, '/apiv1', true],
    [{ prefix: '/api' }, '/API/v1', false],
    [{ prefix: '/api', case_sensitive: {} }, '/API/v1', true], // BoolValue false decodes as {}
    [{ prefix: '/api', case_sensitive: { value: true } }, '/API/v1', false],
    [{ prefix: '/a?b' }, '/a?b=1', false], // the query is not part of the matched path
    [{ path: '/exact' }, '/exact', true],
    [{ path: '/exact' }, '/exact?x=1', true],
    [{ path: '/exact' }, '/exact/', false],
    [{ path: '/Exact', case_sensitive: { value: false } }, '/eXACT', true],
    [{ safe_regex: { regex: '/v[0-9]+/.*' } }, '/v12/items', true],
    [{ safe_regex: { regex: '/v[0-9]+' } }, '/v12/items', false], // full match, not search
    [{ safe_regex: { regex: '/v[0-9]+' } }, '/v12?q=1', true],
    [{ safe_regex: { regex: '/(?P<ver>v\\d)' } }, '/v1', true], // RE2 named group
    [{ safe_regex: { regex: '(?i)/abc' } }, '/ABC', true], // RE2 leading flag
    [{ path_separated_prefix: '/api/dev' }, '/api/dev', true],
    [{ path_separated_prefix: '/api/dev' }, '/api/dev/', true],
    [{ path_separated_prefix: '/api/dev' }, '/api/dev/v1', true],
    [{ path_separated_prefix: '/api/dev' }, '/api/dev?param=true', true],
    [{ path_separated_prefix: '/api/dev' }, '/api/developer', false],
  ];
  for (const [match, path, expected] of cases) assert.equal(matches(match, path), expected, `${JSON.stringify(match)} ${path}`);
});

test('ignore_path_parameters_in_path_matching cuts the path at the first ;', () => {
  const config = configWith([{ match: { path: '/a/b' }, direct_response: { status: 200 } }], {}, { ignore_path_parameters_in_path_matching: true });
  const table = compileRouteConfiguration(config);
  assert.ok(table.match(request('/a/b;jsessionid=1'), 0));
  assert.equal(compileRouteConfiguration(configWith(config.virtual_hosts![0]!.routes!)).match(request('/a/b;jsessionid=1'), 0), undefined);
});

test('header matchers: each kind, invert, present, range, missing headers, repeated values', () => {
  const h = (m: HeaderMatcher, headers: Record<string, string | string[]>): boolean => matches({ prefix: '/', headers: [m] }, '/', headers);
  const cases: Array<[HeaderMatcher, Record<string, string | string[]>, boolean]> = [
    [{ name: 'x-a', string_match: { exact: 'v1' } }, { 'x-a': 'v1' }, true],
    [{ name: 'x-a', string_match: { exact: 'v1' } }, { 'x-a': 'V1' }, false],
    [{ name: 'x-a', string_match: { exact: 'v1', ignore_case: true } }, { 'x-a': 'V1' }, true],
    [{ name: 'X-A', string_match: { prefix: 'ab' } }, { 'x-a': 'abc' }, true],
    [{ name: 'x-a', string_match: { suffix: 'bc' } }, { 'x-a': 'abc' }, true],
    [{ name: 'x-a', string_match: { contains: 'B', ignore_case: true } }, { 'x-a': 'abc' }, true],
    [{ name: 'x-a', string_match: { safe_regex: { regex: '\\d{3}' } } }, { 'x-a': '123' }, true],
    [{ name: 'x-a', string_match: { safe_regex: { regex: '\\d{3}' } } }, { 'x-a': '1234' }, false],
    [{ name: 'x-a', string_match: { safe_regex: { regex: '\\d{3}' } }, invert_match: true }, { 'x-a': '1234' }, true],
    // legacy fields
    [{ name: 'x-a', exact_match: 'v1' }, { 'x-a': 'v1' }, true],
    [{ name: 'x-a', prefix_match: 'v' }, { 'x-a': 'v1' }, true],
    [{ name: 'x-a', suffix_match: '1' }, { 'x-a': 'v1' }, true],
    [{ name: 'x-a', contains_match: 'zz' }, { 'x-a': 'v1' }, false],
    [{ name: 'x-a', safe_regex_match: { regex: 'v.' } }, { 'x-a': 'v1' }, true],
    // range [start, end)
    [{ name: 'x-n', range_match: { start: -10, end: 0 } }, { 'x-n': '-1' }, true],
    [{ name: 'x-n', range_match: { start: -10, end: 0 } }, { 'x-n': '0' }, false],
    [{ name: 'x-n', range_match: { start: -10, end: 0 } }, { 'x-n': '-1' }, true],
    [{ name: 'x-n', range_match: { start: -10, end: 0 }, invert_match: true }, { 'x-n': '-1' }, false],
    [{ name: 'x-n', range_match: { start: 0, end: 10 } }, { 'x-n': 'abc' }, false],
    // present
    [{ name: 'x-p', present_match: true }, { 'x-p': '' }, true],
    [{ name: 'x-p', present_match: true }, {}, false],
    [{ name: 'x-p' }, { 'x-p': 'anything' }, true], // no specifier: presence
    [{ name: 'x-p', present_match: false }, {}, true],
    [{ name: 'x-p', present_match: false }, { 'x-p': 'v' }, false],
    [{ name: 'x-p', present_match: true, invert_match: true }, {}, true],
    [{ name: 'x-p', present_match: true, invert_match: true }, { 'x-p': 'v' }, false],
    // missing header: value matchers fail, inverted or not, unless treat_missing_header_as_empty
    [{ name: 'x-m', string_match: { exact: 'v' } }, {}, false],
    [{ name: 'x-m', string_match: { exact: 'v' }, invert_match: true }, {}, false],
    [{ name: 'x-m', string_match: { exact: 'v' }, invert_match: true, treat_missing_header_as_empty: true }, {}, true],
    [{ name: 'x-m', string_match: { exact: '' }, treat_missing_header_as_empty: true }, {}, true],
    // repeated values are joined with ','
    [{ name: 'x-r', string_match: { exact: 'a,b' } }, { 'x-r': ['a', 'b'] }, true],
    [{ name: ':method', string_match: { exact: 'GET' } }, {}, true],
  ];
  for (const [m, headers, expected] of cases) assert.equal(h(m, headers), expected, `${JSON.stringify(m)} ${JSON.stringify(headers)}`);
});

test('query parameters: string_match on the first value, present_match; raw (not decoded)', () => {
  const cases: Array<[envoy.config.route.v3.QueryParameterMatcher, string, boolean]> = [
    [{ name: 'debug', string_match: { exact: '1' } }, '/p?debug=1', true],
    [{ name: 'debug', string_match: { exact: '1' } }, '/p?x=2&debug=1', true],
    [{ name: 'debug', string_match: { exact: '1' } }, '/p?debug=2&debug=1', false],
    [{ name: 'debug', string_match: { exact: '1' } }, '/p', false],
    [{ name: 'q', string_match: { exact: 'a b' } }, '/p?q=a%20b', false],
    [{ name: 'q', string_match: { exact: 'a%20b' } }, '/p?q=a%20b', true],
    [{ name: 'flag', present_match: true }, '/p?flag', true],
    [{ name: 'flag', present_match: true }, '/p?flagx=1', false],
    [{ name: 'flag', string_match: { exact: '' } }, '/p?flag', true],
  ];
  for (const [q, path, expected] of cases) assert.equal(matches({ prefix: '/', query_parameters: [q] }, path), expected, `${JSON.stringify(q)} ${path}`);
});

test('runtime_fraction uses default_value against random', () => {
  const half: RouteMatch = { prefix: '/', runtime_fraction: { default_value: { numerator: 50, denominator: 'HUNDRED' }, runtime_key: 'k' } };
  assert.equal(matches(half, '/', {}, 0.49), true);
  assert.equal(matches(half, '/', {}, 0.5), false);
  const tiny: RouteMatch = { prefix: '/', runtime_fraction: { default_value: { numerator: 1, denominator: 'MILLION' } } };
  assert.equal(matches(tiny, '/', {}, 0.0000009), true);
  assert.equal(matches(tiny, '/', {}, 0.000001), false);
  assert.equal(matches({ prefix: '/', runtime_fraction: { default_value: {} } }, '/', {}, 0), false);
});

test('grpc match needs content-type application/grpc or application/grpc+…', () => {
  const m: RouteMatch = { prefix: '/', grpc: {} };
  assert.equal(matches(m, '/svc/M', { 'content-type': 'application/grpc' }), true);
  assert.equal(matches(m, '/svc/M', { 'content-type': 'application/grpc+proto' }), true);
  assert.equal(matches(m, '/svc/M', { 'content-type': 'application/grpc-web' }), false);
  assert.equal(matches(m, '/svc/M'), false);
});

test('routes are tried in order; the first match wins', () => {
  const table = compileRouteConfiguration(
    configWith([
      { name: 'v2', match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }, route: { cluster: 'v2' } },
      { name: 'api', match: { prefix: '/api' }, route: { cluster: 'api' } },
      { name: 'all', match: { prefix: '/' }, route: { cluster: 'v1' } },
    ]),
  );
  assert.equal(table.match(request('/api/x', { 'end-user': 'jason' }), 0)?.name, 'v2');
  assert.equal(table.match(request('/api/x'), 0)?.name, 'api');
  assert.equal(table.match(request('/other'), 0)?.name, 'all');
});
