// `trellis proxy-status`: every connected proxy and whether each xDS type is in sync, from the control plane's /debug/syncz.
import { Command } from 'commander';
import type { ProxySyncStatus } from '../../control/server/sync-status.js';
import { CliError, DEFAULT_MONITORING_ADDRESS, fetchDebug } from './debug-api.js';
import { formatTable } from './table.js';

/** `productpage-v1.default` from `sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local`, as istioctl names proxies. */
export function proxyDisplayName(id: string): string {
  const parts = id.split('~');
  return parts.length === 4 && parts[2] ? parts[2] : id;
}

export function formatProxyStatus(statuses: readonly ProxySyncStatus[]): string {
  const rows = statuses.map((s) => [
    proxyDisplayName(s.proxy),
    s.clusterId,
    s.types['CDS']?.state ?? '',
    s.types['LDS']?.state ?? '',
    s.types['EDS']?.state ?? '',
    s.types['RDS']?.state ?? '',
    s.controlPlane,
    s.proxyVersion || s.controlPlaneVersion,
  ]);
  return formatTable(['NAME', 'CLUSTER', 'CDS', 'LDS', 'EDS', 'RDS', 'ISTIOD', 'VERSION'], rows, 5);
}

export function proxyStatusCommand(): Command {
  return new Command('proxy-status')
    .alias('ps')
    .description('Show each connected proxy and whether its CDS, LDS, EDS and RDS are SYNCED, STALE, NOT SENT or NACKED')
    .argument('[proxy]', 'only this proxy (node id or pod.namespace); prints its NACK reasons too')
    .option('--monitoring-address <host:port>', 'the control plane monitoring address', DEFAULT_MONITORING_ADDRESS)
    .option('-o, --output <format>', 'table (default) or json', 'table')
    .action(async (proxy: string | undefined, opts: { monitoringAddress: string; output: string }) => {
      try {
        let statuses = await fetchDebug<ProxySyncStatus[]>(opts.monitoringAddress, '/debug/syncz');
        if (proxy) {
          statuses = statuses.filter((s) => s.proxy === proxy || proxyDisplayName(s.proxy) === proxy);
          if (statuses.length === 0) throw new CliError(`proxy ${proxy} is not connected to the control plane`);
        }
        if (opts.output === 'json') {
          process.stdout.write(`${JSON.stringify(statuses, null, 2)}\n`);
          return;
        }
        process.stdout.write(formatProxyStatus(statuses));
        for (const s of statuses) {
          for (const [type, t] of Object.entries(s.types)) {
            if (t.state === 'NACKED' && t.nack) process.stdout.write(`${proxyDisplayName(s.proxy)} ${type} NACK (keeps version ${t.nack.version || 'none'}): ${t.nack.message}\n`);
          }
        }
      } catch (err) {
        process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      }
    });
}
