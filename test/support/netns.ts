// Network namespaces for tests that need real packets (iptables capture, SO_ORIGINAL_DST): pods on a bridge that lives in
// its own switch namespace, so nothing is added to the host's namespace. Names carry a prefix and this process's pid;
// everything is removed by close(), at process exit, and (for dead pids) by the next run.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** Prefix of every namespace and interface this helper creates: `trc<pid>-…` (interface names stay within 15 chars). */
const PREFIX = 'trc';

export interface NetnsPod {
  /** Namespace name, for `ip netns exec`. */
  readonly ns: string;
  /** The pod's address on the bridge. */
  readonly ip: string;
}

export interface PodProcess {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Why namespace tests cannot run here (not root, tools missing), or undefined when they can. */
export function netnsUnavailable(tools: readonly string[] = ['ip', 'iptables-restore', 'iptables-save']): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces and iptables need root (CI runs as root)';
  for (const tool of tools) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (Debian: apt-get install iproute2 iptables)`;
  }
  const probe = `${PREFIX}${process.pid}-probe`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `cannot create a network namespace: ${add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function inNs(ns: string, ...args: string[]): void {
  ip('netns', 'exec', ns, ...args);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces left by earlier runs of this helper whose process is gone (a crash, a SIGKILL). */
export function removeLeftovers(): string[] {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const removed: string[] = [];
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    spawnSync('ip', ['netns', 'del', name]);
    removed.push(name);
  }
  return removed;
}

const live = new Set<NetnsLab>();
let labs = 0;
let exitHookInstalled = false;

/** A bridge in a switch namespace and pods attached to it by veth pairs; `/24` addresses from `subnet` (`10.250.0`). */
export class NetnsLab {
  readonly pods: NetnsPod[] = [];
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<PodProcess>();
  private readonly switchNs: string;
  private closed = false;

  constructor(private readonly subnet = '10.250.0') {
    removeLeftovers();
    const id = `${PREFIX}${process.pid}`;
    this.switchNs = `${id}-sw${labs++}`;
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      // Last resort when a test run exits without its after hooks: namespaces must not outlive the process.
      process.once('exit', () => {
        for (const lab of live) lab.removeNamespaces();
      });
    }
    live.add(this);
    this.addNamespace(this.switchNs);
    inNs(this.switchNs, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    inNs(this.switchNs, 'ip', 'link', 'set', 'br0', 'up');
  }

  private addNamespace(name: string): void {
    ip('netns', 'add', name);
    this.namespaces.push(name);
    inNs(name, 'ip', 'link', 'set', 'lo', 'up');
  }

  /** A pod: its own namespace, `eth0` with the next address, a veth to the bridge. */
  addPod(name: string): NetnsPod {
    const index = this.pods.length + 2;
    const ns = `${PREFIX}${process.pid}-${name}`;
    const podIp = `${this.subnet}.${index}`;
    this.addNamespace(ns);
    const hostSide = `v${index}`;
    // Created inside the switch namespace, then one end moved into the pod: the host namespace never sees them.
    inNs(this.switchNs, 'ip', 'link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    inNs(this.switchNs, 'ip', 'link', 'set', hostSide, 'master', 'br0');
    inNs(this.switchNs, 'ip', 'link', 'set', hostSide, 'up');
    inNs(ns, 'ip', 'addr', 'add', `${podIp}/24`, 'dev', 'eth0');
    inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
    const pod = { ns, ip: podIp };
    this.pods.push(pod);
    return pod;
  }

  /** Runs a command to completion inside a pod; throws with its stderr when it fails. */
  exec(pod: NetnsPod, command: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): string {
    const r = spawnSync('ip', ['netns', 'exec', pod.ns, command, ...args], { encoding: 'utf8', input: options.input, timeout: options.timeoutMs ?? 20_000 });
    if (r.status !== 0) throw new Error(`${pod.ns}: ${command} ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Like exec, but returns the exit status and output instead of throwing. */
  run(pod: NetnsPod, command: string, args: readonly string[], timeoutMs = 20_000): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', pod.ns, command, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Starts a long-running process inside a pod (`ip netns exec` execs it, so the child's pid is the process's). */
  start(pod: NetnsPod, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): PodProcess {
    const child = spawn('ip', ['netns', 'exec', pod.ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const proc: PodProcess = {
      child,
      output: () => out,
      exited,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        this.processes.delete(proc);
      },
    };
    this.processes.add(proc);
    return proc;
  }

  /** The namespaces this lab created that still exist (for the test that checks clean-up). */
  remainingNamespaces(): string[] {
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    const names = new Set(list.split('\n').map((l) => l.split(' ')[0]));
    return this.namespaces.filter((n) => names.has(n));
  }

  private removeNamespaces(): void {
    for (const proc of this.processes) proc.child.kill('SIGKILL');
    // Deleting a namespace removes its veths and rules with it.
    for (const ns of this.namespaces) spawnSync('ip', ['netns', 'del', ns]);
  }

  /** Stops every process started here, then removes the namespaces (and with them their veths, bridge and rules). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.processes].map((p) => p.stop()));
    this.removeNamespaces();
    live.delete(this);
  }
}
