// Small stand-ins for the route table compiler and the cluster manager, used until the real ones land.
import { request as httpRequest, Agent } from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import type { ClusterRouteAction, CompiledRetryPolicy, RouteEntry, RouteTable, VirtualHostEntry, CompiledMirrorPolicy, CompiledHashPolicy } from '../../../src/proxy/router/route-table.js';
import type { ClusterManager, ClusterStats, LoadBalancerContext, UpstreamCluster, UpstreamHost, UpstreamRequest, UpstreamResponseHandler } from '../../../src/proxy/upstream/types.js';

const NO_MUTATION = { apply: () => {} };

export interface FakeRoute {
  prefix: string;
  cluster?: string;
  direct?: { status: number; body: string };
  redirect?: string;
  timeoutMs?: number;
  retry?: Partial<CompiledRetryPolicy>;
  mirrors?: CompiledMirrorPolicy[];
  hash?: CompiledHashPolicy[];
  perFilter?: Map<string, unknown>;
  addRequestHeader?: [string, string];
  addResponseHeader?: [string, string];
  vh?: Partial<VirtualHostEntry>;
}

export function retryPolicy(p: Partial<CompiledRetryPolicy>): CompiledRetryPolicy {
  return {
    retryOn: new Set(),
    numRetries: 1,
    perTryTimeoutMs: 0,
    retriableStatusCodes: new Set(),
    backOffBaseMs: 5,
    backOffMaxMs: 20,
    avoidPreviousHosts: false,
    hostSelectionRetryMaxAttempts: 1,
    ...p,
  };
}

export function fakeRouteTable(name: string, routes: FakeRoute[]): RouteTable {
  const entries: RouteEntry[] = routes.map((r, i) => {
    const vh: VirtualHostEntry = { name: 'vh', requireTls: 'NONE', includeRequestAttemptCount: false, includeAttemptCountInResponse: false, ...r.vh };
    let action: RouteEntry['action'];
    if (r.direct) action = { kind: 'direct_response', status: r.direct.status, body: r.direct.body };
    else if (r.redirect) {
      const loc = r.redirect;
      action = { kind: 'redirect', status: 301, location: () => loc };
    } else {
      const c: ClusterRouteAction = {
        kind: 'cluster',
        pickCluster: (h) => (r.cluster === '%header%' ? (h['x-cluster'] as string | undefined) : r.cluster),
        pickTarget: (h) => {
          const name = r.cluster === '%header%' ? (h['x-cluster'] as string | undefined) : r.cluster;
          return name === undefined ? undefined : { cluster: name };
        },
        clusterNotFoundStatus: 503,
        autoHostRewrite: false,
        upgrades: new Map(),
        rewritePath: () => {},
        timeoutMs: r.timeoutMs ?? 15_000,
        ...(r.retry ? { retryPolicy: retryPolicy(r.retry) } : {}),
        hashPolicies: r.hash ?? [],
        mirrorPolicies: r.mirrors ?? [],
      };
      action = c;
    }
    const add = (pair: [string, string] | undefined) =>
      pair ? { apply: (h: HttpHeaders) => void (h[pair[0]] = pair[1]) } : NO_MUTATION;
    return {
      name: `route-${i}`,
      virtualHost: vh,
      action,
      requestHeaders: add(r.addRequestHeader),
      responseHeaders: add(r.addResponseHeader),
      perFilterConfig: r.perFilter ?? new Map(),
    };
  });
  return {
    name,
    match(headers) {
      const path = (headers[':path'] as string) ?? '/';
      return entries.find((_, i) => path.startsWith(routes[i]!.prefix));
    },
  };
}

function emptyStats(): ClusterStats {
  return {
    upstream_rq_total: 0, upstream_rq_active: 0, upstream_rq_pending_active: 0, upstream_rq_pending_overflow: 0, upstream_rq_timeout: 0,
    upstream_rq_retry: 0, upstream_rq_retry_success: 0, upstream_rq_retry_overflow: 0, upstream_rq_retry_limit_exceeded: 0, retry_or_shadow_abandoned: 0,
    upstream_rq_rx_reset: 0, upstream_rq_tx_reset: 0, upstream_cx_total: 0, upstream_cx_active: 0, upstream_cx_connect_fail: 0,
    upstream_cx_connect_timeout: 0, upstream_cx_overflow: 0, upstream_cx_destroy: 0, upstream_rq_1xx: 0, upstream_rq_2xx: 0,
    upstream_rq_3xx: 0, upstream_rq_4xx: 0, upstream_rq_5xx: 0, membership_healthy: 0, membership_total: 0,
  };
}

export function fakeHost(port: number, address = '127.0.0.1'): UpstreamHost {
  return {
    addressText: `${address}:${port}`, address, port, weight: 1, priority: 0, locality: { region: '', zone: '', subZone: '' }, health: 'HEALTHY',
    healthFlags: { failedActiveHc: false, degradedActiveHc: false, pendingActiveHc: false, activeHcTimeout: false, failedOutlierCheck: false, pendingDynamicRemoval: false },
    successRate: -1, localOriginSuccessRate: -1,
    metadata: {}, stats: { cxActive: 0, cxTotal: 0, cxConnectFail: 0, rqActive: 0, rqTotal: 0, rqError: 0, rqSuccess: 0, rqTimeout: 0 },
  };
}

