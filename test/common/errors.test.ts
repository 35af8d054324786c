// Keeps docs/errors.md and the error registry in src/common/errors.ts in sync.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, TrellisError, XdsValidationError } from '../../src/common/errors.js';

const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

test('every registered error code is documented with the same meaning, and nothing else is', () => {
  const documented = new Map<string, string>();
  for (const match of docs.matchAll(/^\| `([A-Z_]+)` \| (.+) \|$/gm)) documented.set(match[1]!, match[2]!.trim());
  assert.deepEqual([...documented.keys()].sort(), Object.keys(ERROR_CODES).sort());
  for (const [code, meaning] of Object.entries(ERROR_CODES)) assert.equal(documented.get(code), meaning, code);
});

test('errors carry their code and class name', () => {
  const err = new XdsValidationError(['resource a: name: must not be empty', 'resource b: bad']);
  assert.ok(err instanceof TrellisError);
  assert.equal(err.code, 'TRELLIS_XDS_INVALID_RESOURCE');
  assert.equal(err.name, 'XdsValidationError');
  assert.equal(err.message, 'resource a: name: must not be empty; resource b: bad');
});
