// The manifest's mesh section carries Istio meshConfig pathNormalization to the in-process control plane; a bad mode is named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest } from '../../src/local/manifest.js';

const file = '/mesh/mesh.yaml';
const workloads = 'workloads:\n- name: a\n  command: a.js\n  service: { host: a, port: 9080 }\n';

test('mesh.pathNormalization.normalization in Istio\'s shape is read; absent means the control plane default', () => {
  assert.equal(parseManifest(`${workloads}mesh:\n  pathNormalization: { normalization: DECODE_AND_MERGE_SLASHES }\n`, file).mesh.pathNormalization, 'DECODE_AND_MERGE_SLASHES');
  const plain = parseManifest(workloads, file);
  assert.equal(plain.mesh.pathNormalization, undefined);
  assert.deepEqual(plain.problems, []);
});

test('an unknown normalization or field is a problem with its path, and the mesh still loads', () => {
  const m = parseManifest(`${workloads}mesh:\n  pathNormalization: { normalization: MERGE, mode: x }\n`, file);
  assert.equal(m.mesh.pathNormalization, undefined);
  assert.deepEqual(m.problems, [
    '/mesh/mesh.yaml: mesh.pathNormalization.mode: unknown field (expected one of normalization)',
    '/mesh/mesh.yaml: mesh.pathNormalization.normalization: expected one of DEFAULT, NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES, got string "MERGE"',
  ]);
});
