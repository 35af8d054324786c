// `trellis proxy -c bootstrap.yaml`: runs the proxy (Envoy's role) from an Envoy v3 bootstrap until SIGINT/SIGTERM or /quitquitquit.
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { SDS_CLUSTER } from '../../agent/bootstrap.js';
import type { SecurityAgent, SecurityAgentOptions } from '../../agent/security-agent.js';
import { parseUpstream, type DnsAgent } from '../../agent/dns/dns-agent.js';
import type { UpstreamServer } from '../../agent/dns/upstream-client.js';
import { ConfigError, ConfigValidationError, TrellisError, describeError } from '../../common/errors.js';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../../proxy/admin/log-levels.js';
import { loadBootstrap } from '../../proxy/bootstrap.js';
import { parseDurationFlag } from './duration-flag.js';
import { PROMETHEUS_ANNOTATIONS_ENV, parsePrometheusAnnotations, type AppScrapeTarget } from '../../agent/prometheus-scrape-config.js';
import type { StatusServer } from '../../agent/status-server.js';
import { DEFAULT_TERMINATION_DRAIN_MS, terminationDrain } from '../../agent/termination-drain.js';

function parseLogLevel(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

function parseDrainTime(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0) throw new InvalidArgumentError('expected a number of seconds');
  return seconds;
}

/** `5s`, `500ms`, `1m` or a number of seconds (Istio's TERMINATION_DRAIN_DURATION_SECONDS), in ms. */
export function parseTerminationDrain(value: string): number {
  return parseDurationFlag(value, { plainUnitMs: 1000, minMs: 0, expected: 'a duration like 5s or 500ms, or a number of seconds' });
}

/** pilot-agent's environment, read when no flag is given: a bad value is an error, not a silent default. */
function terminationDrainFromEnv(): number {
  const env = process.env['TERMINATION_DRAIN_DURATION_SECONDS'];
  if (env === undefined || env === '') return DEFAULT_TERMINATION_DRAIN_MS;
  try {
    return parseTerminationDrain(env);
  } catch (err) {
    throw new ConfigError('TRELLIS_CONFIG_INVALID', `TERMINATION_DRAIN_DURATION_SECONDS: ${(err as Error).message}`);
  }
}

/** `24h`, `90s` or a number of seconds, in whole seconds (what the CSR asks for). */
export function parseCertTtl(value: string): number {
  return Math.round(parseDurationFlag(value, { plainUnitMs: 1000, minMs: 1000, expected: 'a certificate lifetime like 24h or 90s (at least 1s)' }) / 1000);
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('expected a port number (1-65535)');
  return port;
}

function parseUpstreams(value: string, previous: readonly UpstreamServer[] = []): UpstreamServer[] {
  const server = parseUpstream(value);
  if (!server) throw new InvalidArgumentError(`expected host:port (IPv6 as [addr]:port), got ${JSON.stringify(value)}`);
  return [...previous, server];
}

function parseKeyType(value: string): 'ECDSA' | 'RSA' {
  if (value !== 'ECDSA' && value !== 'RSA') throw new InvalidArgumentError('expected ECDSA or RSA');
  return value;
}

interface AgentFlags {
  readonly caAddress?: string;
  readonly caRootCert?: string;
  readonly caTokenFile?: string;
  readonly trustDomain: string;
  readonly certTtl: number;
  readonly sdsPort?: number;
  readonly workloadKeyType: 'ECDSA' | 'RSA';
  readonly statusPort?: number;
}

/**
 * The security agent's options from the flags and the bootstrap: the identity from the node metadata Istio's bootstrap
 * carries (NAMESPACE, SERVICE_ACCOUNT), the SDS address from the sds-grpc static cluster (or --sds-port).
 */
