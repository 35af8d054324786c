// Proxy data path: req/s, p50/p99 and CPU per request of Trellis vs nginx and HAProxy (and a direct connection) on one nginx upstream, wrk, HTTP/1.1 keep-alive, 1 KiB body.
//
// Layout (2 cores): wrk (-t1) and the upstream nginx (1 worker) pinned to one core, the proxy under test to the
// other. All targets run for the whole benchmark; each round measures each target in turn, the order rotated by
// one per round, and figures are medians over rounds. Measurements:
//   throughput  wrk -c32, DURATION s, req/s
//   latency     wrk -c1, DURATION s, p50/p99
//   fixed rate  wrk -cPACED_CONNECTIONS paced by a Lua delay() at RATE req/s, PACED_DURATION s: p50/p99 and the
//               proxy's CPU time per request, (utime+stime of all its processes, /proc/<pid>/stat) / requests.
// Environment: ROUNDS (5), DURATION (3), PACED_DURATION (5), RATE (4000), PACED_CONNECTIONS (32).
// `npm run bench -- proxy --stats`: also Trellis with Istio's metadata exchange and istio.stats filters ("Trellis+stats"),
// measured in the same rounds, and the ratios stats-on / stats-off (the cost of Istio's standard metrics).
// `npm run bench -- proxy --profile`: Trellis alone under node --cpu-prof at the fixed rate; prints its top
// self-time functions within the measured window.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { median, printFigure, printRatio } from './report.js';
import { haproxyConf, proxyNginxConf, trellisBootstrap, upstreamNginxConf, WRK_PLAIN_LUA, wrkPacedLua } from './proxy/configs.js';
import { chooseCores, cpuSeconds, cpuSplit, descendants, freePort, ProcessSet, sleep, waitReady, type Cores } from './proxy/processes.js';
import { runWrk, type WrkResult } from './proxy/wrk.js';
import { summarizeProfile } from './proxy/cpu-profile.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 5);
const DURATION = Number(process.env['DURATION'] ?? 3);
const PACED_DURATION = Number(process.env['PACED_DURATION'] ?? 5);
const RATE = Number(process.env['RATE'] ?? 4000);
const CONNECTIONS = 32;
const PACED_CONNECTIONS = Number(process.env['PACED_CONNECTIONS'] ?? 32);
const PROFILE = process.argv.includes('--profile');
const STATS = process.argv.includes('--stats');

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const trellisCli = join(repo, 'dist', 'src', 'cli', 'main.js');

interface Target {
  readonly name: string;
  readonly port: number;
  /** The processes whose CPU counts: the proxy (nginx: master and worker). Empty for direct. */
  readonly pids: () => number[];
  readonly unavailable?: string;
  readonly throughput: WrkResult[];
  readonly latency: WrkResult[];
  readonly paced: { result: WrkResult; cpuUsPerRequest: number }[];
  /** Connections the upstream accepted, and requests sent, during this target's measured runs. */
  upstreamConnections: number;
  requests: number;
}

/** Connections the upstream nginx has accepted so far (stub_status). */
async function upstreamAccepts(upstreamPort: number): Promise<number> {
  const reply = await fetch(`http://127.0.0.1:${upstreamPort}/bench-stub-status`);
  const text = await reply.text();
  // "Active connections: 1 \nserver accepts handled requests\n 12 12 34 \n..."
  const accepts = /server accepts handled requests\s+(\d+)/.exec(text)?.[1];
  if (accepts === undefined) throw new Error(`unexpected stub_status reply: ${text}`);
  return Number(accepts);
}

