// Telemetry accessLogging → HCM access_log: Istio's provider selection and merging by level and mode, file providers' formats, CEL filters, MeshConfig accessLogFile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../../../src/xds/codec.js';
import type { envoy } from '../../../../src/xds/generated/types.js';
import type { Telemetry } from '../../../../src/api/kinds.js';
import type { TelemetrySpec } from '../../../../src/api/telemetry/telemetry.js';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../../../../src/control/model/mesh-config.js';
import { parseExtensionProviders } from '../../../../src/control/model/extension-providers.js';
import { ISTIO_TEXT_LOG_FORMAT, buildAccessLogs, type AccessLog } from '../../../../src/control/translate/telemetry/access-log.js';
import { httpConnectionManager } from '../../../../src/control/translate/common/network-filters.js';
import { compileAccessLogs } from '../../../../src/proxy/admin/access-log.js';

type FileAccessLog = envoy.extensions.access_loggers.file.v3.FileAccessLog;

function telemetry(namespace: string, name: string, spec: TelemetrySpec): Telemetry {
  return { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { namespace, name }, spec } as unknown as Telemetry;
}

const proxy = { namespace: 'default', labels: { app: 'reviews', version: 'v1' } };

const mesh = (extra: Partial<MeshConfig> = {}): MeshConfig => {
  const parsed = parseExtensionProviders([
    { name: 'file-text', envoyFileAccessLog: { path: '/tmp/access.log', logFormat: { text: '%RESPONSE_CODE% %REQ(:PATH)%' } } },
    { name: 'file-json', envoyFileAccessLog: { path: '/tmp/access.json', logFormat: { labels: { code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%' } } } },
    { name: 'otel', opentelemetry: { service: 'otel.istio-system.svc.cluster.local', port: 4317 } },
  ]);
  assert.deepEqual(parsed.problems, []);
  return { ...DEFAULT_MESH_CONFIG, extensionProviders: parsed.providers, ...extra };
};

function describeLogs(logs: AccessLog[]): { name?: string; path?: string; format: unknown; filter?: string }[] {
  return logs.map((log) => {
    const file = unpackAny<FileAccessLog>(log.typed_config!);
    const filter = log.filter?.extension_filter?.typed_config ? unpackAny<{ expression: string }>(log.filter.extension_filter.typed_config).expression : undefined;
    const format = file.log_format?.text_format_source?.inline_string ?? Object.keys(file.log_format?.json_format?.fields ?? {});
    return { name: log.name, path: file.path, format, ...(filter ? { filter } : {}) };
  });
}

test('built-in envoy provider from the root namespace: /dev/stdout with Istio text format, on both directions', () => {
  const logs = buildAccessLogs([telemetry('istio-system', 'mesh-default', { accessLogging: [{ providers: [{ name: 'envoy' }] }] })], proxy, 'SERVER', mesh());
  assert.deepEqual(describeLogs(logs), [{ name: 'envoy.access_loggers.file', path: '/dev/stdout', format: ISTIO_TEXT_LOG_FORMAT }]);
  assert.equal(buildAccessLogs([telemetry('istio-system', 'mesh-default', { accessLogging: [{ providers: [{ name: 'envoy' }] }] })], proxy, 'CLIENT', mesh()).length, 1);
});

test('envoyFileAccessLog providers: text format gets a newline, labels become json_format; a CEL filter becomes extension_filter', () => {
  const logs = buildAccessLogs(
    [telemetry('default', 'ns', { accessLogging: [{ providers: [{ name: 'file-text' }, { name: 'file-json' }, { name: 'otel' }], filter: { expression: 'response.code >= 400' } }] })],
    proxy,
    'SERVER',
    mesh(),
  );
  assert.deepEqual(describeLogs(logs), [
    { name: 'envoy.access_loggers.file', path: '/tmp/access.log', format: '%RESPONSE_CODE% %REQ(:PATH)%\n', filter: 'response.code >= 400' },
    { name: 'envoy.access_loggers.file', path: '/tmp/access.json', format: ['code', 'path'], filter: 'response.code >= 400' },
  ]);
  assert.equal(logs[0]!.filter!.extension_filter!.name, 'envoy.access_loggers.extension_filters.cel');
  // The proxy accepts what the control plane generates.
  assert.equal(compileAccessLogs(logs, 'access_log', () => ({ write: () => undefined })).length, 2);
});

test('levels: namespace overrides root, workload selector overrides namespace; other namespaces and selectors do not apply', () => {
  const root = telemetry('istio-system', 'root', { accessLogging: [{ providers: [{ name: 'envoy' }] }] });
  const ns = telemetry('default', 'ns', { accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 500' } }] });
  const workload = telemetry('default', 'reviews', { selector: { matchLabels: { app: 'reviews' } }, accessLogging: [{ providers: [{ name: 'envoy' }], disabled: true }] });
  const other = telemetry('other', 'x', { accessLogging: [{ providers: [{ name: 'file-text' }] }] });
  assert.deepEqual(describeLogs(buildAccessLogs([root, ns, other], proxy, 'SERVER', mesh())).map((l) => l.filter), ['response.code >= 500']);
  assert.deepEqual(buildAccessLogs([root, ns, workload], proxy, 'SERVER', mesh()), []);
  // A selector that does not match this proxy is not its workload level (the push context filters by labels; the builder re-checks the level).
  assert.equal(buildAccessLogs([root], { namespace: 'other', labels: {} }, 'CLIENT', mesh()).length, 1);
});

test('match.mode: CLIENT entries only on outbound/gateway, SERVER only on inbound; disabled without providers turns off those in effect', () => {
  const t = telemetry('istio-system', 'root', {
    accessLogging: [
      { match: { mode: 'CLIENT' }, providers: [{ name: 'file-text' }] },
      { match: { mode: 'SERVER' }, providers: [{ name: 'file-json' }] },
    ],
  });
  assert.deepEqual(describeLogs(buildAccessLogs([t], proxy, 'CLIENT', mesh())).map((l) => l.path), ['/tmp/access.log']);
  assert.deepEqual(describeLogs(buildAccessLogs([t], proxy, 'SERVER', mesh())).map((l) => l.path), ['/tmp/access.json']);
  const off = telemetry('default', 'off', { accessLogging: [{ disabled: true }] });
  assert.deepEqual(buildAccessLogs([t, off], proxy, 'CLIENT', mesh()), []);
  // No providers and nothing in effect: MeshConfig defaultProviders.accessLogging.
  const bare = telemetry('istio-system', 'root', { accessLogging: [{ filter: { expression: 'response.code >= 400' } }] });
  assert.deepEqual(describeLogs(buildAccessLogs([bare], proxy, 'CLIENT', mesh({ defaultProviders: { accessLogging: ['envoy'] } }))).map((l) => [l.path, l.filter]), [['/dev/stdout', 'response.code >= 400']]);
  assert.deepEqual(buildAccessLogs([bare], proxy, 'CLIENT', mesh()), []);
});

test('MeshConfig accessLogFile when no Telemetry configures access logging: TEXT with accessLogFormat or Istio default, JSON', () => {
  assert.deepEqual(buildAccessLogs([], proxy, 'SERVER', mesh()), []);
  assert.deepEqual(describeLogs(buildAccessLogs([], proxy, 'SERVER', mesh({ accessLogFile: '/dev/stdout' }))), [{ name: 'envoy.access_loggers.file', path: '/dev/stdout', format: ISTIO_TEXT_LOG_FORMAT }]);
  assert.deepEqual(describeLogs(buildAccessLogs([], proxy, 'SERVER', mesh({ accessLogFile: '/tmp/a.log', accessLogFormat: '%RESPONSE_CODE%' }))).map((l) => l.format), ['%RESPONSE_CODE%\n']);
  const json = describeLogs(buildAccessLogs([], proxy, 'SERVER', mesh({ accessLogFile: '/tmp/a.log', accessLogEncoding: 'JSON' })))[0]!.format as string[];
  assert.ok(json.includes('response_code') && json.includes('upstream_cluster') && json.includes('start_time'));
  const custom = describeLogs(buildAccessLogs([], proxy, 'SERVER', mesh({ accessLogFile: '/tmp/a.log', accessLogEncoding: 'JSON', accessLogFormat: '{"c":"%RESPONSE_CODE%"}' })));
  assert.deepEqual(custom[0]!.format, ['c']);
  // A Telemetry that configures access logging replaces the mesh default.
  const t = telemetry('istio-system', 'root', { accessLogging: [{ providers: [{ name: 'file-text' }] }] });
  assert.deepEqual(describeLogs(buildAccessLogs([t], proxy, 'SERVER', mesh({ accessLogFile: '/dev/stdout' }))).map((l) => l.path), ['/tmp/access.log']);
});

test('the HCM carries access_log; Istio text format is accepted by the proxy', () => {
  const logs = buildAccessLogs([], proxy, 'SERVER', mesh({ accessLogFile: '/dev/stdout' }));
  const hcm = httpConnectionManager({ statPrefix: 'inbound_0.0.0.0_9080', useRemoteAddress: false, accessLog: logs });
  assert.equal(hcm.access_log?.length, 1);
  assert.equal(compileAccessLogs(hcm.access_log!, 'access_log', () => ({ write: () => undefined })).length, 1);
});

test('mesh config envoyFileAccessLog parsing: bad fields are reported with their path', () => {
  const parsed = parseExtensionProviders([{ name: 'f', envoyFileAccessLog: { path: 3, logFormat: { text: 'x', labels: {} }, extra: 1 } }]);
  assert.deepEqual(parsed.problems, [
    'extensionProviders[0].envoyFileAccessLog.extra: unknown field',
    'extensionProviders[0].envoyFileAccessLog.path: expected a string',
    'extensionProviders[0].envoyFileAccessLog.logFormat: only one of text and labels may be set',
  ]);
  assert.deepEqual(parsed.providers, []);
});