function agentOptions(configPath: string, flags: AgentFlags): SecurityAgentOptions {
  if (!flags.caRootCert) throw new ConfigError('TRELLIS_CONFIG_INVALID', '--ca-address needs --ca-root-cert (the PEM root the CA port is trusted by)');
  const read = (file: string, what: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError('TRELLIS_CONFIG_PARSE', `${file}: cannot read the ${what}: ${describeError(err)}`, { cause: err });
    }
  };
  const bootstrap = loadBootstrap(configPath);
  const fields = bootstrap.node.metadata?.fields ?? {};
  const meta = (key: string): string | undefined => fields[key]?.string_value || undefined;
  const sdsCluster = bootstrap.clusters.find((c) => c.name === SDS_CLUSTER);
  const socket = sdsCluster?.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address;
  const bootstrapPort = socket?.port_value;
  if (flags.sdsPort !== undefined && bootstrapPort !== undefined && bootstrapPort !== flags.sdsPort) {
    throw new ConfigError('TRELLIS_CONFIG_INVALID', `${configPath}: static cluster ${SDS_CLUSTER} points at port ${bootstrapPort}, but --sds-port is ${flags.sdsPort}`);
  }
  const port = flags.sdsPort ?? bootstrapPort;
  if (port === undefined) throw new ConfigError('TRELLIS_CONFIG_INVALID', `${configPath}: security needs a static cluster ${SDS_CLUSTER} (the agent's SDS server) or --sds-port`);
  return {
    identity: { trustDomain: flags.trustDomain, namespace: meta('NAMESPACE') ?? 'default', serviceAccount: meta('SERVICE_ACCOUNT') ?? 'default' },
    caAddress: flags.caAddress!,
    caRootCertPem: read(flags.caRootCert, 'CA root certificate'),
    caRootCertFile: flags.caRootCert,
    ...(flags.caTokenFile ? { token: read(flags.caTokenFile, 'CA token').trim() } : {}),
    ttlSeconds: flags.certTtl,
    keyType: flags.workloadKeyType,
    sdsAddress: `127.0.0.1:${port}`,
    metadata: { WorkloadName: meta('WORKLOAD_NAME') ?? '', ClusterID: 'Kubernetes' },
    log: { info: (m) => process.stderr.write(`trellis agent: ${m}\n`), warn: (m) => process.stderr.write(`trellis agent: ${m}\n`) },
  };
}

