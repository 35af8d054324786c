// `.trellis/state.json` under the mesh dir: the supervisor's and every child's PID and the ports, for `trellis down` and `trellis status`.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The directory a local mesh keeps its generated files in (gitignored). */
export const STATE_DIR = '.trellis';
export const STATE_FILE = 'state.json';

export interface StateProcess {
  readonly name: string;
  readonly pid: number | undefined;
  readonly state: string;
  readonly restarts: number;
}

export interface MeshState {
  readonly supervisorPid: number;
  readonly startedAt: string;
  readonly manifest: string;
  readonly configDir: string;
  readonly monitoringPort: number;
  readonly xdsPort: number;
  /** The start-up wait is over (everything ready, or the wait timed out); the status rows tell which. */
  readonly ready: boolean;
  readonly processes: readonly StateProcess[];
  /** The status table rows, as last computed. */
  readonly rows?: readonly (readonly string[])[];
}

export function stateDir(meshDir: string): string {
  return join(meshDir, STATE_DIR);
}

export function statePath(meshDir: string): string {
  return join(stateDir(meshDir), STATE_FILE);
}

/** Writes atomically (rename), so a reader never sees half a file. */
export function writeState(meshDir: string, state: MeshState): void {
  mkdirSync(stateDir(meshDir), { recursive: true });
  const tmp = `${statePath(meshDir)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, statePath(meshDir));
}

export function readState(meshDir: string): MeshState | undefined {
  const path = statePath(meshDir);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as MeshState;
  } catch {
    return undefined;
  }
}

export function removeState(meshDir: string): void {
  rmSync(statePath(meshDir), { force: true });
}

/** Whether a process with this PID exists (signal 0 checks without signalling). */
export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
