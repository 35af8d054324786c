#!/usr/bin/env node
// `npm run bench -- NAME [args...]`: builds when dist/ is older than the sources, runs the
// benchmark's own setup (bench/NAME/setup.mjs, if it has one: installs its tools and comparison
// libraries into the gitignored .bench/), then runs dist/bench/NAME.js. `npm run bench` lists them.
//
// A benchmark is a top-level bench/NAME.ts that no other bench/*.ts imports: the imported ones
// (cluster-fixture.ts, report.ts) are shared helpers, and helpers of one benchmark live in
// bench/NAME/. Uses only Node built-ins.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = join(repo, 'bench');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function benchmarks() {
  const files = readdirSync(benchDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const imported = new Set();
  for (const file of files) {
    for (const [, name] of readFileSync(join(benchDir, file), 'utf8').matchAll(/from\s+'\.\/([\w.-]+)\.js'/g)) imported.add(name);
  }
  return files.map((f) => f.slice(0, -'.ts'.length)).filter((n) => !imported.has(n)).sort();
}

/** The first line of the file's opening comment: what the benchmark measures. */
function summary(name) {
  const first = readFileSync(join(benchDir, `${name}.ts`), 'utf8').split('\n')[0] ?? '';
  return first.startsWith('//') ? first.replace(/^\/\/\s*/, '') : '';
}

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'generated') continue;
    newest = Math.max(newest, newestMtime(join(path, entry)));
  }
  return newest;
}

function run(command, args, what) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: repo });
  if (result.error) console.error(`bench: ${what}: ${result.error.message}`);
  return result.status ?? 1;
}

const [name, ...rest] = process.argv.slice(2);
const names = benchmarks();

if (!name) {
  console.log('usage: npm run bench -- NAME [args...]\n\nbenchmarks (bench/NAME.ts):');
  for (const n of names) console.log(`  ${n.padEnd(24)} ${summary(n)}`);
  process.exit(0);
}
if (!names.includes(name)) {
  console.error(`bench: no benchmark named "${name}" (expected bench/${name}.ts); available: ${names.join(', ') || '(none)'}`);
  process.exit(2);
}

// Dependencies first (npm ci only when node_modules is missing or stale), then build if needed.
if (run(process.execPath, [join(repo, 'scripts', 'setup.mjs'), '--no-build'], 'setup') !== 0) process.exit(1);
const compiled = join(repo, 'dist', 'bench', `${name}.js`);
const sources = ['src', 'bench', 'scripts/gen-xds.mjs', 'tsconfig.json', 'package.json'].map((p) => newestMtime(join(repo, p)));
if (!existsSync(compiled) || Math.max(...sources) > statSync(compiled).mtimeMs) {
  console.log(`bench: building (${relative(repo, compiled)} is missing or older than the sources)`);
  if (run(npm, ['run', '--silent', 'build'], 'build') !== 0) {
    // tsc emits despite type errors (e.g. in work in progress elsewhere in src/); a benchmark
    // that compiled can still run, but say so.
    if (!existsSync(compiled)) {
      console.error('bench: the build failed and produced no benchmark to run');
      process.exit(1);
    }
    console.error(`bench: WARNING: the build reported errors (above); running ${relative(repo, compiled)} as emitted`);
  }
}

const setup = join(benchDir, name, 'setup.mjs');
if (existsSync(setup) && run(process.execPath, [setup], `${relative(repo, setup)}`) !== 0) {
  console.error(`bench: ${relative(repo, setup)} failed`);
  process.exit(1);
}

// --expose-gc lets a benchmark collect garbage between rounds, so one round does not pay for another's.
process.exit(run(process.execPath, ['--expose-gc', '--enable-source-maps', compiled, ...rest], name));
