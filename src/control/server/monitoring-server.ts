// The control plane's monitoring port (istiod 15014): Prometheus /metrics, /ready, and the debug API the CLI reads (syncz, config_dump, configz, push_status).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError } from '../../common/errors.js';
import type { ConfigDump } from './config-dump.js';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js';
import type { ProxySyncStatus } from './sync-status.js';

/** What the endpoints show; main.ts wires these to the discovery server, the store and the metrics. */
export interface MonitoringSources {
  metrics(): string;
  syncz(): readonly ProxySyncStatus[];
  /** undefined: no such proxy. */
  configDump(proxyId: string): ConfigDump | undefined;
  configz(): unknown;
  /** The current snapshot's push status (istiod's /debug/push_status): its version and conflicts by metric and key. */
  pushStatus(): unknown;
  /** Whether the first config was loaded and the xDS port is serving. */
  ready(): boolean;
}

export interface MonitoringListener {
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

const ENDPOINTS = ['/metrics', '/ready', '/debug/syncz', '/debug/config_dump?proxyID=', '/debug/configz', '/debug/push_status'];

/** Splits `host:port` (IPv6 in brackets); throws on anything else. */
export function parseAddress(address: string, what = 'address'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`invalid ${what} ${JSON.stringify(address)}: expected host:port (e.g. 127.0.0.1:15014), port 0-65535`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

function send(res: ServerResponse, status: number, body: string, contentType = 'application/json'): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value, null, 2)}\n`);
}

export function handleMonitoringRequest(sources: MonitoringSources, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return json(res, 405, { error: `method ${req.method} not allowed` });
  }
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://monitoring');
  } catch {
    return json(res, 400, { error: 'malformed request URL' });
  }
  try {
    switch (url.pathname) {
      case '/metrics':
        return send(res, 200, sources.metrics(), PROMETHEUS_CONTENT_TYPE);
      case '/ready':
        return sources.ready() ? send(res, 200, 'ok\n', 'text/plain') : send(res, 503, 'not ready\n', 'text/plain');
      case '/debug/syncz':
        return json(res, 200, sources.syncz());
      case '/debug/config_dump': {
        const proxyId = url.searchParams.get('proxyID') ?? url.searchParams.get('proxyId');
        if (!proxyId) return json(res, 400, { error: 'proxyID query parameter is required, e.g. /debug/config_dump?proxyID=sidecar~10.0.0.1~reviews-v1.default~default.svc.cluster.local' });
        const dump = sources.configDump(proxyId);
        if (!dump) return json(res, 404, { error: `proxy ${proxyId} is not connected (see /debug/syncz)` });
        return json(res, 200, dump);
      }
      case '/debug/configz':
        return json(res, 200, sources.configz());
      case '/debug/push_status':
        return json(res, 200, sources.pushStatus());
      case '/debug':
      case '/':
        return json(res, 200, { endpoints: ENDPOINTS });
      default:
        return json(res, 404, { error: `no endpoint ${url.pathname}`, endpoints: ENDPOINTS });
    }
  } catch (err) {
    return json(res, 500, { error: describeError(err) });
  }
}

/** Listens on `address` (port 0 picks one). */
export async function startMonitoringServer(address: string, sources: MonitoringSources): Promise<MonitoringListener> {
  const { host, port } = parseAddress(address, 'monitoring address');
  const server = createServer((req, res) => handleMonitoringRequest(sources, req, res));
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
