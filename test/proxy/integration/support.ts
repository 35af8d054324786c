// Helpers for the proxy integration tests: the real data plane (startProxy from a static bootstrap written to a temp
// file) in this process, real upstream servers on 127.0.0.1:0, real clients, admin /stats and the access log file.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, request, Agent, type IncomingMessage, type Server, type ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import { connect as h2connect, createServer as createH2Server, type Http2Server, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyLog } from '../../../src/proxy/admin/log-levels.js';
import { startProxy, type RunningProxy } from '../../../src/proxy/main.js';

export const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

export type Json = Record<string, unknown>;

/** A STATIC cluster over 127.0.0.1 ports. */
export function staticCluster(name: string, ports: readonly number[], extra: Json = {}): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })) }] },
    ...extra,
  };
}

/** HTTP/2 to the upstream (h2c prior knowledge). */
export const H2_UPSTREAM = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

export interface DataPlaneOptions {
  readonly virtualHosts: readonly Json[];
  readonly clusters: readonly Json[];
  /** Extra HCM fields. */
  readonly hcm?: Json;
  /** HTTP filters before the router. */
  readonly httpFilters?: readonly Json[];
  readonly listener?: Json;
}

export interface DataPlane {
  readonly proxy: RunningProxy;
  /** `127.0.0.1:port` of the listener. */
  readonly address: string;
  readonly port: number;
  readonly admin: string;
  readonly agent: Agent;
  /** Counters and gauges from admin /stats (text), by full name. */
  stats(): Promise<Map<string, number>>;
  stat(name: string): Promise<number>;
  /** Access log entries so far (JSON format, one object per request). */
  accessLog(): Json[];
  close(): Promise<void>;
}

const LOG_FORMAT = {
  code: '%RESPONSE_CODE%',
  flags: '%RESPONSE_FLAGS%',
  path: '%REQ(:PATH)%',
  details: '%RESPONSE_CODE_DETAILS%',
  upstream: '%UPSTREAM_HOST%',
};

/** Starts the real proxy from a static bootstrap (one listener, one HCM with inline routes, access log to a temp file). */
export async function startDataPlane(options: DataPlaneOptions): Promise<DataPlane> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-proxy-it-'));
  const logPath = join(dir, 'access.log');
  const bootstrap = {
    node: { id: 'integration', cluster: 'test' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: 'listener_0',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM_TYPE,
                    stat_prefix: 'ingress',
                    codec_type: 'AUTO',
                    access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_LOG, path: logPath, log_format: { json_format: LOG_FORMAT } } }],
                    route_config: { name: 'local', virtual_hosts: options.virtualHosts },
                    http_filters: [...(options.httpFilters ?? []), ROUTER],
                    ...options.hcm,
                  },
                },
              ],
            },
          ],
          ...options.listener,
        },
      ],
      clusters: options.clusters,
    },
  };
  const path = join(dir, 'bootstrap.json');
  writeFileSync(path, JSON.stringify(bootstrap, null, 2));
  const proxy = await startProxy({ bootstrapPath: path, drainTimeMs: 200, log: new ProxyLog('error') });
  const admin = proxy.admin!.address;
  const listeners = JSON.parse((await get(admin, '/listeners?format=json')).body) as { listener_statuses: { local_address: { socket_address: { port_value: number } } }[] };
  const port = listeners.listener_statuses[0]!.local_address.socket_address.port_value;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const stats = async (): Promise<Map<string, number>> => {
    const text = (await get(admin, '/stats')).body;
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      const i = line.lastIndexOf(': ');
      if (i > 0) out.set(line.slice(0, i), Number(line.slice(i + 2)));
    }
    return out;
  };
  return {
    proxy,
    address: `127.0.0.1:${port}`,
    port,
    admin,
    agent,
    stats,
    stat: async (name) => {
      const v = (await stats()).get(name);
      assert.ok(v !== undefined, `stat ${name} is not in /stats`);
      return v;
    },
    accessLog: () => (existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json) : []),
    close: async () => {
      agent.destroy();
      await proxy.stop();
    },
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly trailers?: Record<string, string | undefined>;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  readonly agent?: Agent | false;
  readonly timeoutMs?: number;
}

