// `trellis analyze DIR`: validates a config directory offline, like `istioctl analyze`; exit 1 when an error is found.
import { Command } from 'commander';

export function analyzeCommand(): Command {
  return new Command('analyze')
    .description('Validate a directory of Istio config offline: every field problem, plus references across resources (istioctl analyze)')
    .argument('<dir>', 'directory of Istio YAML')
    .option('-o, --output <format>', 'log (default) or json', 'log')
    .action(async (dir: string, opts: { output: string }) => {
      // Loaded on use, so the other subcommands (proxy, proxy-status) do not load the config store and validators.
      const { analyzeDirectory, formatAnalysisMessage } = await import('../../control/server/analyze.js');
      let result;
      try {
        result = await analyzeDirectory(dir);
      } catch (err) {
        process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
        return;
      }
      const errors = result.messages.filter((m) => m.level === 'Error').length;
      if (opts.output === 'json') {
        process.stdout.write(`${JSON.stringify(result.messages, null, 2)}\n`);
      } else {
        const scope = result.namespaces.length === 1 ? `namespace: ${result.namespaces[0]}` : result.namespaces.length > 1 ? `namespaces: ${result.namespaces.join(', ')}` : `directory: ${dir}`;
        if (result.messages.length === 0) {
          process.stdout.write(`\u2714 No validation issues found when analyzing ${scope}.\n`);
        } else {
          for (const message of result.messages) process.stdout.write(`${formatAnalysisMessage(message)}\n`);
          if (errors > 0) process.stderr.write(`Error: Analyzers found issues when analyzing ${scope}.\n`);
        }
      }
      if (errors > 0) process.exitCode = 1;
    });
}
