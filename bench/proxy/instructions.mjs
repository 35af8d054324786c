// Load-independent cost per request of a proxy build, for iterating on the request path on a shared, busy machine.
//
// Wall-clock CPU figures move ±20-30% with other processes on this 2-core VM; instruction counts do not. For each target
// (a Trellis dist/ directory, or `nginx` for the baseline) this starts the upstream nginx natively, then:
//   callgrind (default): the proxy under `valgrind --tool=callgrind --instr-atstart=no`, a warm-up of WARM requests
//     (uninstrumented, so V8's JIT tiers up at its normal invocation counts), instrumentation on for at least MEASURE
//     requests (wrk -c CONN), off, and the proxy stopped: its totals are the user-space instructions of the measured
//     requests only, divided by the requests wrk completed. Use NODE_FLAGS=--single-threaded for Trellis: valgrind
//     serialises threads, and V8's concurrent compiler and GC threads otherwise make the count vary by ±50%.
//   MODE=syscalls: the proxy natively, `perf stat -e raw_syscalls:sys_enter,task-clock` over MEASURE requests after
//     the warm-up. Prints system calls and CPU µs per request (kernel work is not in callgrind's count).
// Usage: npx tsc -p . && node bench/proxy/instructions.mjs DIST|nginx [...]   (DIST+KEY=VALUE,... adds environment)
//   Env: WARM (10000), MEASURE (2000), CONN (8), MODE (callgrind|syscalls), NODE_FLAGS, KEEP=dir keeps callgrind's files.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, mkdtempSync, rmSync, readdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';

const cfg = await import(new URL('../../dist/bench/proxy/configs.js', import.meta.url).href);
const MEASURE = Number(process.env.MEASURE || 2000);
const WARM = Number(process.env.WARM || 10000);
const CONN = Number(process.env.CONN || 8);
const MODE = process.env.MODE || 'callgrind';
const targets = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'trellis-instr-'));
const procs = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const start = (core, cmd, args, env) => {
  const c = spawn('taskset', ['-c', core, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(env || {}) } });
  c.out = '';
  c.stdout.on('data', (d) => (c.out += d));
  c.stderr.on('data', (d) => (c.out += d));
  procs.push(c);
  return c;
};
function stopAll() {
  for (const c of procs) if (c.exitCode === null && c.signalCode === null) try { process.kill(c.pid, 'SIGKILL'); } catch {}
}
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));

