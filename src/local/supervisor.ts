// Runs the local mesh's processes: prefixed, coloured logs; a crashed process is reported and restarted with exponential backoff; stop in reverse order by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ExponentialBackoff } from '../common/backoff.js';

export interface ProcessSpec {
  /** Unique name, the log prefix (`reviews-v2`, `reviews-v2/sidecar`). */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

export type ProcessState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped';

export interface ProcessStatus {
  readonly name: string;
  readonly state: ProcessState;
  readonly pid: number | undefined;
  readonly restarts: number;
  /** `exit 1`, `signal SIGKILL`, or a spawn error. */
  readonly lastExit: string | undefined;
}

export interface SupervisorOptions {
  /** Where prefixed log lines go (default: stdout). */
  readonly write?: (text: string) => void;
  /** ANSI colours on prefixes (default: stdout is a TTY and NO_COLOR is unset). */
  readonly color?: boolean;
  /** Backoff between restarts (default 500 ms doubling to 30 s, full jitter). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** A process that ran this long before exiting starts again from the base delay. */
  readonly healthyAfterMs?: number;
  /** SIGTERM, then SIGKILL after this long. */
  readonly stopTimeoutMs?: number;
  /** Called when PIDs change (start, restart, exit), e.g. to rewrite the state file. */
  readonly onChange?: () => void;
}

const COLORS = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96];

/** Whether log prefixes should be coloured on this stream. */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && !('NO_COLOR' in process.env) && process.env['TERM'] !== 'dumb';
}

class ManagedProcess {
  state: ProcessState = 'starting';
  child: ChildProcess | undefined;
  restarts = 0;
  lastExit: string | undefined;
  startedAt = 0;
  timer: NodeJS.Timeout | undefined;
  exited: Promise<void> = Promise.resolve();
  readonly backoff: ExponentialBackoff;

  constructor(readonly spec: ProcessSpec, readonly prefix: string, options: SupervisorOptions) {
    this.backoff = new ExponentialBackoff({ baseMs: options.backoffBaseMs ?? 500, maxMs: options.backoffMaxMs ?? 30_000 });
  }
}

/** Starts processes, prefixes their output, restarts what dies, and stops everything in reverse start order. */
export class Supervisor {
  private readonly processes: ManagedProcess[] = [];
  private readonly write: (text: string) => void;
  private readonly color: boolean;
  private stopping = false;
  private width = 8;

  constructor(private readonly options: SupervisorOptions = {}) {
    this.write = options.write ?? ((text) => process.stdout.write(text));
    this.color = options.color ?? useColor();
  }

  /** A log line under `name`'s prefix (for the supervisor's own messages about a process, and the in-process control plane). */
  log(name: string, line: string): void {
    this.write(`${this.prefixFor(name)} ${line}\n`);
  }

  private prefixFor(name: string): string {
    this.width = Math.max(this.width, name.length);
    const text = `[${name}]`.padEnd(this.width + 2);
    if (!this.color) return text;
    let hash = 0;
    for (const ch of name.split('/')[0]!) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    return `\x1b[${COLORS[hash % COLORS.length]}m${text}\x1b[0m`;
  }

  /** Starts `spec` now; it is restarted with backoff whenever it exits until stop(). */
  start(spec: ProcessSpec): void {
    if (this.processes.some((p) => p.spec.name === spec.name)) throw new Error(`process ${spec.name} is already supervised`);
    const managed = new ManagedProcess(spec, spec.name, this.options);
    this.processes.push(managed);
    this.launch(managed);
  }