export function proxyCommand(): Command {
  return new Command('proxy')
    .description('Run the proxy (Envoy\'s role) from an Envoy v3 bootstrap: static resources, or xDS over ADS from a control plane')
    .requiredOption('-c, --config-path <file>', 'Envoy bootstrap, YAML or JSON')
    .option('-l, --log-level <level>', `log level (${LOG_LEVELS.join(', ')})`, parseLogLevel, 'info' as LogLevel)
    .option('--drain-time-s <seconds>', 'how long listeners drain (/drain_listeners: the graceful period, then the in-flight grace)', parseDrainTime, 5)
    .option(
      '--termination-drain-duration <duration>',
      "on SIGTERM/SIGINT, inbound listeners drain gracefully (still accepting, every connection told to close) this long before the proxy stops (Istio's ProxyConfig terminationDrainDuration; default $TERMINATION_DRAIN_DURATION_SECONDS, else 5s)",
      parseTerminationDrain,
    )
    .option('--exit-on-zero-active-connections', "end the termination drain as soon as no inbound connection is open (Istio's EXIT_ON_ZERO_ACTIVE_CONNECTIONS; default $EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true)")
    .option('--ca-address <host:port>', "security on: the CA (the control plane's secure port) the agent gets the workload certificate from; served to the proxy over SDS (sds-grpc)")
    .option('--ca-root-cert <file>', 'PEM root the CA port is trusted by (with --ca-address)')
    .option('--ca-token-file <file>', 'bootstrap token sent to the CA as authorization: Bearer')
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the workload identity', 'cluster.local')
    .option('--cert-ttl <duration>', 'workload certificate lifetime requested, e.g. 24h, 90s or seconds (rotated at half life)', parseCertTtl, 24 * 3600)
    .option('--sds-port <port>', "the agent's SDS port (default: the bootstrap's sds-grpc cluster port)", parsePort)
    .option('--workload-key-type <type>', 'ECDSA (P-256) or RSA (2048)', parseKeyType, 'ECDSA' as const)
    .option('--status-port <port>', `the agent's status port (Istio's 15020): merged metrics on /stats/prometheus (agent, proxy, and the app's from ${PROMETHEUS_ANNOTATIONS_ENV}), /healthz/ready`, parsePort)
    .option('--dns-port <port>', "DNS proxy on (Istio's ISTIO_META_DNS_CAPTURE): answer mesh hosts from the control plane's name table on 127.0.0.1:<port> (Istio: 15053), UDP and TCP", parsePort)
    .option('--dns-auto-allocate', "with --dns-port: VIPs from 240.240.0.0/16 for ServiceEntries without addresses (Istio's ISTIO_META_DNS_AUTO_ALLOCATE)")
    .option('--dns-upstream <host:port>', 'with --dns-port: forward other names here instead of to the nameservers of /etc/resolv.conf (repeatable)', parseUpstreams)
    .option('--resolv-conf <file>', 'with --dns-port: the resolv.conf giving upstream nameservers and search domains', '/etc/resolv.conf')
    .action(async (opts: { configPath: string; logLevel: LogLevel; drainTimeS: number; dnsPort?: number; dnsAutoAllocate?: boolean; dnsUpstream?: UpstreamServer[]; resolvConf: string; terminationDrainDuration?: number; exitOnZeroActiveConnections?: boolean } & AgentFlags) => {
      const fail = (message: string): void => {
        process.stderr.write(`trellis proxy: ${message}\n`);
        process.exitCode = 1;
      };
      let terminationDrainMs: number;
      try {
        terminationDrainMs = opts.terminationDrainDuration ?? terminationDrainFromEnv();
      } catch (err) {
        return fail((err as Error).message);
      }
      const exitOnZeroActiveConnections = opts.exitOnZeroActiveConnections === true || process.env['EXIT_ON_ZERO_ACTIVE_CONNECTIONS'] === 'true';
      let quit: () => void = () => undefined;
      const quitted = new Promise<void>((resolve) => (quit = resolve));
      let agent: SecurityAgent | undefined;
      let application: AppScrapeTarget | undefined;
      if (opts.statusPort !== undefined) {
        const annotations = process.env[PROMETHEUS_ANNOTATIONS_ENV];
        try {
          application = annotations ? parsePrometheusAnnotations(annotations, opts.statusPort) : undefined;
        } catch (err) {
          return fail(err instanceof TrellisError ? `${err.code}: ${err.message}` : describeError(err));
        }
      }
      // Loaded on use: the rest of the CLI does not pay for the data path. Started now, so the load overlaps the agent's CA call.
      const proxyModule = import('../../proxy/main.js');
      proxyModule.catch(() => undefined);
      if (opts.caAddress) {
        // pilot-agent's order: the first certificate and the SDS server before the proxy asks for them.
        const aborted = new AbortController();
        const abort = (): void => aborted.abort();
        process.once('SIGINT', abort);
        process.once('SIGTERM', abort);
        try {
          const { startSecurityAgent } = await import('../../agent/security-agent.js');
          const options = agentOptions(opts.configPath, opts);
          process.stderr.write(`trellis agent: requesting a certificate for spiffe://${options.identity.trustDomain}/ns/${options.identity.namespace}/sa/${options.identity.serviceAccount} from ${options.caAddress}\n`);
          agent = await startSecurityAgent(options, aborted.signal);
          process.stderr.write(`trellis agent: SDS on 127.0.0.1:${agent.sdsPort}\n`);
        } catch (err) {
          if (err instanceof ConfigValidationError) return fail(`refusing to start:\n  ${err.details.join('\n  ')}`);
          return fail(err instanceof TrellisError ? `${err.code}: ${err.message}` : `agent failed to start: ${describeError(err)}`);
        } finally {
          process.off('SIGINT', abort);
          process.off('SIGTERM', abort);
        }
      }
      let dns: DnsAgent | undefined;
      if (opts.dnsPort !== undefined) {
        // pilot-agent starts its DNS proxy before Envoy, so the application resolves mesh names from its first query.
        try {
          const { startDnsAgent } = await import('../../agent/dns/dns-agent.js');
          dns = await startDnsAgent({
            bootstrapPath: opts.configPath,
            port: opts.dnsPort,
            autoAllocate: opts.dnsAutoAllocate === true,
            resolvConfPath: opts.resolvConf,
            ...(opts.dnsUpstream ? { upstreams: opts.dnsUpstream } : {}),
            log: (m) => process.stderr.write(`trellis agent: ${m}\n`),
          });
          process.stderr.write(`trellis agent: DNS proxy on 127.0.0.1:${dns.port} (UDP and TCP)\n`);
        } catch (err) {
          await agent?.close();
          if (err instanceof ConfigValidationError) return fail(`refusing to start:\n  ${err.details.join('\n  ')}`);
          return fail(err instanceof TrellisError ? `${err.code}: ${err.message}` : `DNS proxy failed to start: ${describeError(err)}`);
        }
      }
      let proxy;
      try {
        const { startProxy } = await proxyModule;
        try {
          // With the DNS proxy on, the proxy's own node says so too (Istio's ISTIO_META_DNS_*): its listeners then use auto-allocated VIPs.
          const nodeMetadata = dns ? { DNS_CAPTURE: 'true', ...(opts.dnsAutoAllocate ? { DNS_AUTO_ALLOCATE: 'true' } : {}) } : undefined;
          proxy = await startProxy({ bootstrapPath: opts.configPath, logLevel: opts.logLevel, drainTimeMs: opts.drainTimeS * 1000, commandLine: process.argv.slice(2), onQuit: quit, ...(nodeMetadata ? { nodeMetadata } : {}) });
        } catch (err) {
          await agent?.close();
          await dns?.close();
          if (err instanceof ConfigValidationError) return fail(`refusing to start:\n  ${err.details.join('\n  ')}`);
          if (err instanceof ConfigError) return fail(err.message);
          throw err;
        }
      } catch (err) {
        await agent?.close();
        await dns?.close();
        return fail(`failed to start: ${err instanceof Error ? err.message : String(err)}`);
      }
      // Announce the admin port on stdout so scripts and tests can use port 0.
      if (proxy.admin) process.stdout.write(`admin address ${proxy.admin.address}\n`);
      const running = proxy;
      let status: StatusServer | undefined;
      if (opts.statusPort !== undefined) {
        // The status server reads the proxy's admin endpoints, so it needs them.
        const failStatus = async (message: string): Promise<void> => {
          await running.stop().catch(() => undefined);
          await agent?.close();
          await dns?.close();
          fail(message);
          process.exit(1);
        };
        if (!proxy.admin) return failStatus('--status-port needs the bootstrap\'s admin address (the status server reads the proxy\'s /stats/prometheus and /ready)');
        try {
          const { startStatusServer } = await import('../../agent/status-server.js');
          status = await startStatusServer({ port: opts.statusPort, adminPort: proxy.admin.port, ...(application ? { application } : {}), warn: (m) => process.stderr.write(`trellis agent: ${m}\n`) });
          // The DNS proxy's counters join the agent's own metrics, as pilot-agent registers them.
          if (dns) status.metrics.dns = dns.stats;
          process.stderr.write(`trellis agent: status port 127.0.0.1:${status.port}${application ? ` (merging the app's metrics from 127.0.0.1:${application.port}${application.path})` : ''}\n`);
        } catch (err) {
          return failStatus(`status port ${opts.statusPort}: ${describeError(err)}`);
        }
      }
      await new Promise<void>((resolve) => {
        // pilot-agent's termination: the inbound listeners drain gracefully for the termination drain duration (or
        // until no inbound connection is left, with exit-on-zero), then the proxy stops. A second signal cuts it short.
        const cutShort = new AbortController();
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) {
            process.stderr.write(`trellis proxy: ${signal} again: stopping now\n`);
            cutShort.abort();
            return;
          }
          stopping = true;
          process.stderr.write(`trellis proxy: ${signal}: draining inbound listeners for up to ${terminationDrainMs / 1000} s${exitOnZeroActiveConnections ? ' (or until no inbound connection is open)' : ''}, then stopping\n`);
          void terminationDrain(running, { terminationDrainMs, exitOnZeroActiveConnections, signal: cutShort.signal })
            .then((how) => process.stderr.write(`trellis proxy: termination drain ended (${how}); stopping\n`))
            .catch(() => undefined)
            .then(() => running.stop())
            .then(resolve, resolve);
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
        void quitted.then(resolve);
      });
      await status?.close();
      await agent?.close();
      await dns?.close();
      // Sockets of pools or timers must not keep a stopped proxy alive.
      process.exit(process.exitCode ?? 0);
    });
}