// wrk for a fixed time; the requests it completed are the divisor.
const countLua = `function done(summary) io.write(string.format('WRK_REQUESTS %d %d %d\\n', summary.requests, summary.errors.status, summary.errors.read)) end\n`;
function wrk(port, seconds) {
  writeFileSync(join(dir, 'count.lua'), countLua);
  const r = spawnSync('taskset', ['-c', '0', 'wrk', '-t1', `-c${CONN}`, `-d${seconds}s`, '--timeout', '30s', '-s', join(dir, 'count.lua'), `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const m = /WRK_REQUESTS (\d+) (\d+) (\d+)/.exec(r.stdout);
  if (!m) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  if (Number(m[2]) || Number(m[3])) console.log(`  wrk errors: status ${m[2]} read ${m[3]}`);
  return Number(m[1]);
}
async function waitPort(port, proc) {
  for (let i = 0; i < 600; i++) {
    if (proc.exitCode !== null) throw new Error(`target exited: ${proc.out}`);
    const ok = await new Promise((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); res(true); });
      s.once('error', () => res(false));
    });
    if (ok) return;
    await sleep(500);
  }
  throw new Error('target did not listen');
}

// Ports the kernel reports free (a random block could be another test's: the harness would then measure that).
const { createServer } = await import('node:net');
const freePort = () => new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); }); });
const UP = await freePort();
const upd = join(dir, 'up');
mkdirSync(join(upd, 'tmp'), { recursive: true });
writeFileSync(join(upd, 'n.conf'), cfg.upstreamNginxConf(upd, UP));
const up = start('0', 'nginx', ['-c', join(upd, 'n.conf'), '-p', upd]);
await waitPort(UP, up);

for (const [i, spec] of targets.entries()) {
  const [target, envs] = spec.split('+');
  const env = {};
  for (const kv of (envs || '').split(',').filter(Boolean)) { const [k, v] = kv.split('='); env[k] = v; }
  const port = await freePort();
  let cmd;
  let args;
  if (target === 'nginx') {
    const d = join(dir, `ng${i}`);
    mkdirSync(join(d, 'tmp'), { recursive: true });
    // One process (no master) so the measured process is the one doing the work.
    writeFileSync(join(d, 'n.conf'), cfg.proxyNginxConf(d, port, UP).replace('master_process on;', 'master_process off;'));
    [cmd, args] = ['nginx', ['-c', join(d, 'n.conf'), '-p', d]];
  } else {
    const b = join(dir, `t${i}.yaml`);
    writeFileSync(b, cfg.trellisBootstrap(port, UP));
    [cmd, args] = ['node', [...(process.env.NODE_FLAGS || '').split(' ').filter(Boolean), join(target, 'src/cli/main.js'), 'proxy', '-c', b, '--log-level', 'warning', '--drain-time-s', '0']];
  }
  const out = join(dir, `cg${i}.out`);
  const p = MODE === 'callgrind'
    ? start('1', 'valgrind', ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${out}`, cmd, ...args], env)
    : start('1', cmd, args, env);
  await waitPort(port, p);
  if (process.env.DEBUG) console.log('listening', spec);
  // Warm-up and measurement by request count, in 5 s wrk runs: under valgrind on a loaded machine a fixed time can
  // leave the JIT cold (a few hundred requests) and the measured window full of compilation.
  let warmed = 0;
  while (warmed < WARM) warmed += wrk(port, 5);
  if (p.exitCode !== null) throw new Error(`target exited: ${p.out}`);
  if (process.env.DEBUG) console.log('warm-up requests', warmed);
  if (MODE === 'callgrind') {
    spawnSync('callgrind_control', ['-i', 'on', String(p.pid)]);
    let n = 0;
    while (n < MEASURE) n += wrk(port, 5);
    spawnSync('callgrind_control', ['-i', 'off', String(p.pid)]);
    await new Promise((res) => { p.once('exit', res); process.kill(p.pid, 'SIGTERM'); });
    const files = readdirSync(dir).filter((f) => f.startsWith(`cg${i}.out`));
    let total = 0;
    for (const f of files) {
      const m = /\ntotals: (\d+)/.exec(readFileSync(join(dir, f), 'utf8'));
      if (m) total += Number(m[1]);
    }
    if (process.env.KEEP) for (const f of files) copyFileSync(join(dir, f), join(process.env.KEEP, `${f}.${i}`));
    console.log(`${spec.padEnd(40)} ${(total / n).toFixed(0).padStart(8)} instructions/request (${n} requests, ${total} instructions)`);
  } else {
    const perf = spawn('perf', ['stat', '-x', ',', '-e', 'raw_syscalls:sys_enter,task-clock', '-p', String(p.pid)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let perfOut = '';
    perf.stderr.on('data', (d) => (perfOut += d));
    await sleep(300);
    let n = 0;
    while (n < MEASURE) n += wrk(port, 5);
    await new Promise((res) => { perf.once('exit', res); perf.kill('SIGINT'); });
    process.kill(p.pid, 'SIGTERM');
    const sys = Number(/^([\d.]+),,raw_syscalls:sys_enter/m.exec(perfOut)?.[1]);
    const ms = Number(/^([\d.]+),msec,task-clock/m.exec(perfOut)?.[1]);
    console.log(`${spec.padEnd(40)} ${(sys / n).toFixed(2)} syscalls/request, ${(ms * 1000 / n).toFixed(1)} us CPU/request (${n} requests)`);
  }
}
stopAll();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
