// Quick same-run comparison for iterating on the proxy's request path (the full figures: `npm run bench -- proxy`).
// Upstream nginx and wrk on CPU 0; the nginx proxy baseline and one Trellis per given dist/ directory on CPU 1.
// Each round, per target: wrk -c32 unpaced (req/s), -c32 paced at RATE (CPU/request from /proc, p50/p99), -c1 (p99).
// Prints medians and ratios to nginx. A target `DIST+KEY=VALUE,...` runs that build with extra environment.
// Usage: npx tsc -p . && node bench/proxy/quick-compare.mjs ROUNDS DIST [DIST...]   (copy dist/ away to keep a build)
// Env: RATE (4000), D (seconds per wrk run, 3).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
const cfg = await import(new URL('../../dist/bench/proxy/configs.js', import.meta.url).href);
const rounds = Number(process.argv[2] || 3);
const dists = process.argv.slice(3);
const dir = mkdtempSync(join(tmpdir(), 'trellis-quick-')); mkdirSync(join(dir,'tmp'));
const procs = [];
const start = (core, cmd, args, env) => { const c = spawn('taskset', ['-c', core, cmd, ...args], { stdio: ['ignore','pipe','pipe'], env: { ...process.env, ...(env||{}) } }); c.out=''; c.stdout.on('data',d=>c.out+=d); c.stderr.on('data',d=>c.out+=d); procs.push(c); return c; };
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
const base = 20000 + Math.floor(Math.random()*20000);
const UP = base, NG = base+1;
const upd = join(dir,'up'); mkdirSync(upd); mkdirSync(join(upd,'tmp'));
writeFileSync(join(upd,'n.conf'), cfg.upstreamNginxConf(upd, UP));
start('0','nginx',['-c', join(upd,'n.conf'), '-p', upd]);
const ngd = join(dir,'ng'); mkdirSync(ngd); mkdirSync(join(ngd,'tmp'));
writeFileSync(join(ngd,'n.conf'), cfg.proxyNginxConf(ngd, NG, UP));
const ng = start('1','nginx',['-c', join(ngd,'n.conf'), '-p', ngd]);
const targets = [{ name: 'nginx', port: NG, pids: () => [ng.pid, ...children(ng.pid)] }];
dists.forEach((spec, i) => {
  const [d, envs] = spec.split('+'); const env = {}; for (const kv of (envs||'').split(',').filter(Boolean)) { const eq = kv.indexOf('='); env[kv.slice(0, eq)] = kv.slice(eq + 1); }
  const port = base + 2 + i;
  const b = join(dir, `t${i}.yaml`); writeFileSync(b, cfg.trellisBootstrap(port, UP));
  const c = start('1', 'node', [join(d,'src/cli/main.js'), 'proxy', '-c', b, '--log-level', 'warning', '--drain-time-s', '0'], env);
  targets.push({ name: `T${i}:${spec}`, port, pids: () => [c.pid], c });
});
function children(pid) { try { return readFileSync(`/proc/${pid}/task/${pid}/children`,'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } }
// CPU time in µs (utime + stime, all threads); sys() the kernel's part alone.
function cpu(pids, field) { let t=0; for (const p of pids) { try { const s = readFileSync(`/proc/${p}/stat`,'utf8'); const f = s.slice(s.lastIndexOf(')')+2).split(' '); t += field === 'sys' ? Number(f[12]) : Number(f[11])+Number(f[12]); } catch {} } return t*10000; }
writeFileSync(join(dir,'plain.lua'), cfg.WRK_PLAIN_LUA); writeFileSync(join(dir,'paced.lua'), cfg.wrkPacedLua(Number(process.env.RATE||4000)));
function wrk(port, c, d, lua) {
  const r = spawnSync('taskset', ['-c','0','wrk','-t1',`-c${c}`,`-d${d}s`,'--timeout','5s','-s',join(dir,lua),`http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const line = r.stdout.split('\n').find(l => l.startsWith('WRK_JSON')); if (!line) { return { err: r.stdout + r.stderr }; }
  return JSON.parse(line.slice(9));
}
// Wait until every target listens (start-up takes seconds on a loaded machine), at most 60 s.
const { connect } = await import('node:net');
const listening = (port) => new Promise((res) => { const s = connect(port, '127.0.0.1'); s.once('connect', () => { s.destroy(); res(true); }); s.once('error', () => res(false)); });
for (const t of [{ port: UP }, ...targets]) for (let i = 0; i < 200 && !(await listening(t.port)); i++) await sleep(300);
for (const t of targets) { const r = wrk(t.port, 32, 2, 'plain.lua'); if (r.err) console.log(t.name, 'warmup fail', r.err, t.c?.out); }
const res = {}; for (const t of targets) res[t.name] = { rps: [], cpu: [], sys: [], p99: [], p50: [], p99c1: [] };
const D = Number(process.env.D || 3);
for (let r = 0; r < rounds; r++) {
  const order = targets.slice(r % targets.length).concat(targets.slice(0, r % targets.length));
  for (const t of order) {
    const a = wrk(t.port, 32, D, 'plain.lua'); res[t.name].rps.push(a.requests / a.duration_us * 1e6);
    const c0 = cpu(t.pids()), s0 = cpu(t.pids(), 'sys'); const b = wrk(t.port, 32, D, 'paced.lua'); const c1 = cpu(t.pids()), s1 = cpu(t.pids(), 'sys');
    res[t.name].cpu.push((c1 - c0) / b.requests); res[t.name].sys.push((s1 - s0) / b.requests); res[t.name].p99.push(b.p99_us); res[t.name].p50.push(b.p50_us);
    const e = wrk(t.port, 1, 2, 'plain.lua'); res[t.name].p99c1.push(e.p99_us);
    if (a.status || b.status || a.read || b.timeout) console.log(t.name, 'errors', JSON.stringify(a), JSON.stringify(b));
  }
}
const med = (a) => { const s = [...a].sort((x,y)=>x-y); return s[Math.floor(s.length/2)]; };
const n = res.nginx; const nm = { rps: med(n.rps), cpu: med(n.cpu), p99: med(n.p99), p99c1: med(n.p99c1) };
for (const t of targets) { const x = res[t.name]; const m = { rps: med(x.rps), cpu: med(x.cpu), sys: med(x.sys), p50: med(x.p50), p99: med(x.p99), p99c1: med(x.p99c1) };
  console.log(`${t.name.padEnd(28)} rps ${m.rps.toFixed(0).padStart(6)} (${(m.rps/nm.rps).toFixed(2)}x)  cpu/rq ${m.cpu.toFixed(1).padStart(6)}us (${(m.cpu/nm.cpu).toFixed(2)}x; sys ${m.sys.toFixed(1)})  paced p50 ${m.p50} p99 ${m.p99}us (${(m.p99/nm.p99).toFixed(2)}x)  c1 p99 ${m.p99c1}us (${(m.p99c1/nm.p99c1).toFixed(2)}x)  cpu rounds ${x.cpu.map(v=>v.toFixed(0)).join(',')}`); }
// Per-round ratios (each target against nginx in the same round, and against the first Trellis target): the machine's
// state drifts between rounds, so the median of same-round ratios is steadier than the ratio of medians.
const first = targets[1]?.name;
for (const t of targets.slice(1)) {
  const x = res[t.name]; const vsNginx = x.cpu.map((v, r) => v / n.cpu[r]); const vsFirst = x.cpu.map((v, r) => v / res[first].cpu[r]);
  console.log(`${t.name.padEnd(28)} CPU/request per round vs nginx: median ${med(vsNginx).toFixed(2)}x (${vsNginx.map((v) => v.toFixed(2)).join(',')}); vs ${first}: median ${med(vsFirst).toFixed(3)}x`);
}
for (const c of procs) { for (const p of children(c.pid)) try { process.kill(p, 'SIGKILL'); } catch {} try { process.kill(c.pid, 'SIGKILL'); } catch {} }
rmSync(dir, { recursive: true, force: true });
