#!/usr/bin/env node
// The `trellis` command: istioctl's role, plus the server subcommands (control, proxy).
import { Command } from 'commander';
import { TRELLIS_VERSION } from '../common/version.js';
import { analyzeCommand } from './commands/analyze.js';
import { controlCommand } from './commands/control.js';
import { dashboardCommand } from './commands/dashboard.js';
import { proxyConfigCommand } from './commands/proxy-config.js';
import { proxyCommand } from './commands/proxy.js';
import { proxyStatusCommand } from './commands/proxy-status.js';
import { iptablesCommand } from './commands/iptables.js';
import { downCommand } from './commands/down.js';
import { statusCommand } from './commands/status.js';
import { upCommand } from './commands/up.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('trellis')
    .description('Trellis service mesh: an Istio-compatible control plane and an Envoy-compatible proxy, speaking xDS v3.')
    .version(TRELLIS_VERSION, '-v, --version', 'print the Trellis version');
  for (const command of [controlCommand(), analyzeCommand(), proxyStatusCommand(), proxyConfigCommand(), proxyCommand(), upCommand(), downCommand(), statusCommand(), dashboardCommand(), iptablesCommand()]) program.addCommand(command);
  return program;
}

await buildProgram().parseAsync(process.argv);
