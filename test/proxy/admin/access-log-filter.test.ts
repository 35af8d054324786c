// Access log filters: each Envoy filter type decides which streams are logged, CEL expressions as Istio's Telemetry writes them, refused config with field paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XdsValidationError } from '../../../src/common/errors.js';
import { packAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import type { StreamInfo } from '../../../src/proxy/http/stream-info.js';
import type { ResponseFlag } from '../../../src/proxy/http/response-flags.js';
import { ConfigProblems } from '../../../src/proxy/router/config-problems.js';
import { compileAccessLogs, type AccessLogSink } from '../../../src/proxy/admin/access-log.js';
import { CEL_FILTER_NAME, HEALTH_CHECK_STATE, compileAccessLogFilter, type AccessLogPredicate } from '../../../src/proxy/admin/access-log-filter.js';
import { compileCelExpression, describeResponseFlagBits, responseFlagBits } from '../../../src/proxy/admin/access-log-cel.js';

type Filter = envoy.config.accesslog.v3.AccessLogFilter;

function info(overrides: Partial<StreamInfo> = {}, headers: Record<string, string> = {}): StreamInfo {
  return {
    startTime: 1000,
    protocol: 'HTTP/1.1',
    downstreamRemoteAddress: '10.0.0.7',
    downstreamRemotePort: 51234,
    downstreamLocalAddress: '127.0.0.1',
    downstreamLocalPort: 10000,
    listenerName: 'listener_0',
    statPrefix: 'ingress_http',
    requestId: '0000000a-1111-4222-8333-444455556666',
    upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local',
    upstreamHost: '127.0.0.1:1234',
    responseCode: 200,
    responseFlags: new Set<ResponseFlag>(),
    bytesReceived: 5,
    bytesSent: 11,
    attemptCount: 1,
    endTime: 1012.4,
    filterState: new Map(),
    requestHeaders: { ':method': 'GET', ':path': '/reviews/1?x=1', ':authority': 'reviews:9080', ':scheme': 'http', 'x-user': 'jason', ...headers },
    responseHeaders: { ':status': '200' },
    ...overrides,
  };
}

function compile(filter: Filter): AccessLogPredicate {
  const problems = new ConfigProblems();
  const predicate = compileAccessLogFilter(filter, 'filter', problems);
  assert.deepEqual(problems.details, []);
  assert.ok(predicate);
  return predicate;
}

function problemsOf(filter: Filter): string[] {
  const problems = new ConfigProblems();
  const predicate = compileAccessLogFilter(filter, 'filter', problems);
  assert.equal(predicate, undefined);
  return problems.details;
}

const cmp = (op: 'EQ' | 'GE' | 'LE', value: number) => ({ comparison: { op, value: { default_value: value, runtime_key: 'access_log.min_status' } } });
const cel = (expression: string): Filter => ({
  extension_filter: { name: CEL_FILTER_NAME, typed_config: packAny('envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter', { expression }) },
});

test('status_code_filter compares the response code with the runtime default (EQ, GE, LE); no response code compares as 0', () => {
  const ge = compile({ status_code_filter: cmp('GE', 400) });
  assert.equal(ge(info({ responseCode: 200 })), false);
  assert.equal(ge(info({ responseCode: 400 })), true);
  assert.equal(ge(info({ responseCode: 503 })), true);
  const eq = compile({ status_code_filter: cmp('EQ', 404) });
  assert.equal(eq(info({ responseCode: 404 })), true);
  assert.equal(eq(info({ responseCode: 403 })), false);
  const le = compile({ status_code_filter: cmp('LE', 299) });
  assert.equal(le(info({ responseCode: 204 })), true);
  assert.equal(le(info({ responseCode: 300 })), false);
  assert.equal(le(info({ responseCode: undefined })), true);
});

test('duration_filter compares the total duration in ms; an unfinished stream is not logged', () => {
  const slow = compile({ duration_filter: cmp('GE', 100) });
  assert.equal(slow(info({ endTime: 1012.4 })), false);
  assert.equal(slow(info({ endTime: 1100 })), true);
  assert.equal(slow(info({ endTime: undefined })), false);
});

test('not_health_check_filter drops streams a health-check filter marked', () => {
  const notHc = compile({ not_health_check_filter: {} });
  assert.equal(notHc(info()), true);
  assert.equal(notHc(info({ filterState: new Map([[HEALTH_CHECK_STATE, true]]) })), false);
});

test('response_flag_filter: listed flags, or any flag when the list is empty; unknown flags are refused', () => {
  const any = compile({ response_flag_filter: {} });
  assert.equal(any(info()), false);
  assert.equal(any(info({ responseFlags: new Set<ResponseFlag>(['UF']) })), true);
  const some = compile({ response_flag_filter: { flags: ['UH', 'NR'] } });
  assert.equal(some(info({ responseFlags: new Set<ResponseFlag>(['UF']) })), false);
  assert.equal(some(info({ responseFlags: new Set<ResponseFlag>(['UF', 'NR']) })), true);
  assert.match(problemsOf({ response_flag_filter: { flags: ['UH', 'XX'] } })[0]!, /^filter\.response_flag_filter\.flags: unknown response flag XX/);
});

test('and_filter / or_filter combine their filters and need at least two', () => {
  const and = compile({ and_filter: { filters: [{ status_code_filter: cmp('GE', 500) }, { header_filter: { header: { name: 'x-user', string_match: { exact: 'jason' } } } }] } });
  assert.equal(and(info({ responseCode: 503 })), true);
  assert.equal(and(info({ responseCode: 503 }, { 'x-user': 'bob' })), false);
  assert.equal(and(info({ responseCode: 200 })), false);
  const or = compile({ or_filter: { filters: [{ status_code_filter: cmp('GE', 500) }, { response_flag_filter: { flags: ['NR'] } }] } });
  assert.equal(or(info({ responseCode: 404, responseFlags: new Set<ResponseFlag>(['NR']) })), true);
  assert.equal(or(info({ responseCode: 502 })), true);
  assert.equal(or(info({ responseCode: 404 })), false);
  assert.deepEqual(problemsOf({ or_filter: { filters: [{ not_health_check_filter: {} }] } }), ['filter.or_filter.filters: needs at least 2 filters (got 1)']);
});

test('header_filter matches the request headers with Envoy HeaderMatcher semantics', () => {
  const present = compile({ header_filter: { header: { name: 'x-debug', present_match: true } } });
  assert.equal(present(info()), false);
  assert.equal(present(info({}, { 'x-debug': '1' })), true);
  const prefix = compile({ header_filter: { header: { name: ':path', string_match: { prefix: '/reviews' } } } });
  assert.equal(prefix(info()), true);
  assert.equal(prefix(info({}, { ':path': '/ratings/1' })), false);
});

test('runtime_filter samples percent_sampled by the request id (stable across proxies) or independently', () => {
  // The request id's first 8 hex digits (0x0000000a = 10) modulo 100 is 10: sampled below 11%, not at 10%.
  assert.equal(compile({ runtime_filter: { runtime_key: 'access_log.sample', percent_sampled: { numerator: 11, denominator: 'HUNDRED' } } })(info()), true);
  assert.equal(compile({ runtime_filter: { runtime_key: 'access_log.sample', percent_sampled: { numerator: 10, denominator: 'HUNDRED' } } })(info()), false);
  const all = compile({ runtime_filter: { runtime_key: 'k', percent_sampled: { numerator: 100 }, use_independent_randomness: true } });
  const none = compile({ runtime_filter: { runtime_key: 'k', percent_sampled: { numerator: 0 }, use_independent_randomness: true } });
  const half = compile({ runtime_filter: { runtime_key: 'k', percent_sampled: { numerator: 50 }, use_independent_randomness: true } });
  let halfCount = 0;
  for (let i = 0; i < 2000; i++) {
    assert.equal(all(info()), true);
    assert.equal(none(info()), false);
    if (half(info())) halfCount++;
  }
  // Independent draws: the same request id is sometimes logged and sometimes not.
  assert.ok(halfCount > 0 && halfCount < 2000, `half sampled ${halfCount} of 2000`);
  assert.deepEqual(problemsOf({ runtime_filter: {} }), ['filter.runtime_filter.runtime_key: must not be empty']);
});

test('CEL extension_filter: Istio Telemetry expressions over response.code, request.method, request.path, response.flags', () => {
  const errors = compile(cel('response.code >= 400'));
  assert.equal(errors(info({ responseCode: 200 })), false);
  assert.equal(errors(info({ responseCode: 404 })), true);
  assert.equal(errors(info({ responseCode: 503 })), true);

  const mixed = compile(cel("request.method == 'POST' && request.path.startsWith('/reviews') || response.code >= 500"));
  assert.equal(mixed(info({}, { ':method': 'POST' })), true);
  assert.equal(mixed(info()), false);
  assert.equal(mixed(info({ responseCode: 500 })), true);

  const flags = compile(cel('response.flags != 0'));
  assert.equal(flags(info()), false);
  assert.equal(flags(info({ responseFlags: new Set<ResponseFlag>(['UH']) })), true);
  assert.equal(responseFlagBits(new Set<ResponseFlag>(['UH', 'NR'])), 0x2 | 0x100);
  assert.equal(describeResponseFlagBits(0x2 | 0x100), 'UH,NR');

  const header = compile(cel("request.headers['x-user'] == 'jason' && request.url_path == '/reviews/1'"));
  assert.equal(header(info()), true);
  // A missing header is an evaluation error: not logged.
  assert.equal(header(info({ requestHeaders: { ':method': 'GET', ':path': '/reviews/1' } })), false);
  assert.equal(compile(cel("'x-user' in request.headers"))(info()), true);
  assert.equal(compile(cel("request.method in ['PUT', 'POST']"))(info()), false);
  assert.equal(compile(cel("!(response.code < 400) || xds.cluster_name.contains('reviews')"))(info()), true);
  assert.equal(compile(cel('response.code / 100 == 5'))(info({ responseCode: 503 })), true);
  assert.equal(compile(cel("size(request.path) > 3 ? true : false"))(info()), true);
  // An error on one side of || does not hide true on the other (CEL's commutative logic).
  assert.equal(compile(cel("request.headers['missing'] == 'x' || response.code == 200"))(info()), true);
  // A type mismatch evaluates to an error: false.
  assert.equal(compile(cel("response.code == '200'"))(info()), false);
});

test('CEL: bad expressions are refused when the config is applied, with the reason', () => {
  assert.match(problemsOf(cel('response.code >='))[0]!, /^filter\.extension_filter\.typed_config\.expression: invalid expression "response\.code >=": unexpected end of expression/);
  assert.match(problemsOf(cel('response.cod >= 400'))[0]!, /unknown attribute response\.cod/);
  assert.match(problemsOf(cel('foo == 1'))[0]!, /unknown identifier foo/);
  assert.match(problemsOf(cel("request.path.explode()"))[0]!, /unknown method explode\(\)/);
  assert.deepEqual(compileCelExpression('  '), { ok: false, error: 'the expression is empty' });
  assert.match(problemsOf({ extension_filter: { name: 'x', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) } })[0]!, /unsupported access log extension filter type\.googleapis\.com\/envoy\.extensions\.filters\.http\.router\.v3\.Router/);
});

