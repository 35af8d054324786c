// The manifest's mesh section carries Istio meshConfig access logging (accessLogFile/Encoding/Format, defaultProviders, envoyFileAccessLog providers); bad values are named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest } from '../../src/local/manifest.js';

const file = '/mesh/mesh.yaml';
const workloads = 'workloads:\n- name: a\n  command: a.js\n  service: { host: a, port: 9080 }\n';

test('mesh access logging fields in Istio\'s meshConfig shape are read', () => {
  const m = parseManifest(
    `${workloads}mesh:\n  accessLogFile: /dev/stdout\n  accessLogEncoding: JSON\n  accessLogFormat: '{"code":"%RESPONSE_CODE%"}'\n  defaultProviders: { accessLogging: [envoy] }\n` +
      `  extensionProviders:\n  - name: errors\n    envoyFileAccessLog: { path: /tmp/errors.log, logFormat: { text: "%RESPONSE_CODE% %REQ(:PATH)%" } }\n`,
    file,
  );
  assert.deepEqual(m.problems, []);
  assert.equal(m.mesh.accessLogFile, '/dev/stdout');
  assert.equal(m.mesh.accessLogEncoding, 'JSON');
  assert.equal(m.mesh.accessLogFormat, '{"code":"%RESPONSE_CODE%"}');
  assert.deepEqual(m.mesh.defaultAccessLogProviders, ['envoy']);
  assert.deepEqual(m.mesh.extensionProviders?.[0]?.envoyFileAccessLog, { path: '/tmp/errors.log', logFormat: { text: '%RESPONSE_CODE% %REQ(:PATH)%' } });
  const plain = parseManifest(workloads, file);
  assert.equal(plain.mesh.accessLogFile, undefined);
});

test('a bad encoding or a non-string file is a problem with its path', () => {
  const m = parseManifest(`${workloads}mesh:\n  accessLogFile: 3\n  accessLogEncoding: XML\n`, file);
  assert.deepEqual(m.problems, [
    '/mesh/mesh.yaml: mesh.accessLogFile: expected a string, got number 3',
    '/mesh/mesh.yaml: mesh.accessLogEncoding: expected TEXT or JSON, got string "XML"',
  ]);
});
