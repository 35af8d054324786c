// Where a Trellis build spends its CPU at the fixed rate, native frames included (`--cpu-prof` labels the native work
// inside libuv callbacks as idle; perf sees the kernel, V8's runtime, node's C++ and the JIT code alike).
// Upstream nginx and wrk on CPU 0, the proxy under `node --perf-basic-prof` on CPU 1; after a warm-up, `perf record`
// samples the proxy while wrk paces RATE req/s over 32 connections, then prints self time by DSO and the top symbols.
// Usage: npx tsc -p . && node bench/proxy/perf-profile.mjs [DIST]   Env: RATE (4000), SECONDS (8), TOP (60),
//   NODE_FLAGS (extra node flags, e.g. --max-semi-space-size=64), KEEP=dir keeps perf.data and the perf map.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, mkdtempSync, rmSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';

const cfg = await import(new URL('../../dist/bench/proxy/configs.js', import.meta.url).href);
const dist = process.argv[2] || 'dist';
const RATE = Number(process.env.RATE || 4000);
const SECONDS = Number(process.env.SECONDS || 8);
const TOP = Number(process.env.TOP || 60);
const dir = mkdtempSync(join(tmpdir(), 'trellis-perf-'));
const procs = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const start = (core, cmd, args) => {
  const c = spawn('taskset', ['-c', core, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  c.out = '';
  c.stdout.on('data', (d) => (c.out += d));
  c.stderr.on('data', (d) => (c.out += d));
  procs.push(c);
  return c;
};
process.on('exit', () => { for (const c of procs) if (c.exitCode === null) try { process.kill(c.pid, 'SIGKILL'); } catch {} });
const listening = (port) => new Promise((res) => { const s = connect(port, '127.0.0.1'); s.once('connect', () => { s.destroy(); res(true); }); s.once('error', () => res(false)); });
const base = 20000 + Math.floor(Math.random() * 20000);
const UP = base, PORT = base + 1;
const upd = join(dir, 'up'); mkdirSync(join(upd, 'tmp'), { recursive: true });
writeFileSync(join(upd, 'n.conf'), cfg.upstreamNginxConf(upd, UP));
start('0', 'nginx', ['-c', join(upd, 'n.conf'), '-p', upd]);
const boot = join(dir, 'b.yaml'); writeFileSync(boot, cfg.trellisBootstrap(PORT, UP));
const flags = (process.env.NODE_FLAGS || '').split(' ').filter(Boolean);
const proxy = start('1', 'node', ['--perf-basic-prof', ...flags, join(dist, 'src/cli/main.js'), 'proxy', '-c', boot, '--log-level', 'warning', '--drain-time-s', '0']);
for (const p of [UP, PORT]) for (let i = 0; i < 200 && !(await listening(p)); i++) await sleep(200);
writeFileSync(join(dir, 'plain.lua'), cfg.WRK_PLAIN_LUA); writeFileSync(join(dir, 'paced.lua'), cfg.wrkPacedLua(RATE));
const wrk = (c, d, lua) => spawn('taskset', ['-c', '0', 'wrk', '-t1', `-c${c}`, `-d${d}s`, '--timeout', '5s', '-s', join(dir, lua), `http://127.0.0.1:${PORT}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
const waitExit = (c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)));
await waitExit(wrk(32, 4, 'plain.lua')); // warm-up: V8 tiers up
const data = join(dir, 'perf.data');
const rec = spawn('perf', ['record', '-F', '2999', '-g', '-o', data, '-p', String(proxy.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
let recErr = ''; rec.stderr.on('data', (d) => (recErr += d));
const recExit = new Promise((r) => rec.once('exit', r));
await sleep(300);
const load = wrk(32, SECONDS, 'paced.lua');
let out = ''; load.stdout.on('data', (d) => (out += d));
await waitExit(load);
rec.kill('SIGINT'); await recExit;
if (!existsSync(data)) { console.log(`perf record failed: ${recErr}`); process.exit(1); }
const j = out.split('\n').find((l) => l.startsWith('WRK_JSON'));
if (j) { const r = JSON.parse(j.slice(9)); console.log(`perf-profile: ${(r.requests / r.duration_us * 1e6).toFixed(0)} req/s achieved, p50 ${r.p50_us} us, p99 ${r.p99_us} us`); }
const report = (sort) => spawnSync('perf', ['report', '-i', data, '--no-children', '--sort', sort, '--stdio', '--percent-limit', '0.3', '-g', 'none'], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout
  .split('\n').filter((l) => l && !l.startsWith('#')).slice(0, TOP).join('\n');
console.log('--- self time by DSO'); console.log(report('dso'));
console.log('--- self time by symbol'); console.log(report('dso,sym'));
if (process.env.KEEP) { mkdirSync(process.env.KEEP, { recursive: true }); copyFileSync(data, join(process.env.KEEP, 'perf.data')); const map = `/tmp/perf-${proxy.pid}.map`; if (existsSync(map)) copyFileSync(map, join(process.env.KEEP, `perf-${proxy.pid}.map`)); }
rmSync(dir, { recursive: true, force: true });