/** One HTTP/1.1 request (keep-alive when given an agent). */
export function get(address: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = request(
      { host: address.slice(0, colon), port: Number(address.slice(colon + 1)), path, method: options.method ?? 'GET', agent: options.agent ?? false, headers: options.headers ?? {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 20_000, () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** One HTTP/2 (h2c) request on a fresh session. */
export async function h2get(address: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const session = h2connect(`http://${address}`);
  try {
    return await new Promise<Reply>((resolve, reject) => {
      session.on('error', reject);
      const stream = session.request({ ':method': options.method ?? 'GET', ':path': path, ...(options.headers as Record<string, string>) }, { endStream: options.body === undefined });
      let status = 0;
      let headers: Record<string, string | string[] | undefined> = {};
      let trailers: Record<string, string | undefined> | undefined;
      let body = '';
      stream.on('response', (h: IncomingHttpHeaders) => {
        status = Number(h[':status']);
        headers = h as Record<string, string | string[] | undefined>;
      });
      stream.on('trailers', (t: IncomingHttpHeaders) => (trailers = t as Record<string, string | undefined>));
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      stream.on('end', () => resolve({ status, headers, body, ...(trailers ? { trailers } : {}) }));
      stream.on('error', reject);
      if (options.body !== undefined) stream.end(options.body);
    });
  } finally {
    session.close();
  }
}

export interface Upstream {
  readonly port: number;
  readonly name: string;
  /** Requests seen, in order. */
  readonly seen: { method: string; path: string; headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string, upstream: Upstream) => void;

/** An HTTP/1.1 server on 127.0.0.1:0; the default handler answers 200 `<name> <path>` with x-upstream: <name>. */
export async function startUpstream(name: string, handler?: Handler): Promise<Upstream & { server: Server; sockets: Set<Socket> }> {
  const seen: Upstream['seen'] = [];
  const sockets = new Set<Socket>();
  const server = createServer();
  const upstream = { name, seen, server, sockets, port: 0, close: async () => undefined } as Upstream & { server: Server; sockets: Set<Socket>; port: number };
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      if (handler) return handler(req, res, body, upstream);
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(`${name} ${req.url}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (upstream as { port: number }).port = (server.address() as AddressInfo).port;
  upstream.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
    });
  return upstream;
}

/** An h2c server on 127.0.0.1:0. */
export async function startH2Upstream(name: string, onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void): Promise<{ port: number; server: Http2Server; close(): Promise<void> }> {
  const server = createH2Server();
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', onStream);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  void name;
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Polls a condition (bounded in count and time). */
export async function eventually(what: string, condition: () => boolean | Promise<boolean>, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Waits until the access log has `n` entries and returns them. */
export async function accessLogEntries(dp: DataPlane, n: number): Promise<Json[]> {
  await eventually(`${n} access log entries`, () => dp.accessLog().length >= n);
  return dp.accessLog();
}

/** A route to a cluster with a prefix match. */
export function routeTo(cluster: string, prefix = '/', extra: Json = {}, match: Json = {}): Json {
  return { match: { prefix, ...match }, route: { cluster, ...extra } };
}

export function vhost(routes: readonly Json[], domains: readonly string[] = ['*'], extra: Json = {}): Json {
  return { name: `vh-${domains.join('-')}`, domains, routes, ...extra };
}

/** Sockets / handles are back to their idle shape: no upstream connection held by the cluster. */
export async function expectNoUpstreamConnections(dp: DataPlane, cluster: string): Promise<void> {
  await eventually(`cluster.${cluster}.upstream_cx_active == 0 and upstream_rq_active == 0`, async () => {
    const s = await dp.stats();
    return s.get(`cluster.${cluster}.upstream_cx_active`) === 0 && s.get(`cluster.${cluster}.upstream_rq_active`) === 0;
  });
}