/** A cluster that sends each request with node:http (or node:http2 when `http2`), one host picked round-robin. */
export class FakeCluster implements UpstreamCluster {
  readonly stats = emptyStats();
  readonly circuitBreakers = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, retriesActive: 0 };
  readonly seenHashKeys: (bigint | undefined)[] = [];
  readonly requests: HttpHeaders[] = [];
  private next = 0;
  private readonly agent = new Agent({ keepAlive: true });
  private readonly sessions = new Map<string, ClientHttp2Session>();
  readonly active = new Set<UpstreamRequest>();
  constructor(readonly name: string, readonly hosts: UpstreamHost[], private readonly http2 = false) {}

  chooseHost(ctx: LoadBalancerContext): UpstreamHost | undefined {
    this.seenHashKeys.push(ctx.hashKey);
    const healthy = this.hosts.filter((h) => h.health === 'HEALTHY');
    if (healthy.length === 0) return undefined;
    for (let i = 0; i < healthy.length; i++) {
      const h = healthy[this.next++ % healthy.length]!;
      if (!ctx.avoidHosts?.has(h)) return h;
    }
    return healthy[this.next++ % healthy.length];
  }

  request(host: UpstreamHost, headers: HttpHeaders, handler: UpstreamResponseHandler): UpstreamRequest {
    this.stats.upstream_rq_total++;
    this.requests.push(headers);
    return this.http2 ? this.h2(host, headers, handler) : this.h1(host, headers, handler);
  }

  private h1(host: UpstreamHost, headers: HttpHeaders, handler: UpstreamResponseHandler): UpstreamRequest {
    const out: Record<string, string | string[]> = {};
    for (const k in headers) if (!k.startsWith(':') && headers[k] !== undefined) out[k] = headers[k]!;
    out['host'] = headers[':authority'] as string;
    let done = false;
    const req = httpRequest({ host: host.address, port: host.port, method: headers[':method'] as string, path: headers[':path'] as string, headers: out, agent: this.agent });
    const self = this;
    const ur: UpstreamRequest = {
      write: (c) => req.write(c),
      end: () => req.end(),
      abort: () => {
        done = true;
        self.active.delete(ur);
        req.destroy();
      },
      onDrain: (cb) => req.once('drain', cb),
      pauseResponse: () => response?.pause(),
      resumeResponse: () => response?.resume(),
    };
    this.active.add(ur);
    let response: import('node:http').IncomingMessage | undefined;
    req.on('response', (res) => {
      response = res;
      const h: HttpHeaders = {};
      for (const k in res.headers) h[k] = res.headers[k];
      if (!done) handler.onHeaders(res.statusCode ?? 502, h);
      res.on('data', (c: Buffer) => !done && handler.onData(c));
      res.on('end', () => {
        if (done) return;
        done = true;
        this.active.delete(ur);
        handler.onEnd();
      });
      res.on('error', () => {
        if (done) return;
        done = true;
        this.active.delete(ur);
        handler.onFailure('remote_reset', 'reset');
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      this.active.delete(ur);
      handler.onFailure(err.code === 'ECONNREFUSED' ? 'connect_failure' : 'remote_reset', err.message);
    });
    return ur;
  }

  private h2(host: UpstreamHost, headers: HttpHeaders, handler: UpstreamResponseHandler): UpstreamRequest {
    let session = this.sessions.get(host.addressText);
    if (!session || session.closed || session.destroyed) {
      session = h2connect(`http://${host.addressText}`);
      session.on('error', () => {});
      this.sessions.set(host.addressText, session);
    }
    const out: Record<string, string | string[]> = {};
    for (const k in headers) if (headers[k] !== undefined && k !== ':scheme') out[k] = headers[k]!;
    let done = false;
    const stream = session.request(out, { endStream: false });
    const ur: UpstreamRequest = {
      write: (c) => stream.write(c),
      end: () => stream.end(),
      abort: () => {
        done = true;
        this.active.delete(ur);
        stream.close();
      },
      onDrain: (cb) => stream.once('drain', cb),
      pauseResponse: () => stream.pause(),
      resumeResponse: () => stream.resume(),
    };
    this.active.add(ur);
    stream.on('response', (h) => {
      const status = Number(h[':status']);
      const hh: HttpHeaders = {};
      for (const k in h) if (!k.startsWith(':')) hh[k] = h[k] as string;
      handler.onHeaders(status, hh);
    });
    stream.on('data', (c: Buffer) => !done && handler.onData(c));
    stream.on('trailers', (t) => !done && handler.onTrailers?.(t as HttpHeaders));
    stream.on('end', () => {
      if (done) return;
      done = true;
      this.active.delete(ur);
      handler.onEnd();
    });
    stream.on('error', () => {
      if (done) return;
      done = true;
      this.active.delete(ur);
      handler.onFailure('remote_reset', 'reset');
    });
    return ur;
  }

  close(): void {
    this.agent.destroy();
    for (const s of this.sessions.values()) s.destroy();
  }
}

export class FakeClusterManager implements ClusterManager {
  readonly clusters = new Map<string, FakeCluster>();
  add(c: FakeCluster): this {
    this.clusters.set(c.name, c);
    return this;
  }
  get(name: string): UpstreamCluster | undefined {
    return this.clusters.get(name);
  }
  close(): void {
    for (const c of this.clusters.values()) c.close();
  }
}
