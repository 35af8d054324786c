#!/usr/bin/env node
// Makes a checkout ready to run: installs dependencies with `npm ci` when node_modules is missing or
// older than package-lock.json, then builds (generate Envoy types, tsc, copy assets). Used by
// `npm test` and `npm start` so each works on a fresh machine. Uses only Node built-ins.
import { existsSync, statSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(args) {
  const result = spawnSync(npm, args, { stdio: 'inherit', cwd: repo });
  if (result.status !== 0) {
    console.error(`setup: npm ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}

const installed = join(repo, 'node_modules', '.package-lock.json');
const lock = join(repo, 'package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log('setup: installing dependencies (npm ci)');
  run(['ci', '--no-audit', '--no-fund']);
}
if (!process.argv.includes('--no-build')) run(['run', '--silent', 'build']);