/** "(rounds a–b)": the spread behind a median. */
function spread(values: readonly number[], digits = 0): string {
  if (values.length < 2) return '';
  return ` (rounds ${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;
}

function load(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return 'uptime unavailable';
  }
}

const processes = new ProcessSet();
const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-proxy-'));
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await processes.stopAll();
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', () => {
  processes.killAllNow();
  rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    console.error(`\nproxy bench: ${sig}: stopping everything it started`);
    void cleanup().finally(() => process.exit(130));
  });
}

function family(child: ChildProcess): number[] {
  return child.pid === undefined ? [] : [child.pid, ...descendants(child.pid)];
}

async function startNginx(name: string, core: string | undefined, conf: (d: string) => string): Promise<ChildProcess> {
  const d = join(dir, name);
  mkdirSync(join(d, 'tmp'), { recursive: true });
  writeFileSync(join(d, 'nginx.conf'), conf(d));
  return processes.start(name, core, 'nginx', ['-p', d, '-c', join(d, 'nginx.conf')]);
}

async function startTrellis(cores: Cores, port: number, upstreamPort: number, nodeFlags: readonly string[] = [], istioStats = false): Promise<ChildProcess> {
  const name = istioStats ? 'trellis-stats' : 'trellis';
  const bootstrap = join(dir, `${name}-bootstrap.yaml`);
  writeFileSync(bootstrap, trellisBootstrap(port, upstreamPort, { istioStats }));
  return processes.start(name, cores.proxy, process.execPath, [...nodeFlags, trellisCli, 'proxy', '-c', bootstrap, '--log-level', 'warning', '--drain-time-s', '0']);
}

async function ready(name: string, port: number, child: ChildProcess): Promise<string | undefined> {
  try {
    await waitReady(port, child);
    return undefined;
  } catch (err) {
    const tail = processes.output(child).trim().split('\n').slice(-3).join(' | ');
    return `${err instanceof Error ? err.message : String(err)}${tail ? `; output: ${tail}` : ''}`;
  }
}

function scripts(): { plain: string; paced: string } {
  const plain = join(dir, 'plain.lua');
  const paced = join(dir, 'paced.lua');
  writeFileSync(plain, WRK_PLAIN_LUA);
  writeFileSync(paced, wrkPacedLua(RATE));
  return { plain, paced };
}

async function measurePaced(cores: Cores, target: Target, script: string): Promise<{ result: WrkResult; cpuUsPerRequest: number }> {
  const pids = target.pids();
  const before = cpuSeconds(pids);
  const result = await runWrk(processes, cores.generator, { port: target.port, connections: PACED_CONNECTIONS, seconds: PACED_DURATION, script });
  const cpu = cpuSeconds(pids) - before;
  return { result, cpuUsPerRequest: pids.length > 0 ? (cpu * 1e6) / result.requests : Number.NaN };
}

async function profileTrellis(cores: Cores, upstreamPort: number): Promise<void> {
  const profDir = join(dir, 'cpu-prof');
  mkdirSync(profDir);
  const port = await freePort();
  const trellis = await startTrellis(cores, port, upstreamPort, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  const problem = await ready('trellis', port, trellis);
  if (problem) throw new Error(`Trellis unavailable: ${problem}`);
  const { plain, paced } = scripts();
  await runWrk(processes, cores.generator, { port, connections: CONNECTIONS, seconds: 2, script: plain });
  const seconds = Math.max(PACED_DURATION, 10);
  const from = Number(process.hrtime.bigint() / 1000n);
  const before = cpuSplit(family(trellis));
  const result = await runWrk(processes, cores.generator, { port, connections: PACED_CONNECTIONS, seconds, script: paced });
  const after = cpuSplit(family(trellis));
  const cpu = after.user - before.user + after.system - before.system;
  const to = Number(process.hrtime.bigint() / 1000n);
  await processes.stop(trellis, 15_000); // SIGTERM: the proxy exits and node writes the profile
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('node wrote no .cpuprofile (did the proxy exit cleanly on SIGTERM?)');
  const summary = summarizeProfile(join(profDir, file), from, to);
  // PROFILE_OUT=path keeps the raw profile (Chrome DevTools or speedscope read it) before the temp dir goes.
  const keep = process.env['PROFILE_OUT'];
  if (keep) copyFileSync(join(profDir, file), keep);
  console.log(`profile: Trellis at ${RATE} req/s for ${seconds} s under --cpu-prof: ${result.rps.toFixed(0)} req/s achieved, p50 ${(result.p50Us / 1000).toFixed(2)} ms, p99 ${(result.p99Us / 1000).toFixed(2)} ms, ${((cpu * 1e6) / result.requests).toFixed(1)} us CPU/request (profiler on; user ${(((after.user - before.user) * 1e6) / result.requests).toFixed(1)} us, system ${(((after.system - before.system) * 1e6) / result.requests).toFixed(1)} us)`);
  console.log(`profile: ${summary.samples} samples, ${summary.sampledMs.toFixed(0)} ms of the ${summary.windowMs.toFixed(0)} ms window on the main thread`);
  console.log('profile: self time by source');
  for (const s of summary.sources) console.log(`  ${(s.share * 100).toFixed(1).padStart(5)}%  ${s.ms.toFixed(0).padStart(6)} ms  ${s.name}`);
  console.log('profile: top functions by self time');
  for (const f of summary.functions) console.log(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(6)} ms  ${f.name}  ${f.where}`);
}

