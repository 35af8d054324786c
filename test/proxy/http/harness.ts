// Starts a listener manager with one HCM listener over fakes, plus real upstream servers, for tests that drive real clients.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { packAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { TrellisListenerManager } from '../../../src/proxy/listeners/listener-manager.js';
import { createHttpFilterRegistry } from '../../../src/proxy/filters/registry.js';
import type { RouteTable } from '../../../src/proxy/router/route-table.js';
import type { StreamInfo } from '../../../src/proxy/http/stream-info.js';
import { FakeClusterManager } from './fakes.js';

type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type HttpFilterConfig = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;

export const HCM_MSG = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

export function routerFilter(): HttpFilterConfig {
  return { name: 'envoy.filters.http.router', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) };
}

export function hcmListener(name: string, hcm: Partial<Hcm> = {}, extra: Partial<envoy.config.listener.v3.Listener> = {}): envoy.config.listener.v3.Listener {
  const config: Hcm = { stat_prefix: 'ingress', rds: { route_config_name: 'r' }, http_filters: [routerFilter()], ...hcm };
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: packAny(HCM_MSG, config) }] }],
    ...extra,
  };
}

export interface Proxy {
  readonly manager: TrellisListenerManager;
  readonly clusters: FakeClusterManager;
  readonly routes: Map<string, RouteTable>;
  readonly completed: StreamInfo[];
  port(name?: string): number;
  httpStats(name?: string, prefix?: string): Record<string, number>;
  close(): Promise<void>;
}

export async function startProxy(listeners: envoy.config.listener.v3.Listener[], routes: Map<string, RouteTable>, clusters = new FakeClusterManager(), drainGraceMs = 5000): Promise<Proxy> {
  const completed: StreamInfo[] = [];
  const manager = new TrellisListenerManager(
    {
      clusters,
      routes: { get: (n) => routes.get(n) },
      httpFilters: createHttpFilterRegistry({ clusters }),
      nodeId: 'test-node',
      onHttpStreamComplete: (info) => completed.push(info),
    },
    { drainGraceMs },
  );
  await manager.apply(listeners.map((l) => manager.compile(l)));
  const find = (name?: string) => manager.status().find((s) => (name ? s.name === name : s.state === 'active'))!;
  return {
    manager,
    clusters,
    routes,
    completed,
    port: (name) => Number(find(name).boundAddress!.split(':').pop()),
    httpStats: (name, prefix = 'ingress') => find(name).httpStats[prefix]!,
    close: async () => {
      await manager.close();
      clusters.close();
    },
  };
}

export interface Upstream {
  readonly server: Server;
  readonly port: number;
  readonly requests: IncomingMessage[];
  close(): Promise<void>;
}

/** A real HTTP/1.1 upstream; `handler` defaults to echoing method, path and headers as JSON. */
export async function startUpstream(handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<Upstream> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (handler) return handler(req, res, body);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString() }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<SimpleResponse> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends raw bytes and returns everything the proxy answered until it closed (bounded by `timeoutMs`). */
export async function raw(port: number, payload: string | Buffer, timeoutMs = 5000): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(data);
    }, timeoutMs);
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.write(payload);
  });
}
