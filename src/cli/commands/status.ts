// `trellis status [DIR]`: the status table of a mesh `trellis up` runs from DIR (asks its supervisor to refresh it).
import { resolve } from 'node:path';
import { Command } from 'commander';

export function statusCommand(): Command {
  return new Command('status')
    .description('Show the status table of the mesh `trellis up --detach` runs from DIR')
    .argument('[dir]', 'the mesh directory', 'examples/bookinfo')
    .action(async (dir: string) => {
      const { readState, isAlive } = await import('../../local/state-file.js');
      const { STATUS_HEADER } = await import('../../local/local-mesh.js');
      const { formatTable } = await import('./table.js');
      const state = readState(resolve(dir));
      if (!state || !isAlive(state.supervisorPid)) {
        process.stdout.write(`no mesh is running from ${resolve(dir)}\n`);
        process.exitCode = 1;
        return;
      }
      // The supervisor refreshes its rows on SIGUSR2; give it a moment, then print what it wrote.
      process.kill(state.supervisorPid, 'SIGUSR2');
      await new Promise((r) => setTimeout(r, 1_000));
      const fresh = readState(resolve(dir)) ?? state;
      process.stdout.write(formatTable(STATUS_HEADER, fresh.rows ?? []));
    });
}
