// `trellis proxy -c bootstrap.yaml`: runs the proxy (Envoy's role) from an Envoy v3 bootstrap until SIGINT/SIGTERM or /quitquitquit.
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, ConfigValidationError } from '../../common/errors.js';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../../proxy/admin/log-levels.js';

function parseLogLevel(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

function parseDrainTime(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0) throw new InvalidArgumentError('expected a number of seconds');
  return seconds;
}

export function proxyCommand(): Command {
  return new Command('proxy')
    .description('Run the proxy (Envoy\'s role) from an Envoy v3 bootstrap: static resources, or xDS over ADS from a control plane')
    .requiredOption('-c, --config-path <file>', 'Envoy bootstrap, YAML or JSON')
    .option('-l, --log-level <level>', `log level (${LOG_LEVELS.join(', ')})`, parseLogLevel, 'info' as LogLevel)
    .option('--drain-time-s <seconds>', 'how long listeners drain (shutdown, /drain_listeners)', parseDrainTime, 5)
    .action(async (opts: { configPath: string; logLevel: LogLevel; drainTimeS: number }) => {
      const fail = (message: string): void => {
        process.stderr.write(`trellis proxy: ${message}\n`);
        process.exitCode = 1;
      };
      let quit: () => void = () => undefined;
      const quitted = new Promise<void>((resolve) => (quit = resolve));
      let proxy;
      try {
        // Loaded on use: the rest of the CLI does not pay for the data path.
        const { startProxy } = await import('../../proxy/main.js');
        try {
          proxy = await startProxy({ bootstrapPath: opts.configPath, logLevel: opts.logLevel, drainTimeMs: opts.drainTimeS * 1000, commandLine: process.argv.slice(2), onQuit: quit });
        } catch (err) {
          if (err instanceof ConfigValidationError) return fail(`refusing to start:\n  ${err.details.join('\n  ')}`);
          if (err instanceof ConfigError) return fail(err.message);
          throw err;
        }
      } catch (err) {
        return fail(`failed to start: ${err instanceof Error ? err.message : String(err)}`);
      }
      // Announce the admin port on stdout so scripts and tests can use port 0.
      if (proxy.admin) process.stdout.write(`admin address ${proxy.admin.address}\n`);
      const running = proxy;
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          process.stderr.write(`trellis proxy: ${signal}: draining and stopping\n`);
          void running
            .drain()
            .catch(() => undefined)
            .then(() => running.stop())
            .then(resolve, resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
        void quitted.then(resolve);
      });
      // Sockets of pools or timers must not keep a stopped proxy alive.
      process.exit(process.exitCode ?? 0);
    });
}
