// `trellis up [DIR]`: a whole mesh on this machine from DIR/mesh.yaml (control plane, each workload beside its sidecar, the gateways), thin over src/local/.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { emitKeypressEvents } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { parseDurationOption } from './control.js';
import { formatTable } from './table.js';

const CLI = fileURLToPath(new URL('../main.js', import.meta.url));
/** Set on the background supervisor `--detach` starts, so it runs in the foreground of its own session. */
const DETACHED_ENV = 'TRELLIS_UP_DETACHED';

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1024 || n > 65000) throw new InvalidArgumentError(`expected a port number 1024-65000, got ${JSON.stringify(value)}`);
  return n;
}

interface UpOptions {
  detach?: boolean;
  portBase?: number;
  readyTimeout: number;
  color?: boolean;
  isolated?: boolean;
}

export function upCommand(): Command {
  return new Command('up')
    .description('Run a whole mesh on this machine from DIR/mesh.yaml: the control plane, each workload beside its sidecar, and the gateways')
    .argument('[dir]', 'the mesh directory (holding mesh.yaml)', 'examples/bookinfo')
    .option('-d, --detach', 'start in the background, write DIR/.trellis/state.json and return (stop with `trellis down DIR`)')
    .option('--port-base <port>', "first port of the mesh's port blocks (default: mesh.yaml's portBase, else 15100)", parsePort)
    .option('--ready-timeout <duration>', 'how long to wait for every proxy to sync before printing the status', parseDurationOption, 90_000)
    .option('--no-color', 'no colours in log prefixes (also: NO_COLOR, or when stdout is not a terminal)')
    .option('--isolated', "root only: every sidecar'd workload as a pod (own network namespace and IP on the trellis0 bridge, Istio's capture rules, no HTTP_PROXY)")
    .addHelpText('after', `
Ports: the control plane takes <base> (xDS) and <base>+1 (monitoring); the i-th workload or gateway (from 1) takes
<base>+10i (application), +1 (sidecar outbound, its HTTP_PROXY), +2 (sidecar inbound, what its WorkloadEntry names)
and +3 (proxy admin). The watched config dir is DIR/.trellis/config (rebuilt on every start): copy Istio YAML there.
While running, press Enter (or s) for the status table; Ctrl-C stops everything.`)
    .action(async (dir: string, opts: UpOptions) => {
      const meshDir = resolve(dir);
      if (opts.detach && process.env[DETACHED_ENV] !== '1') {
        process.exitCode = await detach(meshDir, opts);
        return;
      }
      process.exitCode = await runForeground(meshDir, opts);
    });
}

