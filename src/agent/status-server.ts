// pilot-agent's status port (Istio's 15020): merged Prometheus metrics (agent + proxy + application) on
// /stats/prometheus and /metrics, and the proxy's readiness on /healthz/ready.
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentMetrics, type ScrapeType } from './agent-metrics.js';
import { mergeExpositions, type ExpositionSource } from './metrics-merge.js';
import type { AppScrapeTarget } from './prometheus-scrape-config.js';

export interface StatusServerOptions {
  /** 0 picks a free port. */
  readonly port: number;
  readonly host?: string;
  /** The proxy's admin port: its /stats/prometheus and /ready. */
  readonly adminPort: number;
  /** The application's own metrics, from ISTIO_PROMETHEUS_ANNOTATIONS; none when absent. */
  readonly application?: AppScrapeTarget;
  /** Where a scrape or merge problem is told (once per distinct message). */
  readonly warn?: (message: string) => void;
}

export interface StatusServer {
  readonly port: number;
  readonly metrics: AgentMetrics;
  close(): Promise<void>;
}

const FORMAT_TEXT = 'text/plain; version=0.0.4; charset=utf-8';
/** Without Prometheus's X-Prometheus-Scrape-Timeout-Seconds, a scrape of the proxy or the app gives up after this. */
const DEFAULT_SCRAPE_TIMEOUT_MS = 10_000;

interface Scraped {
  readonly status: number;
  readonly body: string;
}

/** GET http://127.0.0.1:port/path, passing Prometheus's headers on as pilot-agent does. */
function scrape(port: number, path: string, incoming: IncomingHttpHeaders, timeoutMs: number): Promise<Scraped> {
  const headers: Record<string, string> = {};
  // Ask for the text format: the merged answer is text, and OpenMetrics (# EOF, _created) would not join it.
  headers['accept'] = 'text/plain;version=0.0.4;q=1,*/*;q=0.1';
  for (const key of ['user-agent', 'x-prometheus-scrape-timeout-seconds'] as const) {
    const v = incoming[key];
    if (typeof v === 'string') headers[key] = v;
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body })).on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

function scrapeTimeoutMs(headers: IncomingHttpHeaders): number {
  const v = Number(headers['x-prometheus-scrape-timeout-seconds']);
  return Number.isFinite(v) && v > 0 ? Math.min(v * 1000, 60_000) : DEFAULT_SCRAPE_TIMEOUT_MS;
}

/** Starts the status server; resolves once it listens. */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const metrics = new AgentMetrics();
  const told = new Set<string>();
  const warn = (message: string): void => {
    if (told.has(message) || told.size > 100) return;
    told.add(message);
    options.warn?.(message);
  };

  /** A failed scrape leaves its part out and counts, as pilot-agent does, so the others still reach Prometheus. */
  const part = async (type: ScrapeType, port: number, path: string, headers: IncomingHttpHeaders): Promise<ExpositionSource | undefined> => {
    try {
      const res = await scrape(port, path, headers, scrapeTimeoutMs(headers));
      if (res.status === 200) return { name: type, text: res.body };
      warn(`status server: scraping ${type} metrics at 127.0.0.1:${port}${path}: status ${res.status}`);
    } catch (err) {
      warn(`status server: scraping ${type} metrics at 127.0.0.1:${port}${path}: ${(err as Error).message}`);
    }
    metrics.failures[type]++;
    return undefined;
  };

  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // The query goes on to the proxy's /stats/prometheus as given (filters such as usedonly).
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    if (path === '/stats/prometheus' || path === '/metrics') {
      metrics.scrapes++;
      void (async () => {
        const [envoy, application] = await Promise.all([
          part('envoy', options.adminPort, `/stats/prometheus${query}`, req.headers),
          options.application ? part('application', options.application.port, options.application.path, req.headers) : Promise.resolve(undefined),
        ]);
        // The agent's own first (its counters already include this scrape's failures), then the proxy's, then the app's.
        const sources: ExpositionSource[] = [{ name: 'agent', text: metrics.render() }];
        if (envoy) sources.push(envoy);
        if (application) sources.push(application);
        const merged = mergeExpositions(sources);
        for (const d of merged.dropped) warn(`status server: metric family exposed twice, later one left out (${d})`);
        res.writeHead(200, { 'content-type': FORMAT_TEXT });
        res.end(req.method === 'HEAD' ? undefined : merged.text);
      })().catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${String(err)}\n`);
      });
      return;
    }
    if (path === '/healthz/ready') {
      scrape(options.adminPort, '/ready', {}, 5_000).then(
        (r) => {
          if (r.status === 200) metrics.recordReady();
          res.writeHead(r.status === 200 ? 200 : 503, { 'content-type': 'text/plain' }).end(r.status === 200 ? '' : `proxy not ready: ${r.body.trim() || r.status}\n`);
        },
        (err: unknown) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`proxy not ready: ${(err as Error).message}\n`),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}; the status port serves /stats/prometheus, /metrics, /healthz/ready\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    metrics,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
