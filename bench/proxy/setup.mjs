#!/usr/bin/env node
// Installs what bench/proxy.ts needs from Debian's apt, where missing: nginx (upstream and
// baseline), haproxy (baseline), wrk (load generator). Prints their versions. Uses only Node
// built-ins. `apt-get update` runs only when an install fails (the package lists may be stale).
//
// Debian's nginx and haproxy packages start their system service on install; the benchmark runs
// its own instances, so a temporary /usr/sbin/policy-rc.d (exit 101: "action forbidden") keeps
// invoke-rc.d from starting them, and is removed afterwards (only if this script created it).
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const TOOLS = [
  { binary: 'nginx', pkg: 'nginx', version: ['-v'] },
  { binary: 'haproxy', pkg: 'haproxy', version: ['-v'] },
  { binary: 'wrk', pkg: 'wrk', version: ['-v'] },
];

function which(binary) {
  const r = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function apt(args) {
  console.log(`proxy-bench setup: apt-get ${args.join(' ')}`);
  const r = spawnSync('apt-get', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) process.stderr.write((r.stdout ?? '').slice(-2000) + (r.stderr ?? '').slice(-2000));
  return r.status === 0;
}

const missing = TOOLS.filter((t) => which(t.binary) === undefined);
if (missing.length > 0) {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    console.error(`proxy-bench setup: missing ${missing.map((t) => t.binary).join(', ')}; install them as root: apt-get install ${missing.map((t) => t.pkg).join(' ')}`);
    process.exit(1);
  }
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const install = ['install', '-y', '--no-install-recommends', ...missing.map((t) => t.pkg)];
    if (!apt(install) && !(apt(['update']) && apt(install))) {
      console.error('proxy-bench setup: apt-get install failed');
      process.exit(1);
    }
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

for (const tool of TOOLS) {
  const r = spawnSync(tool.binary, tool.version, { encoding: 'utf8' });
  // nginx -v and haproxy -v write to stderr, wrk -v exits 1 after printing its version.
  const line = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim() !== '') ?? '(no version output)';
  console.log(`proxy-bench setup: ${tool.binary}: ${line.trim()}`);
}