  private launch(p: ManagedProcess): void {
    if (this.stopping) return;
    p.state = 'starting';
    p.startedAt = Date.now();
    let child: ChildProcess;
    try {
      child = spawn(p.spec.command, [...p.spec.args], {
        cwd: p.spec.cwd,
        env: { ...process.env, ...p.spec.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group: a terminal's Ctrl-C reaches the supervisor only, which then stops each child in
        // reverse order (`trellis down` finds them by PID if the supervisor itself is gone).
        detached: true,
      });
    } catch (err) {
      this.exitedWith(p, `spawn failed: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    p.child = child;
    let done!: () => void;
    p.exited = new Promise<void>((resolve) => (done = resolve));
    let spawnError: string | undefined;
    child.once('error', (err) => {
      spawnError = `cannot start ${p.spec.command}: ${err.message}`;
      // 'exit' does not follow an ENOENT spawn error, 'close' does.
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.log(p.prefix, line));
    }
    child.once('spawn', () => {
      p.state = 'running';
      this.options.onChange?.();
    });
    child.once('close', (code, signal) => {
      p.child = undefined;
      done();
      this.exitedWith(p, spawnError ?? (signal ? `signal ${signal}` : `exit ${code}`));
    });
  }

  private exitedWith(p: ManagedProcess, how: string): void {
    p.lastExit = how;
    this.options.onChange?.();
    if (this.stopping || p.state === 'stopping') {
      p.state = 'stopped';
      return;
    }
    const ranMs = Date.now() - p.startedAt;
    if (ranMs >= (this.options.healthyAfterMs ?? 10_000)) p.backoff.reset();
    const delay = Math.max(p.backoff.next(), 100);
    p.restarts += 1;
    p.state = 'backoff';
    this.log(p.prefix, `${this.color ? '\x1b[31m' : ''}exited (${how}) after ${(ranMs / 1000).toFixed(1)} s; restart #${p.restarts} in ${(delay / 1000).toFixed(1)} s${this.color ? '\x1b[0m' : ''}`);
    p.timer = setTimeout(() => {
      p.timer = undefined;
      this.launch(p);
    }, delay);
  }

  /**
   * Stops one process for good (no restart): SIGTERM, SIGKILL after the stop timeout; resolves once it exited. A
   * process in restart back-off just stays stopped.
   */
  async stopProcess(name: string): Promise<void> {
    const p = this.find(name);
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    const child = p.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      p.state = 'stopped';
      this.options.onChange?.();
      return;
    }
    p.state = 'stopping';
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs ?? 6_000);
    await p.exited;
    clearTimeout(killer);
  }

  /** Starts a process stopped with stopProcess again (its restart count and back-off start over). */
  startProcess(name: string): void {
    const p = this.find(name);
    if (p.state !== 'stopped') throw new Error(`process ${name} is ${p.state}, not stopped`);
    p.backoff.reset();
    this.launch(p);
  }

  private find(name: string): ManagedProcess {
    const p = this.processes.find((q) => q.spec.name === name);
    if (!p) throw new Error(`no supervised process ${name}`);
    return p;
  }

  status(): ProcessStatus[] {
    return this.processes.map((p) => ({ name: p.spec.name, state: p.state, pid: p.child?.pid, restarts: p.restarts, lastExit: p.lastExit }));
  }

  /**
   * Stops every process, the last started first: SIGTERM to each in reverse start order, waiting for it to exit for at
   * most `staggerMs` before signalling the next (so a gateway goes before the workloads, an application before its
   * sidecar, without adding up every drain); then waits for all, with SIGKILL for any still running after the stop
   * timeout.
   */
  async stop(staggerMs = 400): Promise<void> {
    this.stopping = true;
    const waits: Promise<void>[] = [];
    for (const p of [...this.processes].reverse()) {
      if (p.timer) clearTimeout(p.timer);
      p.timer = undefined;
      const child = p.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) {
        p.state = 'stopped';
        continue;
      }
      p.state = 'stopping';
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs ?? 6_000);
      const exited = p.exited.then(() => {
        clearTimeout(killer);
        p.state = 'stopped';
      });
      waits.push(exited);
      await Promise.race([exited, new Promise((r) => setTimeout(r, staggerMs))]);
    }
    await Promise.all(waits);
    this.options.onChange?.();
  }
}
