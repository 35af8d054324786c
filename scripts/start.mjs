#!/usr/bin/env node
// `npm start`: (setup.mjs has installed and built) brings up the Bookinfo mesh with `trellis up examples/bookinfo`;
// extra arguments go to `trellis up` (`npm start -- --port-base 16100`). Ctrl-C stops the mesh.
import { spawn } from 'node:child_process';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const child = spawn(process.execPath, [join(repo, 'dist', 'src', 'cli', 'main.js'), 'up', join(repo, 'examples', 'bookinfo'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: repo,
});
// The terminal's Ctrl-C reaches `trellis up` too, which stops the mesh; wait for it rather than dying first.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal === 'SIGINT' ? 'SIGINT' : signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
