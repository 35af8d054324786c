// Helpers for the Bookinfo tests: run a service server on an OS-chosen port, and fake downstreams that record what reached them.
import http from 'node:http';
import { closeServer, listen } from '../../../examples/bookinfo/src/service-process.js';

export interface Running {
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0. */
export async function start(server: http.Server): Promise<Running> {
  const port = await listen(server, 0);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: async () => {
      server.closeAllConnections();
      await closeServer(server, 100);
    },
  };
}

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface Fake extends Running {
  requests: Recorded[];
}

/** A downstream that records each request and answers with `respond` (default: 200 `{}`). */
export async function startFake(respond?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Fake> {
  const requests: Recorded[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (respond) respond(req, res);
    else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    }
  });
  const running = await start(server);
  return { ...running, requests };
}

/** A fake that answers JSON `body` on every request. */
export function json(body: unknown, status = 200): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A plain request straight to a service (no proxy), on a fresh connection. */
export function request(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Collects log lines instead of printing them. */
export function logSink(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

export function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}
