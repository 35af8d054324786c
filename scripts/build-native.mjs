#!/usr/bin/env node
// Builds the proxy's native addon (native/original_dst.c -> native/build/Release/original_dst.node) with the node-gyp that
// npm ships, against the Node.js headers on this machine. Run by `npm install`/`npm ci` (the install script), by
// `npm run build` and by scripts/setup.mjs. Where it cannot build (no compiler, no headers, not Linux) it says why and
// exits 0: the proxy then refuses use_original_dst/original_dst with that reason, and explicit (HTTP_PROXY) mode works.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(repo, 'native');
const source = join(nativeDir, 'original_dst.c');
const gyp = join(nativeDir, 'binding.gyp');
const output = join(nativeDir, 'build', 'Release', 'original_dst.node');
const force = process.argv.includes('--force');

function skip(reason) {
  console.error(`build-native: the original-destination addon was not built: ${reason}`);
  console.error('build-native: the proxy will refuse use_original_dst and the original_dst listener filter (traffic capture); explicit (HTTP_PROXY) mode works.');
  process.exit(0);
}

if (process.platform !== 'linux') skip(`SO_ORIGINAL_DST is Linux-only (this is ${process.platform})`);
if (!existsSync(source)) skip(`${source} is missing`);
const newest = Math.max(statSync(source).mtimeMs, statSync(gyp).mtimeMs);
if (!force && existsSync(output) && statSync(output).mtimeMs >= newest) process.exit(0);

// node-gyp as npm ships it: npm sets npm_config_node_gyp for its scripts; otherwise it sits beside npm's own CLI.
const prefix = dirname(dirname(process.execPath));
const candidates = [
  process.env.npm_config_node_gyp,
  join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((p) => p && existsSync(p));
if (candidates.length === 0) skip('node-gyp not found (it ships with npm; looked beside ' + process.execPath + ')');

// Headers of the running Node.js when the machine has them (Debian's nodejs puts them in /usr/include/node), so node-gyp
// needs no download; an explicit npm_config_nodedir wins.
const args = [candidates[0], 'rebuild', '--directory', nativeDir];
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
if (nodedir) args.push(`--nodedir=${nodedir}`);
const result = spawnSync(process.execPath, args, { cwd: nativeDir, encoding: 'utf8' });
if (result.status !== 0) {
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
  skip(`node-gyp rebuild failed (exit ${result.status ?? result.signal}); its last lines:\n${output}`);
}
if (!existsSync(output)) skip(`node-gyp succeeded but ${output} is missing`);
console.log(`build-native: built ${output}`);
