// The processes of the proxy benchmark: started pinned to a core, their CPU time read from /proc, all stopped by PID on exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'node:http';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ). */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Core layout: the load generator and the upstream share one core, the proxy under test has the other. */
export interface Cores {
  readonly generator: string | undefined;
  readonly proxy: string | undefined;
  readonly description: string;
}

export function chooseCores(): Cores {
  const taskset = spawnSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' });
  if (taskset.status !== 0) return { generator: undefined, proxy: undefined, description: 'taskset not available: processes are not pinned' };
  // "pid N's current affinity list: 0,1" or "0-3"
  const list = /list:\s*(\S+)/.exec(taskset.stdout)?.[1] ?? '';
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const [from, to] = part.split('-').map(Number);
    if (from === undefined || Number.isNaN(from)) continue;
    for (let c = from; c <= (to ?? from); c++) cpus.push(c);
  }
  if (cpus.length < 2) return { generator: undefined, proxy: undefined, description: `only ${cpus.length} CPU allowed (${list}): processes are not pinned` };
  const generator = String(cpus[0]);
  const proxy = String(cpus[1]);
  return { generator, proxy, description: `wrk + upstream nginx on CPU ${generator}, the proxy under test on CPU ${proxy} (of ${list})` };
}

interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  output: string;
}

/** Every process the benchmark starts, so that all of them are stopped, by PID, however the run ends. */
export class ProcessSet {
  private readonly started: Started[] = [];

  /** Starts `command` (through `taskset -c core` when a core is given; taskset execs, so the PID is the command's). */
  start(name: string, core: string | undefined, command: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess {
    const [file, argv] = core === undefined ? [command, [...args]] : ['taskset', ['-c', core, command, ...args]];
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    const entry: Started = { name, child, output: '' };
    const keep = (chunk: Buffer): void => {
      entry.output = (entry.output + chunk.toString('utf8')).slice(-8000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('error', (err) => (entry.output += `\nspawn error: ${err.message}`));
    this.started.push(entry);
    return child;
  }

  output(child: ChildProcess): string {
    return this.started.find((s) => s.child === child)?.output ?? '';
  }

  /** Stops one process and its descendants: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(child: ChildProcess, graceMs = 3000): Promise<void> {
    const pid = child.pid;
    if (pid === undefined) return;
    const family = [pid, ...descendants(pid)];
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      signal(pid, 'SIGTERM');
      await Promise.race([exited, sleep(graceMs)]);
    }
    for (const p of family) if (alive(p)) signal(p, 'SIGKILL');
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.started.map((s) => this.stop(s.child)));
  }

  /** Last resort on process exit: synchronous SIGKILL of everything still running. */
  killAllNow(): void {
    for (const s of this.started) {
      const pid = s.child.pid;
      if (pid === undefined) continue;
      for (const p of [pid, ...descendants(pid)]) if (alive(p)) signal(p, 'SIGKILL');
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The PIDs whose parent chain leads to `pid` (nginx's worker under its master), from /proc. */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) parentOf.set(Number(entry), stat.ppid);
  }
  const found: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const parent = frontier.pop()!;
    for (const [child, ppid] of parentOf) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        frontier.push(child);
      }
    }
  }
  return found;
}

function readStat(pid: number): { ppid: number; ticks: number; user: number; system: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15 (utime and stime cover all threads).
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  return { ppid: Number(fields[1]), ticks: user + system, user, system };
}

/** CPU seconds (user + system, all threads) used so far by the given processes together. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

/** CPU seconds used so far, split into user and system time. */
export function cpuSplit(pids: readonly number[]): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    const stat = readStat(pid);
    user += stat?.user ?? 0;
    system += stat?.system ?? 0;
  }
  return { user: user / CLK_TCK, system: system / CLK_TCK };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One GET; resolves with the status and body length, or rejects. */
export function probe(port: number, timeoutMs = 2000): Promise<{ status: number; length: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let length = 0;
      res.on('data', (chunk: Buffer) => (length += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Waits (bounded) until `port` answers a GET with 200 and the 1 KiB body. */
export async function waitReady(port: number, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before answering on port ${port}`);
    try {
      const reply = await probe(port);
      if (reply.status === 200 && reply.length === 1024) return;
      last = `status ${reply.status}, ${reply.length} bytes`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new Error(`port ${port} did not answer 200 with 1024 bytes within ${timeoutMs / 1000} s (last: ${last})`);
}

/** A port that was free a moment ago (listen on 0, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