async function runForeground(meshDir: string, opts: UpOptions): Promise<number> {
  const { startLocalMesh } = await import('../../local/local-mesh.js');
  const { ManifestError } = await import('../../local/manifest.js');
  const started = Date.now();
  let mesh;
  try {
    mesh = await startLocalMesh({ dir: meshDir, ...(opts.portBase !== undefined ? { portBase: opts.portBase } : {}), ...(opts.color === false ? { color: false } : {}), ...(opts.isolated ? { isolated: true } : {}) });
  } catch (err) {
    if (err instanceof ManifestError) process.stderr.write(`trellis up: the mesh manifest cannot be used:\n${err.details.map((d) => `  ${d}`).join('\n')}\n`);
    else process.stderr.write(`trellis up: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  let stopping: Promise<void> | undefined;
  const stop = (signal: string): void => {
    if (stopping) return;
    process.stdout.write(`\ntrellis up: ${signal}: stopping every process (last started first)\n`);
    stopping = mesh.stop().then(() => {
      process.stdout.write('trellis up: stopped\n');
      if (process.stdin.isTTY) process.stdin.setRawMode(false);
      process.stdin.pause();
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => stop('SIGHUP'));
  // `trellis status` asks for fresh rows in the state file.
  process.on('SIGUSR2', () => void mesh.statusTable());

  const waiting = await mesh.waitReady(opts.readyTimeout);
  if (stopping) {
    await stopping;
    return 0;
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const lines = [''];
  lines.push(waiting.length === 0 ? `trellis up: mesh ready in ${seconds} s` : `trellis up: started in ${seconds} s; not ready yet: ${waiting.join(', ')} (see their logs above)`);
  lines.push(await mesh.statusTable());
  for (const skip of mesh.skipped) lines.push(`left out: ${skip}`);
  for (const m of mesh.members) {
    if (m.kind === 'gateway') for (const port of m.listenerPorts ?? []) lines.push(`gateway ${m.name}: 127.0.0.1:${port}`);
  }
  if (mesh.manifest.urls.length > 0) lines.push(`open: ${mesh.manifest.urls.join('  ')}`);
  lines.push(`config dir (watched; copy Istio YAML here to apply it): ${mesh.configDir}`);
  lines.push(`control plane: xDS ${mesh.controlHost}:${mesh.control.xdsPort}, debug http://127.0.0.1:${mesh.control.monitoringPort}/debug/syncz`);
  if (mesh.dashboardUrl) lines.push(`dashboard: ${mesh.dashboardUrl}`);
  lines.push(process.stdin.isTTY ? 'Enter: status table · Ctrl-C: stop\n' : 'Ctrl-C (SIGINT) or SIGTERM: stop\n');
  process.stdout.write(lines.join('\n'));

  if (process.stdin.isTTY) {
    emitKeypressEvents(process.stdin);
    process.stdin.setRawMode(true);
    process.stdin.on('keypress', (_s: string, key: { name?: string; ctrl?: boolean }) => {
      if (key.ctrl && key.name === 'c') stop('Ctrl-C');
      else if (key.name === 'return' || key.name === 's') void mesh.statusTable().then((t) => process.stdout.write(`\n${t}\n`));
    });
  }
  await new Promise<void>((resolveStop) => {
    const timer = setInterval(() => {
      if (stopping) {
        clearInterval(timer);
        void stopping.then(resolveStop);
      }
    }, 100);
  });
  return 0;
}

/** Starts `trellis up` again as a background session leader logging to .trellis/up.log, and waits for its start-up. */
async function detach(meshDir: string, opts: UpOptions): Promise<number> {
  const { readState, isAlive, stateDir } = await import('../../local/state-file.js');
  const { STATUS_HEADER } = await import('../../local/local-mesh.js');
  const running = readState(meshDir);
  if (running && isAlive(running.supervisorPid)) {
    process.stderr.write(`trellis up: a mesh from ${running.manifest} is already running (supervisor PID ${running.supervisorPid}); stop it with \`trellis down ${meshDir}\`\n`);
    return 1;
  }
  mkdirSync(stateDir(meshDir), { recursive: true });
  const logPath = resolve(stateDir(meshDir), 'up.log');
  const log = openSync(logPath, 'w');
  const args = [CLI, 'up', meshDir, '--no-color', '--ready-timeout', String(opts.readyTimeout)];
  if (opts.portBase !== undefined) args.push('--port-base', String(opts.portBase));
  if (opts.isolated) args.push('--isolated');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, [DETACHED_ENV]: '1' } });
  closeSync(log);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + opts.readyTimeout + 30_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      process.stderr.write(`trellis up: the background mesh exited (code ${exited}) during start-up; see ${logPath}\n`);
      return 1;
    }
    const state = readState(meshDir);
    if (state && state.supervisorPid === child.pid && state.ready && state.rows) {
      process.stdout.write(`${formatTable(STATUS_HEADER, state.rows)}\nmesh running in the background (supervisor PID ${child.pid}); logs: ${logPath}; config dir: ${state.configDir}\nstop it with: trellis down ${meshDir}\n`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  process.stderr.write(`trellis up: the background mesh did not finish starting; see ${logPath} (stop it with \`trellis down ${meshDir}\`)\n`);
  return 1;
}
