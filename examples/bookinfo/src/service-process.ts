// How a Bookinfo workload runs as a process: PORT from the environment, one log line per request, a start-up line with the bound port, clean stop on SIGTERM/SIGINT.
import http from 'node:http';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface ServiceServerOptions {
  /** Where request log lines go (default stdout). */
  log?: (line: string) => void;
}

/** `productpage-v1`, `reviews-v3`: how a workload names itself in its log lines. */
export function workloadName(service: string, version: string): string {
  return `${service}-${version}`;
}

/**
 * An HTTP server running `handler`, logging one line per request (`<time> <workload> <method> <path> <status>
 * <ms>ms x-request-id=<id>`) and answering 500 if the handler throws.
 */
export function createServiceServer(workload: string, handler: RequestHandler, options: ServiceServerOptions = {}): http.Server {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    res.once('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const requestId = req.headers['x-request-id'];
      const outcome = res.writableFinished ? String(res.statusCode) : `${res.statusCode}(aborted)`;
      log(`${new Date().toISOString()} ${workload} ${req.method ?? '-'} ${req.url ?? '-'} ${outcome} ${ms.toFixed(1)}ms x-request-id=${typeof requestId === 'string' ? requestId : '-'}`);
    });
    let result: void | Promise<void>;
    try {
      result = handler(req, res);
    } catch (error) {
      internalError(res, error, log, workload);
      return;
    }
    if (result instanceof Promise) result.catch((error: unknown) => internalError(res, error, log, workload));
  });
  server.keepAliveTimeout = 65_000;
  return server;
}

function internalError(res: http.ServerResponse, error: unknown, log: (line: string) => void, workload: string): void {
  log(`${new Date().toISOString()} ${workload} handler error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
  else res.destroy();
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(res: http.ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Listens on 127.0.0.1:`port` (0: the OS picks) and resolves with the bound port. */
export function listen(server: http.Server, port: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

/** Stops accepting, closes idle keep-alive connections and waits (at most `graceMs`) for in-flight requests. */
export function closeServer(server: http.Server, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** PORT from the environment: an integer 0–65535; unset means `fallback`. Throws with a message naming PORT. */
export function portFromEnvironment(env: NodeJS.ProcessEnv, fallback: number): number {
  const raw = env.PORT;
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d{1,5}$/.test(raw.trim()) || Number(raw) > 65535) throw new Error(`PORT: expected an integer from 0 to 65535, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

/**
 * Runs a workload as a process (the contract `trellis up` relies on): listens on 127.0.0.1:$PORT (default
 * `defaultPort`; PORT=0 lets the OS choose), then prints `<workload> listening on http://127.0.0.1:<port>`
 * as its first stdout line; SIGTERM or SIGINT stop it cleanly with exit code 0. A bad PORT or a port already
 * taken is reported on stderr and exits with code 1.
 */
export async function runServiceProcess(workload: string, server: http.Server, defaultPort: number, onClose?: () => void): Promise<void> {
  let port: number;
  try {
    port = portFromEnvironment(process.env, defaultPort);
    port = await listen(server, port);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = code === 'EADDRINUSE' ? `port ${process.env.PORT ?? defaultPort} on 127.0.0.1 is already in use` : error instanceof Error ? error.message : String(error);
    process.stderr.write(`${workload}: cannot start: ${message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${workload} listening on http://127.0.0.1:${port}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${workload} received ${signal}, stopping\n`);
    onClose?.();
    void closeServer(server, 5_000).then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** Reads a request body as UTF-8, refusing more than `limit` bytes. */
export function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The SERVICE_VERSION environment variable (default `v1`). */
export function versionFromEnvironment(env: NodeJS.ProcessEnv): string {
  const v = env.SERVICE_VERSION?.trim();
  return v === undefined || v === '' ? 'v1' : v;
}