async function main(): Promise<void> {
  const cores = chooseCores();
  console.log(`proxy bench: load at start: ${load()}`);
  console.log(`proxy bench: layout: ${cores.description}`);

  const upstreamPort = await freePort();
  const upstream = await startNginx('upstream', cores.generator, (d) => upstreamNginxConf(d, upstreamPort));
  const upstreamProblem = await ready('upstream', upstreamPort, upstream);
  if (upstreamProblem) throw new Error(`the upstream nginx did not start: ${upstreamProblem}`);

  if (PROFILE) return profileTrellis(cores, upstreamPort);

  const [nginxPort, haproxyPort, trellisPort] = [await freePort(), await freePort(), await freePort()];
  const nginx = await startNginx('nginx', cores.proxy, (d) => proxyNginxConf(d, nginxPort, upstreamPort));
  const haproxyDir = join(dir, 'haproxy');
  mkdirSync(haproxyDir);
  writeFileSync(join(haproxyDir, 'haproxy.cfg'), haproxyConf(haproxyDir, haproxyPort, upstreamPort));
  const haproxy = processes.start('haproxy', cores.proxy, 'haproxy', ['-db', '-f', join(haproxyDir, 'haproxy.cfg')]);
  const trellis = await startTrellis(cores, trellisPort, upstreamPort);
  const statsPort = STATS ? await freePort() : 0;
  const trellisStats = STATS ? await startTrellis(cores, statsPort, upstreamPort, [], true) : undefined;

  const target = (name: string, port: number, pids: () => number[], unavailable?: string): Target => ({ name, port, pids, unavailable, throughput: [], latency: [], paced: [], upstreamConnections: 0, requests: 0 });
  const targets: Target[] = [
    target('direct', upstreamPort, () => []),
    target('Trellis', trellisPort, () => family(trellis), await ready('Trellis', trellisPort, trellis)),
    target('nginx', nginxPort, () => family(nginx), await ready('nginx', nginxPort, nginx)),
    target('HAProxy', haproxyPort, () => family(haproxy), await ready('HAProxy', haproxyPort, haproxy)),
    ...(trellisStats ? [target('Trellis+stats', statsPort, () => family(trellisStats), await ready('Trellis+stats', statsPort, trellisStats))] : []),
  ];
  for (const t of targets) if (t.unavailable) await processes.stop(t.name === 'Trellis' ? trellis : t.name === 'nginx' ? nginx : t.name === 'Trellis+stats' ? trellisStats! : haproxy);
  const live = targets.filter((t) => !t.unavailable);

  const { plain, paced } = scripts();
  // Warm-up: connections, pools and (for Trellis) the JIT, before any round counts.
  for (const t of live) await runWrk(processes, cores.generator, { port: t.port, connections: CONNECTIONS, seconds: 2, script: plain });

  const perRound = live.length * 2 * DURATION + (live.length - 1) * PACED_DURATION;
  console.log(`proxy bench: ${ROUNDS} rounds x ${live.map((t) => t.name).join(', ')} (about ${Math.round((ROUNDS * perRound) / 60 * 10) / 10} min)`);
  for (let round = 0; round < ROUNDS; round++) {
    const order = live.map((_, i) => live[(i + round) % live.length]!);
    for (const t of order) {
      (globalThis as { gc?: () => void }).gc?.();
      const accepted = await upstreamAccepts(upstreamPort);
      const throughput = await runWrk(processes, cores.generator, { port: t.port, connections: CONNECTIONS, seconds: DURATION, script: plain });
      const latency = await runWrk(processes, cores.generator, { port: t.port, connections: 1, seconds: DURATION, script: plain });
      t.throughput.push(throughput);
      t.latency.push(latency);
      t.requests += throughput.requests + latency.requests;
      if (t.name !== 'direct') {
        const p = await measurePaced(cores, t, paced);
        t.paced.push(p);
        t.requests += p.result.requests;
      }
      t.upstreamConnections += (await upstreamAccepts(upstreamPort)) - accepted - 1; // less the stub_status request's own
    }
    console.log(`proxy bench: round ${round + 1}/${ROUNDS} done; load: ${load().replace(/^.*load average/, 'load average')}`);
  }

  console.log(`\nproxy bench: wrk -t1, HTTP/1.1 keep-alive, 1 KiB body, median of ${ROUNDS} rounds`);
  const figures = new Map<string, { rps: number; p50: number; p99: number; pacedRps: number; pacedP50: number; pacedP99: number; cpu: number }>();
  for (const t of targets) {
    if (t.unavailable) {
      console.log(`${t.name}: unavailable: ${t.unavailable}`);
      continue;
    }
    const f = {
      rps: median(t.throughput.map((r) => r.rps)),
      p50: median(t.latency.map((r) => r.p50Us)),
      p99: median(t.latency.map((r) => r.p99Us)),
      pacedRps: median(t.paced.map((p) => p.result.rps)),
      pacedP50: median(t.paced.map((p) => p.result.p50Us)),
      pacedP99: median(t.paced.map((p) => p.result.p99Us)),
      cpu: median(t.paced.map((p) => p.cpuUsPerRequest)),
    };
    figures.set(t.name, f);
    const errors = [...t.throughput, ...t.latency, ...t.paced.map((p) => p.result)].reduce((n, r) => n + r.errors, 0);
    printFigure(`${t.name} throughput (-c${CONNECTIONS})`, f.rps, `req/s${spread(t.throughput.map((r) => r.rps))}`);
    printFigure(`${t.name} latency p50 (-c1)`, f.p50, `us${spread(t.latency.map((r) => r.p50Us))}`);
    printFigure(`${t.name} latency p99 (-c1)`, f.p99, `us${spread(t.latency.map((r) => r.p99Us))}`);
    if (t.paced.length > 0) {
      const saturated = f.pacedRps < RATE * 0.95 ? ` (below the ${RATE} req/s asked: saturated)` : '';
      printFigure(`${t.name} fixed rate achieved (-c${PACED_CONNECTIONS})`, f.pacedRps, `req/s${saturated}`);
      printFigure(`${t.name} fixed rate p50`, f.pacedP50, `us${spread(t.paced.map((p) => p.result.p50Us))}`);
      printFigure(`${t.name} fixed rate p99`, f.pacedP99, `us${spread(t.paced.map((p) => p.result.p99Us))}`);
      printFigure(`${t.name} CPU per request at ${RATE} req/s`, f.cpu, `us${spread(t.paced.map((p) => p.cpuUsPerRequest), 1)}`);
    }
    console.log(`${t.name} upstream connections opened: ${t.upstreamConnections} for ${t.requests} requests`);
    if (errors > 0) console.log(`${t.name} errors: ${errors} (socket errors or non-2xx responses, all runs together)`);
  }

  /** Each round's CPU-per-request ratio of two targets (measured seconds apart in that round), and their median. */
  const sameRoundCpuRatio = (a: string, b: string): { median: number; rounds: number[] } | undefined => {
    const ta = targets.find((t) => t.name === a && !t.unavailable);
    const tb = targets.find((t) => t.name === b && !t.unavailable);
    if (!ta || !tb || ta.paced.length !== tb.paced.length || ta.paced.length === 0) return undefined;
    const rounds = ta.paced.map((p, i) => p.cpuUsPerRequest / tb.paced[i]!.cpuUsPerRequest);
    return { median: median(rounds), rounds };
  };
  const trellisFigures = figures.get('Trellis');
  if (trellisFigures) {
    for (const base of ['nginx', 'HAProxy']) {
      const b = figures.get(base);
      if (!b) continue;
      printRatio(`Trellis/${base} throughput req/s`, trellisFigures.rps / b.rps);
      printRatio(`Trellis/${base} latency p99 (-c1)`, trellisFigures.p99 / b.p99);
      printRatio(`Trellis/${base} fixed rate p99`, trellisFigures.pacedP99 / b.pacedP99);
      printRatio(`Trellis/${base} CPU per request`, trellisFigures.cpu / b.cpu);
      const sameRound = sameRoundCpuRatio('Trellis', base);
      if (sameRound) console.log(`Trellis/${base} CPU per request, median of same-round ratios: ${sameRound.median.toFixed(2)}x (rounds ${sameRound.rounds.map((r) => r.toFixed(2)).join(', ')})`);
    }
    const n = figures.get('nginx');
    if (n) {
      const verdict = (ratio: number): string => `${ratio <= 2 ? 'PASS' : 'FAIL'} (${ratio.toFixed(2)}x)`;
      // Both statistics of the same rounds: the ratio of the two medians, and the median of each round's own ratio. On a
      // shared machine the second is the steadier (a round's Trellis and nginx runs are seconds apart, while the load
      // drifts between rounds); the verdict is printed for each.
      const sameRound = sameRoundCpuRatio('Trellis', 'nginx');
      console.log(`target CPU per request <= 2x nginx: ${verdict(trellisFigures.cpu / n.cpu)} ratio of medians; ${sameRound ? `${verdict(sameRound.median)} median of same-round ratios` : 'same-round ratios unavailable'}`);
      console.log(`target p99 <= 2x nginx (fixed rate): ${verdict(trellisFigures.pacedP99 / n.pacedP99)}`);
      console.log(`target p99 <= 2x nginx (-c1): ${verdict(trellisFigures.p99 / n.p99)}`);
    }
  } else {
    console.log('Trellis ratios: not measured (Trellis unavailable)');
  }
  const withStats = figures.get('Trellis+stats');
  if (trellisFigures && withStats) {
    // The cost of Istio's standard metrics on the request path: the same proxy with and without the two filters.
    printRatio('Trellis+stats/Trellis throughput req/s', withStats.rps / trellisFigures.rps);
    printRatio('Trellis+stats/Trellis latency p99 (-c1)', withStats.p99 / trellisFigures.p99);
    printRatio('Trellis+stats/Trellis fixed rate p99', withStats.pacedP99 / trellisFigures.pacedP99);
    printRatio('Trellis+stats/Trellis CPU per request', withStats.cpu / trellisFigures.cpu);
    const sameRound = sameRoundCpuRatio('Trellis+stats', 'Trellis');
    if (sameRound) console.log(`Trellis+stats/Trellis CPU per request, median of same-round ratios: ${sameRound.median.toFixed(2)}x`);
  }
  console.log(`proxy bench: load at end: ${load()}`);
}

try {
  await main();
} catch (err) {
  console.error(`proxy bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
