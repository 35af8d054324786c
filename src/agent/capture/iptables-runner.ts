// Applies and removes capture rules with iptables-restore, picking the iptables variant (nft or legacy) the host uses.
import { spawnSync } from 'node:child_process';
import { TrellisError } from '../../common/errors.js';
import { ALL_ISTIO_CHAINS, BUILTIN_CHAINS } from './iptables-rules.js';

export type IptablesVariant = 'nft' | 'legacy' | 'default';
export const IPTABLES_VARIANTS: readonly (IptablesVariant | 'auto')[] = ['auto', 'nft', 'legacy', 'default'];

/** The save/restore commands of one variant: `iptables-nft-save`, `iptables-legacy-restore`, or the system alternative. */
export interface IptablesCommands {
  readonly variant: IptablesVariant;
  readonly save: string;
  readonly restore: string;
  /** What `save` printed when auto detection already ran it (the variant holding rules), so it is not run again. */
  readonly saved?: string;
}

export class CaptureError extends TrellisError {
  constructor(message: string) {
    super('TRELLIS_CAPTURE_FAILED', message);
  }
}

/** Runs a command; what a failed or missing command printed becomes the error. */
export type CommandRunner = (command: string, args: readonly string[], input?: string) => { status: number | null; stdout: string; stderr: string; missing: boolean };

export const runCommand: CommandRunner = (command, args, input) => {
  const r = spawnSync(command, args, { input, encoding: 'utf8' });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? r.error.message : ''), missing };
};

function commandsOf(variant: IptablesVariant): IptablesCommands {
  const infix = variant === 'default' ? '' : `-${variant}`;
  return { variant, save: `iptables${infix}-save`, restore: `iptables${infix}-restore` };
}

/** How many rules a save output holds (lines starting `-A`). */
function ruleCount(save: string): number {
  return save.split('\n').filter((l) => l.startsWith('-A ')).length;
}

/**
 * Which iptables the host uses, as istio-iptables decides: the variant (nft or legacy) that already holds rules, since
 * rules written to the other would be ignored or would conflict; with none (a fresh pod namespace), the system's
 * `iptables` alternative.
 */
export function detectVariant(requested: IptablesVariant | 'auto', run: CommandRunner = runCommand): IptablesCommands {
  if (requested !== 'auto') return commandsOf(requested);
  let best: { variant: IptablesVariant; rules: number; saved: string } | undefined;
  for (const variant of ['nft', 'legacy'] as const) {
    const r = run(commandsOf(variant).save, []);
    if (r.missing || r.status !== 0) continue;
    const rules = ruleCount(r.stdout);
    if (rules > 0 && (!best || rules > best.rules)) best = { variant, rules, saved: r.stdout };
  }
  // With no rules anywhere the system alternative is used, whose save output this did not read (it may be either).
  return best ? { ...commandsOf(best.variant), saved: best.saved } : commandsOf('default');
}

/**
 * iptables-restore --noflush input removing what istio-iptables created and nothing else: each rule of a built-in
 * chain that jumps to an Istio chain, then every rule of the Istio chains (flush), then the chains themselves.
 */
export function buildCleanupInput(save: string): string {
  const tables: { name: string; deletes: string[]; chains: string[] }[] = [];
  let current: (typeof tables)[number] | undefined;
  const istio = new Set(ALL_ISTIO_CHAINS);
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      current = { name: line.slice(1).trim(), deletes: [], chains: [] };
      tables.push(current);
    } else if (!current) continue;
    else if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0]!;
      if (istio.has(chain)) current.chains.push(chain);
    } else if (line.startsWith('-A ')) {
      const parts = line.split(' ');
      const chain = parts[1]!;
      const jump = parts.indexOf('-j');
      const target = jump >= 0 ? parts[jump + 1] : undefined;
      if (BUILTIN_CHAINS.has(chain) && target !== undefined && istio.has(target)) current.deletes.push(`-D${line.slice(2)}`);
    }
  }
  let out = '';
  for (const t of tables) {
    if (t.deletes.length === 0 && t.chains.length === 0) continue;
    out += `* ${t.name}\n${t.deletes.map((d) => `${d}\n`).join('')}${t.chains.map((c) => `-F ${c}\n`).join('')}${t.chains.map((c) => `-X ${c}\n`).join('')}COMMIT\n`;
  }
  return out;
}

function check(r: ReturnType<CommandRunner>, command: string): string {
  if (r.missing) throw new CaptureError(`${command}: not found; install iptables (Debian: apt-get install iptables) or pick another variant with --iptables-variant`);
  if (r.status !== 0) throw new CaptureError(`${command} failed (exit ${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** The current rules of every table, as iptables-save prints them (read by detection already, or now). */
export function readCurrentRules(commands: IptablesCommands, run: CommandRunner = runCommand): string {
  return commands.saved ?? check(run(commands.save, []), commands.save);
}

/** Removes Istio's chains (and the jumps to them); returns the input it restored ('' when there was nothing to remove). */
export function cleanCapture(commands: IptablesCommands, run: CommandRunner = runCommand): string {
  const input = buildCleanupInput(readCurrentRules(commands, run));
  if (input !== '') check(run(commands.restore, ['--noflush'], input), `${commands.restore} --noflush`);
  return input;
}

/** Replaces any earlier Istio rules with `rules` (iptables-restore input), atomically per table. */
export function applyCapture(commands: IptablesCommands, rules: string, run: CommandRunner = runCommand): void {
  cleanCapture(commands, run);
  check(run(commands.restore, ['--noflush'], rules), `${commands.restore} --noflush`);
}
