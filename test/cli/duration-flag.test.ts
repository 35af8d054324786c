// Duration flags: Go's syntax or a plain number in the flag's unit; anything else, or too short, is refused with what the flag wants.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { parseDurationFlag } from '../../src/cli/commands/duration-flag.js';
import { parseCertTtl, parseTerminationDrain } from '../../src/cli/commands/proxy.js';
import { parseDurationOption } from '../../src/cli/commands/control.js';

test('a plain number counts in the flag\'s unit; a duration string in its own', () => {
  assert.equal(parseTerminationDrain('5s'), 5_000);
  assert.equal(parseTerminationDrain('1.5'), 1_500);
  assert.equal(parseTerminationDrain('0'), 0);
  assert.equal(parseCertTtl('24h'), 86_400);
  assert.equal(parseCertTtl('90'), 90);
  assert.equal(parseCertTtl('1500ms'), 2);
  assert.equal(parseDurationOption('250'), 250);
  assert.equal(parseDurationOption('1m'), 60_000);
});

test('a value that is not a duration, negative, or below the flag\'s minimum is refused with what the flag expects', () => {
  const refused = (parse: (v: string) => number, value: string, expected: RegExp) =>
    assert.throws(() => parse(value), (err: unknown) => err instanceof InvalidArgumentError && expected.test(err.message) && err.message.endsWith(`got ${JSON.stringify(value)}`), value);
  for (const value of ['soon', '-3', '', '5 s', '1e3']) refused(parseTerminationDrain, value, /^expected a duration like 5s or 500ms, or a number of seconds/);
  for (const value of ['500ms', '0', 'forever', '-1h']) refused(parseCertTtl, value, /^expected a certificate lifetime like 24h or 90s \(at least 1s\)/);
  refused(parseDurationOption, '-5ms', /^expected a duration like 100ms or 10s/);
  refused((v) => parseDurationFlag(v, { plainUnitMs: 1, minMs: 10, expected: 'ten' }), '9', /^expected ten/);
});
