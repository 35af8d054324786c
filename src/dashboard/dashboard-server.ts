// The dashboard's HTTP server: the page, its script and layout library, and /api/state (what the page polls).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MeshSource } from './mesh-source.js';

const pageDir = join(dirname(fileURLToPath(import.meta.url)), 'page');
const dagreFile = join(dirname(createRequire(import.meta.url).resolve('@dagrejs/dagre/package.json')), 'dist', 'dagre.min.js');

/** Path → file and content type: the whole bundle the browser loads. */
const FILES: Readonly<Record<string, readonly [string, string]>> = {
  '/': [join(pageDir, 'index.html'), 'text/html; charset=utf-8'],
  '/app.js': [join(pageDir, 'app.js'), 'text/javascript; charset=utf-8'],
  '/dagre.min.js': [dagreFile, 'text/javascript; charset=utf-8'],
};

export interface DashboardServer {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

export interface DashboardServerOptions {
  readonly host?: string;
  readonly port?: number;
  /** How often the mesh is scraped, in ms. */
  readonly refreshMs?: number;
}

export async function startDashboardServer(source: MeshSource, options: DashboardServerOptions = {}): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1';
  // One scrape at a time: a tick that finds the last one still running (slow or dead targets) is skipped.
  let inFlight = true;
  let refreshing: Promise<unknown> = source.refresh().catch(() => undefined).finally(() => (inFlight = false));
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = true;
    refreshing = source.refresh().catch(() => undefined).finally(() => (inFlight = false));
  }, options.refreshMs ?? 2_000);
  timer.unref();

  const server = createServer((req, res) => {
    handle(req, res, source).catch((err: Error) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `dashboard: ${err.message}\n`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    server,
    url: `http://${host}:${port}`,
    close: async () => {
      clearInterval(timer);
      await refreshing.catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, source: MeshSource): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://dashboard').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'only GET\n');
  if (path === '/api/state') return send(res, 200, 'application/json', JSON.stringify(source.state()));
  const file = FILES[path === '/index.html' ? '/' : path];
  if (!file) return send(res, 404, 'text/plain; charset=utf-8', `no ${path}; the dashboard serves ${Object.keys(FILES).join(', ')} and /api/state\n`);
  send(res, 200, file[1], await readFile(file[0]));
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
