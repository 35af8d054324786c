// `trellis dashboard`: the service graph, per-service config and proxy sync status of a mesh, as a live web page.
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';

export const DEFAULT_DASHBOARD_PORT = 20001;

interface DashboardOptions {
  mesh?: string;
  port: number;
  host: string;
  prometheus?: string;
  monitoring?: string;
  proxyAdmin?: string[];
  window: number;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a whole number 0-65535, got "${value}"`);
  return n;
}

function httpBase(value: string): string {
  return /^https?:\/\//.test(value) ? value.replace(/\/$/, '') : `http://${value}`;
}

/** The control plane's monitoring URL and the proxies' admin URLs of the mesh `trellis up` runs from `dir`. */
export async function meshTargets(dir: string): Promise<{ monitoringUrl: string; proxyAdminUrls: string[] }> {
  const { readState, isAlive } = await import('../../local/state-file.js');
  const { loadManifest } = await import('../../local/manifest.js');
  const { planPorts } = await import('../../local/port-blocks.js');
  const state = readState(dir);
  if (!state || !isAlive(state.supervisorPid)) throw new Error(`no mesh is running from ${dir} (start one with \`trellis up ${dir}\`, or pass --monitoring and --proxy-admin)`);
  const plan = planPorts(loadManifest(state.manifest), state.xdsPort);
  const admins = [...plan.workloads.values()].flatMap((w) => (w.admin === undefined ? [] : [w.admin]));
  for (const g of plan.gateways.values()) admins.push(g.admin);
  return { monitoringUrl: `http://127.0.0.1:${state.monitoringPort}`, proxyAdminUrls: admins.map((p) => `http://127.0.0.1:${p}`) };
}

export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description('Serve a live web page of the mesh: service graph (rps, error rate, p99, mTLS), per-service config, proxy sync status')
    .option('--mesh <dir>', 'the mesh directory `trellis up` runs from (finds the control plane and every proxy admin port)')
    .option('--port <n>', 'the port to serve the page on (0: any free port)', positiveInt, DEFAULT_DASHBOARD_PORT)
    .option('--host <address>', 'the address to listen on', '127.0.0.1')
    .option('--prometheus <url>', 'query this Prometheus server for the metrics instead of scraping the proxies')
    .option('--monitoring <host:port>', 'the control plane monitoring address (/debug/syncz, /debug/configz); overrides --mesh')
    .option('--proxy-admin <host:port...>', 'proxy admin addresses to scrape /stats/prometheus from; overrides --mesh')
    .option('--window <seconds>', 'rates, error rates and p99 are computed over this window', positiveInt, 30)
    .action(async (opts: DashboardOptions) => {
      const { MeshSource } = await import('../../dashboard/mesh-source.js');
      const { startDashboardServer } = await import('../../dashboard/dashboard-server.js');
      let monitoringUrl = opts.monitoring ? httpBase(opts.monitoring) : undefined;
      let proxyAdminUrls = (opts.proxyAdmin ?? []).flatMap((a) => a.split(',')).filter(Boolean).map(httpBase);
      if (opts.mesh || (!monitoringUrl && proxyAdminUrls.length === 0 && !opts.prometheus)) {
        const dir = resolve(opts.mesh ?? 'examples/bookinfo');
        try {
          const targets = await meshTargets(dir);
          monitoringUrl ??= targets.monitoringUrl;
          if (proxyAdminUrls.length === 0) proxyAdminUrls = targets.proxyAdminUrls;
        } catch (err) {
          process.stderr.write(`trellis dashboard: ${(err as Error).message}\n`);
          process.exitCode = 1;
          return;
        }
      }
      const source = new MeshSource({
        proxyAdminUrls,
        windowSeconds: opts.window || 30,
        ...(monitoringUrl ? { monitoringUrl } : {}),
        ...(opts.prometheus ? { prometheusUrl: httpBase(opts.prometheus) } : {}),
      });
      const dashboard = await startDashboardServer(source, { host: opts.host, port: opts.port });
      process.stdout.write(`trellis dashboard: ${dashboard.url}/ (metrics from ${opts.prometheus ? opts.prometheus : `${proxyAdminUrls.length} proxies`}${monitoringUrl ? `, control plane ${monitoringUrl}` : ''})\n`);
      const stop = (): void => void dashboard.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
