// Config files of the proxy benchmark: the nginx upstream, the nginx and HAProxy baselines, Trellis's bootstrap, wrk's Lua scripts.
import { join } from 'node:path';

/** The upstream's response body: 1 KiB, fixed. */
export const BODY = 'x'.repeat(1024);

/** Temp paths nginx would otherwise take from its compiled-in prefix (/var/lib/nginx, /var/log/nginx). */
function nginxPaths(dir: string): string {
  const tmp = join(dir, 'tmp');
  return [
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    'events { worker_connections 4096; }',
  ].join('\n') + `\nhttp {\n  access_log off;\n  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};\n`;
}

/** The upstream: nginx answering every request from memory with the 1 KiB body (no file I/O, no access log). */
export function upstreamNginxConf(dir: string, port: number): string {
  return `${nginxPaths(dir)}  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    location / { default_type text/plain; return 200 "${BODY}"; }
    # Accepted connections, read by the benchmark to check that each proxy reuses its upstream connections.
    location = /bench-stub-status { stub_status; }
  }
}
`;
}

/** The nginx baseline: a reverse proxy with a pooled keep-alive HTTP/1.1 upstream (keepalive 64). */
export function proxyNginxConf(dir: string, port: number, upstreamPort: number): string {
  return `${nginxPaths(dir)}  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream backend {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * The HAProxy baseline: mode http, keep-alive on both sides, one thread, no log lines. `http-reuse safe`
 * (HAProxy's default, spelled out) keeps idle server connections in a pool and hands them to later requests.
 */
export function haproxyConf(dir: string, port: number, upstreamPort: number): string {
  return `global
  nbthread 1
  maxconn 4096
  pidfile ${join(dir, 'haproxy.pid')}

defaults
  mode http
  option http-keep-alive
  http-reuse safe
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend bench
  bind 127.0.0.1:${port}
  default_backend upstream

backend upstream
  server up1 127.0.0.1:${upstreamPort}
`;
}

/** A sidecar's node (the metadata Istio's stats and metadata exchange read), for the stats-on variant. */
const ISTIO_NODE = `node:
  id: sidecar~127.0.0.1~bench-v1.default~default.svc.cluster.local
  cluster: bench.default
  metadata: { NAMESPACE: default, WORKLOAD_NAME: bench-v1, CLUSTER_ID: Kubernetes, LABELS: { app: bench, version: v1 } }`;

/**
 * The stats-on variant's filters, as Trellis's control plane puts them on a sidecar's inbound HCM: metadata exchange
 * first (reads the caller's x-envoy-peer-metadata, answers with its own), istio.stats just before the router.
 */
const ISTIO_STATS_FILTERS = `
          - name: istio.metadata_exchange
            typed_config:
              "@type": type.googleapis.com/google.protobuf.Struct
              value: { downstream_discovery: [{ istio_headers: {} }], downstream_propagation: [{ istio_headers: {} }] }
          - name: istio.stats
            typed_config:
              "@type": type.googleapis.com/google.protobuf.Struct
              value: { direction: INBOUND }`;

/**
 * Trellis: the shape of test/e2e/proxy-static.test.ts — one listener, HCM with the router and no access log, a
 * STATIC cluster on the upstream. HTTP/1.1 upstream connections are pooled and kept alive by the cluster's pool.
 * `istioStats`: with Istio's metadata exchange and istio.stats filters (the cost of Istio's standard metrics).
 */
export function trellisBootstrap(port: number, upstreamPort: number, options: { istioStats?: boolean } = {}): string {
  return `${options.istioStats ? ISTIO_NODE : 'node: { id: bench-proxy, cluster: bench }'}
static_resources:
  listeners:
  - name: bench
    address:
      socket_address: { address: 127.0.0.1, port_value: ${port} }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: HTTP1
          route_config:
            name: bench
            virtual_hosts:
            - name: upstream
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: upstream }
          http_filters:${options.istioStats ? ISTIO_STATS_FILTERS : ''}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    connect_timeout: 1s
    type: STATIC
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: ${upstreamPort} }
`;
}

/** wrk's summary as one JSON line (exact percentiles from its histogram, error counts), printed by `done()`. */
const WRK_DONE = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

/** Unpaced: as fast as each connection can go. No `delay` function, so wrk sends the next request at once. */
export const WRK_PLAIN_LUA = WRK_DONE;

/**
 * Paced at `rate` requests per second in total. wrk -t1 runs one Lua state for all connections and calls
 * `delay()` before every request; each call claims the next slot of one global schedule (one slot every
 * 1/rate s, read from CLOCK_MONOTONIC through LuaJIT's ffi) and waits until it. The connections together
 * therefore send `rate` requests per second, each connection about rate/c, as long as c connections can carry
 * the rate at the target's latency. wrk's timers have 1 ms resolution, so requests leave in small bursts
 * (rate/1000 per ms). When the target falls more than 50 ms behind the schedule, the schedule restarts from
 * now rather than bursting to catch up; the achieved rate is then below `rate` and the benchmark reports it.
 */
export function wrkPacedLua(rate: number): string {
  return `
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
local interval_us = 1000000 / ${rate}
local next_us = nil
function delay()
  local now = now_us()
  if next_us == nil or next_us < now - 50000 then next_us = now end
  local slot = next_us
  next_us = next_us + interval_us
  if slot <= now then return 0 end
  return math.floor((slot - now) / 1000)
end
${WRK_DONE}`;
}
