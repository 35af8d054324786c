// The `trellis` binary answers --version and --help as a user runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

test('trellis --version prints the package version', () => {
  assert.equal(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(), pkg.version);
});

test('trellis --help describes the command', () => {
  const help = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  assert.match(help, /Usage: trellis/);
  assert.match(help, /xDS/);
});

test('an unknown subcommand exits non-zero with a message', () => {
  assert.throws(() => execFileSync(process.execPath, [bin, 'no-such-command'], { encoding: 'utf8', stdio: 'pipe' }), (err: { status?: number; stderr?: string }) => err.status !== 0 && /unknown command|error/i.test(String(err.stderr)));
});
