// Access logs: Envoy's default text line, custom text and JSON formats, operators with fallbacks and lengths, sinks from HCM config, refused config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XdsValidationError } from '../../../src/common/errors.js';
import { packAny } from '../../../src/xds/codec.js';
import { fromProtoJson } from '../../../src/xds/proto-json.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import type { StreamInfo } from '../../../src/proxy/http/stream-info.js';
import type { ResponseFlag } from '../../../src/proxy/http/response-flags.js';
import {
  DEFAULT_ACCESS_LOG_FORMAT,
  closeAccessLogFiles,
  compileAccessLogs,
  compileLogFormat,
  compileTextFormat,
  type AccessLogEntry,
  type AccessLogSink,
} from '../../../src/proxy/admin/access-log.js';

function streamInfo(overrides: Partial<StreamInfo> = {}): StreamInfo {
  return {
    startTime: 1000,
    protocol: 'HTTP/1.1',
    downstreamRemoteAddress: '10.0.0.7',
    downstreamRemotePort: 51234,
    downstreamLocalAddress: '127.0.0.1',
    downstreamLocalPort: 10000,
    listenerName: 'listener_0',
    statPrefix: 'ingress_http',
    requestId: 'c0ffee',
    upstreamCluster: 'some_service',
    upstreamHost: '127.0.0.1:1234',
    responseCode: 200,
    responseFlags: new Set<ResponseFlag>(),
    bytesReceived: 5,
    bytesSent: 11,
    attemptCount: 1,
    upstreamResponseStart: 1003,
    endTime: 1012.4,
    filterState: new Map(),
    requestHeaders: {
      ':method': 'GET',
      ':path': '/hello?x=1',
      ':authority': 'example.com',
      ':scheme': 'http',
      'user-agent': 'curl/8.5.0',
      'x-request-id': 'c0ffee',
      'x-forwarded-for': '10.0.0.7',
    },
    responseHeaders: { ':status': '200', 'x-envoy-upstream-service-time': '9' },
    ...overrides,
  };
}

const START = Date.UTC(2024, 0, 31, 12, 0, 1, 234);
const entry = (info: StreamInfo): AccessLogEntry => ({ info, startWallTime: START });

test("Envoy's default format prints the line Envoy prints", () => {
  const format = compileTextFormat(DEFAULT_ACCESS_LOG_FORMAT);
  assert.equal(
    format(entry(streamInfo())),
    '[2024-01-31T12:00:01.234Z] "GET /hello?x=1 HTTP/1.1" 200 - 5 11 12 9 "10.0.0.7" "curl/8.5.0" "c0ffee" "example.com" "127.0.0.1:1234"\n',
  );
});

test('missing values print "-", flags are joined, X-ENVOY-ORIGINAL-PATH wins over :path', () => {
  const format = compileTextFormat(DEFAULT_ACCESS_LOG_FORMAT);
  const info = streamInfo({
    responseCode: 503,
    responseFlags: new Set<ResponseFlag>(['UH', 'URX']),
    upstreamHost: undefined,
    responseHeaders: { ':status': '503' },
    requestHeaders: { ':method': 'POST', ':path': '/rewritten', 'x-envoy-original-path': '/original', ':authority': 'a' },
  });
  assert.equal(format(entry(info)), '[2024-01-31T12:00:01.234Z] "POST /original HTTP/1.1" 503 UH,URX 5 11 12 - "-" "-" "-" "a" "-"\n');
});

test('operators with lengths, START_TIME formats, downstream addresses and an unknown operator', () => {
  const format = compileTextFormat('%REQ(USER-AGENT):4% %START_TIME(%s)% %DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_CLUSTER% %RESPONSE_DURATION% %REQ(:PATH)%');
  assert.equal(format(entry(streamInfo())), `curl ${Math.floor(START / 1000)} 10.0.0.7:51234 some_service 3 /hello?x=1`);
  assert.throws(() => compileTextFormat('%NOPE% %REQ%'), (err: unknown) => {
    assert.ok(err instanceof XdsValidationError);
    assert.deepEqual(err.details, ['text_format: unknown command operator %NOPE%', 'text_format: %REQ% needs an argument, like %REQ(x-request-id)%']);
    return true;
  });
});

test('json_format keeps numbers numeric and missing values null', () => {
  const { value } = fromProtoJson<envoy.config.core.v3.SubstitutionFormatString>('envoy.config.core.v3.SubstitutionFormatString', {
    json_format: { status: '%RESPONSE_CODE%', path: '%REQ(:PATH)%', host: '%UPSTREAM_HOST%', missing: '%REQ(x-nope)%', text: 'code=%RESPONSE_CODE%', nested: { flags: '%RESPONSE_FLAGS%' } },
  });
  const line = compileLogFormat(value)(entry(streamInfo()));
  assert.ok(line.endsWith('\n'));
  assert.deepEqual(JSON.parse(line), { status: 200, path: '/hello?x=1', host: '127.0.0.1:1234', missing: null, text: 'code=200', nested: { flags: '-' } });
});

test('HCM access_log config: stdout with the default format, file with a text format, refusals listed', async () => {
  const lines: string[] = [];
  const memory: AccessLogSink = { write: (line) => void lines.push(line) };
  const loggers = compileAccessLogs(
    [{ name: 'envoy.access_loggers.stdout', typed_config: packAny('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', {}) }],
    'access_log',
    () => memory,
  );
  loggers[0]!.log(entry(streamInfo()));
  assert.match(lines[0]!, /^\[2024-01-31T12:00:01.234Z\] "GET \/hello\?x=1 HTTP\/1.1" 200 /);

  const dir = mkdtempSync(join(tmpdir(), 'trellis-access-log-'));
  const path = join(dir, 'access.log');
  const [file] = compileAccessLogs([
    { name: 'envoy.access_loggers.file', typed_config: packAny('envoy.extensions.access_loggers.file.v3.FileAccessLog', { path, log_format: { text_format: '%RESPONSE_CODE% %REQ(:AUTHORITY)%\n' } }) },
  ]);
  file!.log(entry(streamInfo()));
  file!.log(entry(streamInfo({ responseCode: 404 })));
  await closeAccessLogFiles();
  assert.equal(readFileSync(path, 'utf8'), '200 example.com\n404 example.com\n');

  assert.throws(
    () =>
      compileAccessLogs([
        { name: 'x', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) },
        { name: 'y', filter: { status_code_filter: {} }, typed_config: packAny('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', { log_format: { text_format: '%BAD%' } }) },
      ]),
    (err: unknown) => {
      assert.ok(err instanceof XdsValidationError);
      assert.match(err.details[0]!, /^access_log\[0\]\.typed_config: unsupported access logger type\.googleapis\.com\/envoy\.extensions\.filters\.http\.router\.v3\.Router/);
      assert.equal(err.details[1], 'access_log[1].filter.status_code_filter.comparison: must be set');
      assert.equal(err.details[2], 'access_log[1].typed_config.log_format.text_format: unknown command operator %BAD%');
      return true;
    },
  );
});
