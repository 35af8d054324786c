#!/usr/bin/env node
// Runs every compiled test (dist/test/**/*.test.js) with Node's built-in runner.
// Usage: node scripts/run-tests.mjs [substring filter...]
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const testRoot = join(repo, 'dist', 'test');

function collect(dir, out) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (entry.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect(testRoot, [])
  .filter((f) => filters.length === 0 || filters.some((needle) => relative(repo, f).includes(needle)))
  .sort();
if (files.length === 0) {
  console.error(`run-tests: no test files under ${relative(repo, testRoot)} match ${filters.join(' ') || '(all)'}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { stdio: 'inherit', cwd: repo },
);
process.exit(result.status ?? 1);