test('refused filters: none or two types set, unsupported types, comparison without runtime key', () => {
  assert.match(problemsOf({})[0]!, /^filter: exactly one filter type must be set/);
  assert.match(problemsOf({ not_health_check_filter: {}, status_code_filter: cmp('GE', 400) })[0]!, /^filter: only one filter type may be set \(got status_code_filter, not_health_check_filter\)/);
  assert.match(problemsOf({ grpc_status_filter: { statuses: ['OK'] } })[0]!, /^filter\.grpc_status_filter: not supported by Trellis/);
  assert.deepEqual(problemsOf({ status_code_filter: { comparison: { op: 'GE', value: { default_value: 400 } } } }), ['filter.status_code_filter.comparison.value.runtime_key: must not be empty']);
  assert.deepEqual(problemsOf({ and_filter: { filters: [{ status_code_filter: {} }, { duration_filter: {} }] } }), [
    'filter.and_filter.filters[0].status_code_filter.comparison: must be set',
    'filter.and_filter.filters[1].duration_filter.comparison: must be set',
  ]);
});

test('HCM access_log with a filter: only the matching streams reach the sink; a bad filter NACKs with its path', () => {
  const lines: string[] = [];
  const memory: AccessLogSink = { write: (line) => void lines.push(line) };
  const [logger] = compileAccessLogs(
    [{ name: 'envoy.access_loggers.stdout', filter: cel('response.code >= 400'), typed_config: packAny('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', { log_format: { text_format: '%RESPONSE_CODE% %REQ(:PATH)%' } }) }],
    'access_log',
    () => memory,
  );
  for (const code of [200, 404, 201, 503]) logger!.log({ info: info({ responseCode: code }), startWallTime: 0 });
  assert.deepEqual(lines, ['404 /reviews/1?x=1\n', '503 /reviews/1?x=1\n']);

  assert.throws(
    () => compileAccessLogs([{ filter: cel('response.code >'), typed_config: packAny('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', {}) }]),
    (err: unknown) => err instanceof XdsValidationError && /^access_log\[0\]\.filter\.extension_filter\.typed_config\.expression: invalid expression/.test(err.details[0]!),
  );
});
