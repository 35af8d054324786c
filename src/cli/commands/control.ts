// `trellis control`: runs the control plane (file config store, ServiceEntry registry, ADS, monitoring) until SIGINT/SIGTERM.
import { Command, InvalidArgumentError } from 'commander';
import { parseDurationMs } from '../../api/index.js';
import { DEFAULT_MONITORING_ADDRESS, DEFAULT_XDS_ADDRESS } from '../../control/server/ports.js';
import { DEFAULT_DEBOUNCE_AFTER_MS, DEFAULT_DEBOUNCE_MAX_MS } from '../../control/server/debounce.js';
import { DEFAULT_PUSH_THROTTLE } from '../../control/server/push-queue.js';

/** `100ms`, `1.5s`, `2m` or a plain number of milliseconds. */
export function parseDurationOption(value: string): number {
  const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) : parseDurationMs(value);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError(`expected a duration like 100ms or 10s, got ${JSON.stringify(value)}`);
  return ms;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function controlCommand(): Command {
  return new Command('control')
    .description('Run the control plane: Istio config from a directory in, Envoy xDS out (istiod)')
    .requiredOption('--config-dir <dir>', 'directory of Istio YAML (recursively loaded and watched)')
    .option('--xds-address <host:port>', 'ADS (plaintext gRPC) address', DEFAULT_XDS_ADDRESS)
    .option('--monitoring-address <host:port>', 'metrics (/metrics) and debug API (/debug/syncz, /debug/config_dump, /debug/configz)', DEFAULT_MONITORING_ADDRESS)
    .option('--debounce-after <duration>', 'quiet period before a push (PILOT_DEBOUNCE_AFTER)', parseDurationOption, DEFAULT_DEBOUNCE_AFTER_MS)
    .option('--debounce-max <duration>', 'longest delay of a push under constant changes (PILOT_DEBOUNCE_MAX)', parseDurationOption, DEFAULT_DEBOUNCE_MAX_MS)
    .option('--push-throttle <n>', 'proxies pushed concurrently (PILOT_PUSH_THROTTLE)', parsePositiveInt, DEFAULT_PUSH_THROTTLE)
    .action(async (opts: { configDir: string; xdsAddress: string; monitoringAddress: string; debounceAfter: number; debounceMax: number; pushThrottle: number }) => {
      const log = (level: string) => (message: string) => process.stderr.write(`${new Date().toISOString()}\t${level}\t${message}\n`);
      let plane;
      try {
        // Loaded on use: the rest of the CLI (analyze, proxy-status, --help) does not pay for the whole control plane.
        const { startControlPlane } = await import('../../control/server/main.js');
        plane = await startControlPlane({
          configDir: opts.configDir,
          xdsAddress: opts.xdsAddress,
          monitoringAddress: opts.monitoringAddress,
          debounceAfterMs: opts.debounceAfter,
          debounceMaxMs: opts.debounceMax,
          pushThrottle: opts.pushThrottle,
          logger: { info: log('info'), warn: log('warn') },
        });
      } catch (err) {
        log('error')(`control plane failed to start: ${err instanceof Error ? err.message : String(err)}`);
        process.exitCode = 1;
        return;
      }
      // Announce the ports on stdout (one line each) so scripts and tests can pick them up with port 0.
      process.stdout.write(`xds port ${plane.xdsPort}\nmonitoring port ${plane.monitoringPort}\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log('info')(`${signal}: stopping`);
          process.off('SIGINT', onInt);
          process.off('SIGTERM', onTerm);
          void plane.close().then(resolve, resolve);
        };
        const onInt = () => stop('SIGINT');
        const onTerm = () => stop('SIGTERM');
        process.on('SIGINT', onInt);
        process.on('SIGTERM', onTerm);
      });
    });
}
