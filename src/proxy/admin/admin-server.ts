// The admin listener (Envoy's admin API on admin.address): read-only views of the applied config and stats, plus drain, quit and log levels.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError } from '../../common/errors.js';
import type { ListenerStatus } from '../listeners/types.js';
import { clustersJson, clustersText, listenersJson, listenersText, type ClusterView } from './clusters-page.js';
import { configDumpJson, type ConfigDumpInput } from './config-dump.js';
import { isLogLevel, type ProxyLog } from './log-levels.js';
import { formatPrometheus, formatStatsJson, formatStatsText, type StatSample, type StatsQuery } from './stats.js';

/** Envoy's server states (/ready, /server_info, server.state). */
export type ServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';

/** What the admin pages read and the few actions they may take; main.ts implements it over the live proxy. */
export interface AdminView {
  state(): ServerState;
  serverInfo(): Record<string, unknown>;
  configDump(): ConfigDumpInput;
  clusters(): readonly ClusterView[];
  listeners(): readonly ListenerStatus[];
  stats(): readonly StatSample[];
  /**
   * Envoy's /drain_listeners: starts draining (all or inbound-only listeners, with or without the graceful period);
   * the answer does not wait for it.
   */
  drainListeners(options: { readonly graceful: boolean; readonly inboundOnly: boolean; readonly skipExit: boolean }): void;
  /** Starts a clean exit (the response is sent first). */
  quit(): void;
  readonly log: ProxyLog;
}

export interface AdminServer {
  /** `ip:port` bound. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, url: URL, res: ServerResponse) => void | Promise<void>;

interface Endpoint {
  readonly help: string;
  readonly post: boolean;
  readonly handle: Handler;
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=UTF-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-cache, max-age=0', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
}

function statsQuery(url: URL): StatsQuery | string {
  const filter = url.searchParams.get('filter');
  let regex: RegExp | undefined;
  if (filter) {
    try {
      regex = new RegExp(filter);
    } catch (err) {
      return `Invalid re2 regex: ${describeError(err)}`;
    }
  }
  return { ...(regex ? { filter: regex } : {}), usedOnly: url.searchParams.has('usedonly') };
}

function endpoints(view: AdminView): Map<string, Endpoint> {
  const map = new Map<string, Endpoint>();
  const add = (path: string, help: string, post: boolean, handle: Handler): void => void map.set(path, { help, post, handle });

  add('/', 'this list', false, (_req, _url, res) => {
    const lines = [...map.entries()].filter(([p]) => p !== '/').map(([p, e]) => `  ${p}: ${e.help}${e.post ? ' (POST)' : ''}`);
    send(res, 200, `admin commands are:\n${lines.join('\n')}\n`);
  });
  add('/config_dump', 'dump current Envoy configs (?include_eds, ?resource=)', false, (_req, url, res) => {
    const resource = url.searchParams.get('resource') ?? undefined;
    sendJson(res, 200, configDumpJson(view.configDump(), { includeEds: url.searchParams.has('include_eds'), ...(resource ? { resource } : {}) }));
  });
  add('/clusters', 'upstream cluster status (?format=json)', false, (_req, url, res) => {
    if (url.searchParams.get('format') === 'json') sendJson(res, 200, clustersJson(view.clusters()));
    else send(res, 200, clustersText(view.clusters()));
  });
  add('/listeners', 'print listener info (?format=json)', false, (_req, url, res) => {
    if (url.searchParams.get('format') === 'json') sendJson(res, 200, listenersJson(view.listeners()));
    else send(res, 200, listenersText(view.listeners()));
  });
  add('/stats', 'print server stats (?format=json|prometheus, ?filter=regex, ?usedonly)', false, (_req, url, res) => {
    const query = statsQuery(url);
    if (typeof query === 'string') return send(res, 400, `${query}\n`);
    const format = url.searchParams.get('format');
    if (format === 'json') send(res, 200, formatStatsJson(view.stats(), query), 'application/json');
    else if (format === 'prometheus') send(res, 200, formatPrometheus(view.stats(), query), 'text/plain; version=0.0.4');
    else send(res, 200, formatStatsText(view.stats(), query));
  });
  add('/stats/prometheus', 'print server stats in prometheus format', false, (_req, url, res) => {
    const query = statsQuery(url);
    if (typeof query === 'string') return send(res, 400, `${query}\n`);
    send(res, 200, formatPrometheus(view.stats(), query), 'text/plain; version=0.0.4');
  });
  add('/ready', 'print server state, return 200 if LIVE, otherwise return 503', false, (_req, _url, res) => {
    const state = view.state();
    send(res, state === 'LIVE' ? 200 : 503, `${state}\n`);
  });
  add('/server_info', 'print server version/status information', false, (_req, _url, res) => sendJson(res, 200, view.serverInfo()));
  add('/drain_listeners', 'drain listeners (?inboundonly, ?graceful, ?skip_exit)', true, (_req, url, res) => {
    const graceful = url.searchParams.has('graceful');
    const skipExit = url.searchParams.has('skip_exit');
    // Envoy's answer, word for word: skip_exit only means something after a graceful drain period.
    if (skipExit && !graceful) return send(res, 400, 'skip_exit requires graceful\n');
    view.drainListeners({ graceful, inboundOnly: url.searchParams.has('inboundonly'), skipExit });
    send(res, 200, 'OK\n');
  });
  add('/quitquitquit', 'exit the server', true, (_req, _url, res) => {
    res.on('finish', () => view.quit());
    send(res, 200, 'OK\n');
  });
  add('/logging', 'query/change logging levels (?level=debug, ?<logger>=<level>)', true, (_req, url, res) => {
    for (const [name, level] of url.searchParams) {
      if (!isLogLevel(level)) return send(res, 404, `error: unknown level "${level}"\n`);
      if (name === 'level') view.log.setAll(level);
      else if (!view.log.set(name, level)) return send(res, 404, `error: unknown logger "${name}"\n`);
    }
    const lines = [...view.log.levelsByName()].map(([name, level]) => `  ${name}: ${level}`);
    send(res, 200, `active loggers:\n${lines.join('\n')}\n`);
  });
  return map;
}

/** Binds the admin listener; port 0 picks a free one. */
export async function startAdminServer(view: AdminView, host: string, port: number): Promise<AdminServer> {
  const routes = endpoints(view);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const endpoint = routes.get(url.pathname);
    if (!endpoint) return send(res, 404, `invalid path. admin commands are listed at /\n`);
    // Envoy refuses GET on mutating endpoints so a browser prefetch cannot drain or stop a proxy.
    if (endpoint.post && req.method !== 'POST' && !(url.pathname === '/logging' && url.searchParams.size === 0)) {
      return send(res, 405, 'Method Not Allowed: this endpoint requires POST\n');
    }
    req.resume();
    Promise.resolve()
      .then(() => endpoint.handle(req, url, res))
      .catch((err: unknown) => {
        view.log.error('admin', `${url.pathname}: ${describeError(err)}`);
        if (!res.headersSent) send(res, 500, `${describeError(err)}\n`);
        else res.destroy();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const address = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  return {
    address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
