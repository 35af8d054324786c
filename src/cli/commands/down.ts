// `trellis down [DIR]`: stops a mesh `trellis up` started (its supervisor, then any child PID left), from DIR/.trellis/state.json.
import { resolve } from 'node:path';
import { Command } from 'commander';

export function downCommand(): Command {
  return new Command('down')
    .description('Stop the mesh `trellis up` runs from DIR (the supervisor stops its processes, last started first)')
    .argument('[dir]', 'the mesh directory', 'examples/bookinfo')
    .action(async (dir: string) => {
      const { readState, isAlive, removeState } = await import('../../local/state-file.js');
      const meshDir = resolve(dir);
      const state = readState(meshDir);
      if (!state) {
        process.stdout.write(`trellis down: no mesh is running from ${meshDir} (no .trellis/state.json)\n`);
        return;
      }
      const wait = async (pid: number, ms: number): Promise<boolean> => {
        const deadline = Date.now() + ms;
        while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        return !isAlive(pid);
      };
      if (isAlive(state.supervisorPid)) {
        process.kill(state.supervisorPid, 'SIGTERM');
        if (!(await wait(state.supervisorPid, 30_000))) {
          process.stderr.write(`trellis down: supervisor PID ${state.supervisorPid} did not stop in 30 s; killing it\n`);
          process.kill(state.supervisorPid, 'SIGKILL');
        }
      }
      // Whatever the supervisor could not stop (it was killed, or crashed): by PID, last started first.
      let left = 0;
      for (const p of [...state.processes].reverse()) {
        if (p.pid === undefined || !isAlive(p.pid)) continue;
        left += 1;
        process.kill(p.pid, 'SIGTERM');
        if (!(await wait(p.pid, 6_000))) process.kill(p.pid, 'SIGKILL');
      }
      removeState(meshDir);
      process.stdout.write(`trellis down: stopped the mesh from ${state.manifest}${left ? ` (${left} process(es) stopped by PID)` : ''}\n`);
    });
}
