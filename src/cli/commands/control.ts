// `trellis control`: runs the control plane (file config store, ServiceEntry registry, ADS, CA on the secure xDS port, monitoring) until SIGINT/SIGTERM.
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseDurationFlag } from './duration-flag.js';
import { DEFAULT_MONITORING_ADDRESS, DEFAULT_SECURE_XDS_ADDRESS, DEFAULT_XDS_ADDRESS } from '../../control/server/ports.js';
import { DEFAULT_MESH_CONFIG, PATH_NORMALIZATION_MODES, type PathNormalizationMode } from '../../control/model/mesh-config.js';
import { DEFAULT_MAX_WORKLOAD_CERT_TTL_MS, DEFAULT_ROOT_ROTATION_OVERLAP_MS, DEFAULT_WORKLOAD_CERT_TTL_MS } from '../../ca/defaults.js';
import type { KeyType } from '../../ca/keys.js';
import { DEFAULT_DEBOUNCE_AFTER_MS, DEFAULT_DEBOUNCE_MAX_MS } from '../../control/server/debounce.js';
import { DEFAULT_PUSH_THROTTLE } from '../../control/server/push-queue.js';

/** `100ms`, `1.5s`, `2m` or a plain number of milliseconds. */
export function parseDurationOption(value: string): number {
  return parseDurationFlag(value, { plainUnitMs: 1, minMs: 0, expected: 'a duration like 100ms or 10s' });
}

/** A duration as parseDurationOption takes it, or whole days (`90d`, as Istio's docs write certificate lifetimes). */
function parseCertDuration(value: string): number {
  const days = /^(\d+(?:\.\d+)?)d$/.exec(value);
  const ms = days ? Number(days[1]) * 24 * 3600 * 1000 : parseDurationOption(value);
  if (!(ms > 0)) throw new InvalidArgumentError(`expected a positive duration like 24h or 90d, got ${JSON.stringify(value)}`);
  return ms;
}

/** Where the self-signed root is kept when --ca-dir is not given (gitignored like the rest of .trellis/). */
export const DEFAULT_CA_DIR = join('.trellis', 'ca');

interface ControlOptions {
  configDir: string;
  xdsAddress: string;
  monitoringAddress: string;
  debounceAfter: number;
  debounceMax: number;
  pushThrottle: number;
  secureXdsAddress: string;
  caCertDir?: string;
  caDir: string;
  caKeyType: KeyType;
  workloadCertTtl: number;
  maxWorkloadCertTtl: number;
  trustDomain: string;
  caTokenFile?: string;
  rootRotationOverlap: number;
  caRootOut?: string;
  pathNormalization?: PathNormalizationMode;
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
    .option('--secure-xds-address <host:port>', 'xDS and the CA (IstioCertificateService) over TLS, Istio\'s 15012; "off" disables both', DEFAULT_SECURE_XDS_ADDRESS)
    .option('--ca-cert-dir <dir>', 'plugged-in CA in Istio\'s cacerts layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); without it a self-signed root is used')
    .option('--ca-dir <dir>', 'where the self-signed root is kept across restarts (created when missing)', DEFAULT_CA_DIR)
    .addOption(new Option('--ca-key-type <type>', 'key of a generated root').choices(['ecdsa', 'rsa']).default('ecdsa'))
    .option('--workload-cert-ttl <duration>', 'lifetime of workload certificates when the request names none (DEFAULT_WORKLOAD_CERT_TTL)', parseCertDuration, DEFAULT_WORKLOAD_CERT_TTL_MS)
    .option('--max-workload-cert-ttl <duration>', 'longest workload certificate lifetime; longer requests are clamped to it (MAX_WORKLOAD_CERT_TTL)', parseCertDuration, DEFAULT_MAX_WORKLOAD_CERT_TTL_MS)
    .option('--trust-domain <domain>', 'SPIFFE trust domain of workload identities', DEFAULT_MESH_CONFIG.trustDomain)
    .addOption(new Option('--path-normalization <mode>', 'meshConfig pathNormalization: how proxies normalize request paths before routing and policies (default BASE)').choices([...PATH_NORMALIZATION_MODES]))
    .option('--ca-token-file <file>', 'bootstrap tokens the CA accepts: one "token namespace serviceaccount" per line')
    .option('--root-rotation-overlap <duration>', 'how long a replaced root stays trusted after a root rotation', parseCertDuration, DEFAULT_ROOT_ROTATION_OVERLAP_MS)
    .option('--ca-root-out <file>', 'file kept holding the trust bundle (PEM) that agents trust the secure port with (default: <ca-dir>/trust-bundle.pem)')
    .action(async (opts: ControlOptions) => {
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
          mesh: { trustDomain: opts.trustDomain, ...(opts.pathNormalization ? { pathNormalization: { normalization: opts.pathNormalization } } : {}) },
          ...(opts.secureXdsAddress === 'off'
            ? {}
            : {
                secureXds: {
                  address: opts.secureXdsAddress,
                  selfSignedDir: opts.caDir,
                  keyType: opts.caKeyType,
                  workloadCertTtlMs: opts.workloadCertTtl,
                  maxWorkloadCertTtlMs: opts.maxWorkloadCertTtl,
                  rootRotationOverlapMs: opts.rootRotationOverlap,
                  rootCertOut: opts.caRootOut ?? join(opts.caDir, 'trust-bundle.pem'),
                  ...(opts.caCertDir ? { caCertDir: opts.caCertDir } : {}),
                  ...(opts.caTokenFile ? { tokenFile: opts.caTokenFile } : {}),
                },
              }),
          logger: { info: log('info'), warn: log('warn') },
        });
      } catch (err) {
        log('error')(`control plane failed to start: ${err instanceof Error ? err.message : String(err)}`);
        process.exitCode = 1;
        return;
      }
      // Announce the ports on stdout (one line each) so scripts and tests can pick them up with port 0.
      process.stdout.write(`xds port ${plane.xdsPort}\n${plane.secureXdsPort !== undefined ? `secure xds port ${plane.secureXdsPort}\n` : ''}monitoring port ${plane.monitoringPort}\n`);
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
