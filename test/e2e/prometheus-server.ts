// A real Prometheus server (Debian's `prometheus` package) for end-to-end tests: started on loopback with a generated
// scrape config and a temp TSDB, queried over its HTTP API, and stopped with its data removed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS_BINARY = '/usr/bin/prometheus';

/** Why the Prometheus tests cannot run here, or undefined when they can. */
export function prometheusMissing(): string | undefined {
  return existsSync(PROMETHEUS_BINARY) ? undefined : `${PROMETHEUS_BINARY} not found (Debian package prometheus; .ci/run installs it)`;
}

export interface PrometheusServer {
  readonly port: number;
  readonly process: ChildProcess;
  readonly dir: string;
  output: string;
}

/** One scrape_configs entry: `host:port` targets all scraped on `metricsPath`. */
export interface ScrapeJob {
  readonly name: string;
  readonly metricsPath: string;
  readonly targets: readonly string[];
}

/** One element of an instant query's vector result. */
export interface Sample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

/**
 * Starts Prometheus on 127.0.0.1:`port` scraping every job's targets every second. Nothing in it reaches
 * beyond loopback: no remote write, no service discovery, no alertmanager.
 */
export async function startPrometheus(port: number, jobs: readonly ScrapeJob[]): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-prometheus-'));
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    ...jobs.flatMap((job) => [
      `- job_name: ${job.name}`,
      `  metrics_path: ${job.metricsPath}`,
      '  static_configs:',
      `  - targets: [${job.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    ]),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const child = spawn(
    PROMETHEUS_BINARY,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const server: PrometheusServer = { port, process: child, dir, output: '' };
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (server.output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (server.output += c));
  // Ready once /-/ready answers 200 (bounded: 150 × 100 ms).
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) break;
    const status = await httpGet(port, '/-/ready').then((r) => r.status, () => 0);
    if (status === 200) return server;
    await sleep(100);
  }
  await stopPrometheus(server);
  throw new Error(`prometheus did not become ready on 127.0.0.1:${port}:\n${server.output.slice(-3000)}`);
}

/** Stops Prometheus (SIGTERM, SIGKILL after 10 s) and removes its config and TSDB. */
export async function stopPrometheus(server: PrometheusServer | undefined): Promise<void> {
  if (!server) return;
  const child = server.process;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(server.dir, { recursive: true, force: true });
}

/** An instant PromQL query (`/api/v1/query`), evaluated at `atSeconds` (Unix seconds) or now; throws on an error answer or a non-vector result. */
export async function query(server: PrometheusServer, promql: string, atSeconds?: number): Promise<Sample[]> {
  const time = atSeconds === undefined ? '' : `&time=${atSeconds.toFixed(3)}`;
  const res = await httpGet(server.port, `/api/v1/query?query=${encodeURIComponent(promql)}${time}`);
  const body = JSON.parse(res.body) as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  if (body.status !== 'success' || !body.data) throw new Error(`query ${promql}: ${res.status} ${body.error ?? res.body}`);
  if (body.data.resultType !== 'vector') throw new Error(`query ${promql}: expected a vector, got ${body.data.resultType}`);
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** The value of the sample whose labels include `labels`, 0 when there is none (a series not yet created). */
export function valueOf(samples: readonly Sample[], labels: Record<string, string>): number {
  const found = samples.filter((s) => Object.entries(labels).every(([k, v]) => s.metric[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples match ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

/**
 * Waits (bounded by `timeoutMs`) until every target has been scraped successfully by a scrape that started after
 * `sinceMs`, so the next queries see the targets' state as of then. Returns the latest of those scrape times.
 */
export async function waitForScrapesAfter(server: PrometheusServer, sinceMs: number, targetCount: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await httpGet(server.port, '/api/v1/targets?state=active');
    const body = JSON.parse(res.body) as { data: { activeTargets: Array<{ scrapeUrl: string; health: string; lastScrape: string; lastError: string }> } };
    const targets = body.data.activeTargets;
    const times = targets.map((t) => (t.health === 'up' ? Date.parse(t.lastScrape) : 0));
    if (targets.length === targetCount && times.every((t) => t > sinceMs)) return Math.max(...times);
    last = targets.map((t) => `${t.scrapeUrl} ${t.health} ${t.lastScrape} ${t.lastError}`).join('\n');
    await sleep(200);
  }
  throw new Error(`prometheus: not every target scraped since ${new Date(sinceMs).toISOString()} within ${timeoutMs} ms:\n${last}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
