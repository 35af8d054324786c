// Active health checking against real servers on 127.0.0.1: HTTP (statuses, retriable statuses, degraded, headers),
// TCP (connect-only, send/receive), gRPC (grpc.health.v1 served by @grpc/grpc-js), timeouts, thresholds, warming, and
// the config validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { XdsValidationError } from '../../../src/common/errors.js';
import { compileCluster, type UpstreamClusterImpl } from '../../../src/proxy/upstream/cluster.js';
import { compileHealthChecks } from '../../../src/proxy/upstream/health-check/health-check-config.js';
import { decodeServingStatus, encodeHealthCheckRequest } from '../../../src/proxy/upstream/health-check/grpc-probe.js';
import { probeFinisher, type ProbeOutcome } from '../../../src/proxy/upstream/health-check/health-probe.js';
import { tcpPayloadsMatch } from '../../../src/proxy/upstream/health-check/tcp-probe.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type Cluster = envoy.config.cluster.v3.Cluster;
type HealthCheck = envoy.config.core.v3.HealthCheck;

const u = (value: number): { value: number } => ({ value });
const ms = (n: number): { seconds: number; nanos: number } => ({ seconds: Math.floor(n / 1000), nanos: (n % 1000) * 1e6 });

/** Fast checks: 40 ms apart whether or not the cluster has had traffic. */
function fast(extra: HealthCheck): HealthCheck {
  return { timeout: ms(1000), interval: ms(40), no_traffic_interval: ms(40), unhealthy_threshold: u(3), healthy_threshold: u(2), ...extra };
}

function cluster(ports: readonly number[], hc: HealthCheck, extra: Cluster = {}): UpstreamClusterImpl {
  return compileCluster({
    name: 'svc',
    type: 'STATIC',
    connect_timeout: ms(500),
    health_checks: [hc],
    load_assignment: { cluster_name: 'svc', endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } } })) }] },
    ...extra,
  });
}

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function listen<T extends Server | TcpServer>(server: T): Promise<T & { port: number }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

function close(server: Server | TcpServer): Promise<void> {
  (server as Server).closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = await listen(createTcpServer());
  const port = s.port;
  await close(s);
  return port;
}

test('HTTP: new hosts wait for their first check (warming); a 503 fails the host at once; 200s bring it back after healthy_threshold', async () => {
  let status = 200;
  const seen: IncomingMessage[] = [];
  const server = await listen(createServer((req, res) => {
    seen.push(req);
    res.writeHead(status, req.url === '/healthz' ? {} : { 'x-wrong-path': '1' }).end();
  }));
  const c = cluster([server.port], fast({
    http_health_check: { path: '/healthz', host: 'svc.example', request_headers_to_add: [{ header: { key: 'x-check', value: 'yes' } }], request_headers_to_remove: ['user-agent'] },
  }));
  try {
    const host = c.hosts[0]!;
    assert.equal(c.warm, false, 'a STATIC cluster with health checks warms after the first round');
    assert.equal(host.healthFlags.failedActiveHc, true);
    assert.equal(host.healthFlags.pendingActiveHc, true);
    await c.ready;
    // One passing first check is enough (Envoy: startup needs a single success).
    assert.equal(host.healthFlags.failedActiveHc, false);
    assert.equal(host.healthFlags.pendingActiveHc, false);
    assert.equal(c.chooseHost({}), host);
    assert.equal(seen[0]!.url, '/healthz');
    assert.equal(seen[0]!.method, 'GET');
    assert.equal(seen[0]!.headers.host, 'svc.example');
    assert.equal(seen[0]!.headers['x-check'], 'yes');
    assert.equal(seen[0]!.headers['user-agent'], undefined, 'request_headers_to_remove');
    status = 503;
    await until('503 to fail the host', () => host.healthFlags.failedActiveHc);
    // Not retriable: one answer was enough, whatever unhealthy_threshold says.
    assert.equal(c.healthStats()['health_check.failure'], 1);
    assert.equal(c.healthStats()['health_check.network_failure'], 0);
    assert.equal(c.stats.membership_healthy, 0);
    status = 200;
    const before = c.healthStats()['health_check.success']!;
    await until('two successes to restore it', () => !host.healthFlags.failedActiveHc);
    assert.ok(c.healthStats()['health_check.success']! - before >= 2, 'healthy_threshold 2');
    assert.equal(c.healthStats()['health_check.healthy'], 1);
    assert.ok(c.healthStats()['health_check.attempt']! >= 4);
  } finally {
    c.destroy();
    await close(server);
  }
});

test('HTTP: retriable_statuses count towards unhealthy_threshold; expected_statuses ranges; x-envoy-degraded marks the host degraded', async () => {
  let status = 200;
  let degraded = false;
  let checks = 0;
  const server = await listen(createServer((_req, res) => {
    checks++;
    res.writeHead(status, degraded ? { 'x-envoy-degraded': '1' } : {}).end('ok');
  }));
  const c = cluster([server.port], fast({
    http_health_check: { path: '/h', expected_statuses: [{ start: 200, end: 300 }], retriable_statuses: [{ start: 503, end: 504 }] },
  }));
  try {
    await c.ready;
    const host = c.hosts[0]!;
    status = 204;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(host.healthFlags.failedActiveHc, false, '204 is in [200, 300)');
    status = 503;
    const at = checks;
    await until('three retriable failures', () => host.healthFlags.failedActiveHc);
    assert.ok(checks - at >= 3, `unhealthy after ${checks - at} checks`);
    status = 200;
    degraded = true;
    await until('healthy and degraded', () => !host.healthFlags.failedActiveHc && host.healthFlags.degradedActiveHc);
    assert.equal(c.healthStats()['membership_degraded'], 1);
    assert.equal(c.healthStats()['health_check.degraded'], 1);
    // A degraded host is still used when it is all there is.
    assert.equal(c.chooseHost({}), host);
    degraded = false;
    await until('no longer degraded', () => !host.healthFlags.degradedActiveHc);
  } finally {
    c.destroy();
    await close(server);
  }
});

test('HTTP over HTTP/2 (codec_client_type HTTP2) and a host that times out (network failures count, ACTIVE_HC_TIMEOUT set)', async () => {
  const { createServer: createH2 } = await import('node:http2');
  let hang = false;
  const h2 = createH2((req, res) => {
    if (hang) return; // never answers
    res.writeHead(req.headers[':path'] === '/ready' ? 200 : 404).end();
  });
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  const port = (h2.address() as AddressInfo).port;
  const c = cluster([port], fast({ timeout: ms(250), unhealthy_threshold: u(2), http_health_check: { path: '/ready', codec_client_type: 'HTTP2' } }));
  try {
    await c.ready;
    const host = c.hosts[0]!;
    // On a loaded machine the first connection may miss the timeout; the host must pass soon after either way.
    await until('the HTTP/2 check to pass', () => !host.healthFlags.failedActiveHc);
    hang = true;
    await until('two timeouts', () => host.healthFlags.failedActiveHc);
    assert.equal(host.healthFlags.activeHcTimeout, true);
    assert.ok(c.healthStats()['health_check.network_failure']! >= 2);
    hang = false;
    await until('recovered', () => !host.healthFlags.failedActiveHc);
    assert.equal(host.healthFlags.activeHcTimeout, false);
  } finally {
    c.destroy();
    await new Promise<void>((r) => h2.close(() => r()));
  }
});

test('TCP: connect-only passes on a listening port and fails on a closed one after the threshold; send/receive payloads in order', async () => {
  const sockets = new Set<Socket>();
  let reply = 'PONG-OK';
  const server = await listen(createTcpServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => {
      if (d.toString() === 'PING') s.write(reply);
    });
  }));
  const dead = await deadPort();
  const c = cluster([server.port, dead], fast({ tcp_health_check: {} }));
  try {
    await c.ready;
    const [live, gone] = c.hosts;
    assert.equal(live!.healthFlags.failedActiveHc, false);
    assert.equal(gone!.healthFlags.failedActiveHc, true, 'the first check failed: stays failed');
    for (let i = 0; i < 20; i++) assert.equal(c.chooseHost({}), live);
    assert.ok(c.healthStats()['health_check.network_failure']! >= 1);
  } finally {
    c.destroy();
  }
  // Payloads are hex: "PING" out, "PONG" then "OK" expected in order.
  const p = cluster([server.port], fast({ timeout: ms(200), unhealthy_threshold: u(1), tcp_health_check: { send: { text: Buffer.from('PING').toString('hex') }, receive: [{ text: Buffer.from('PONG').toString('hex') }, { text: Buffer.from('OK').toString('hex') }] } }));
  try {
    await p.ready;
    await until('the payload check to pass', () => !p.hosts[0]!.healthFlags.failedActiveHc);
    reply = 'OK-PONG'; // both payloads present but out of order: no match, the check times out
    await until('out-of-order reply to fail', () => p.hosts[0]!.healthFlags.failedActiveHc, 4000);
    assert.equal(p.hosts[0]!.healthFlags.activeHcTimeout, true);
  } finally {
    p.destroy();
    for (const s of sockets) s.destroy();
    await close(server);
  }
  assert.equal(tcpPayloadsMatch(Buffer.from('xxPONGyyOK'), [Buffer.from('PONG'), Buffer.from('OK')]), true);
  assert.equal(tcpPayloadsMatch(Buffer.from('OKPONG'), [Buffer.from('PONG'), Buffer.from('OK')]), false);
});

test('gRPC: grpc.health.v1 Check against a @grpc/grpc-js server — SERVING passes, NOT_SERVING and unknown services fail', async () => {
  const statuses = new Map<string, number>([['', 1], ['reviews', 1]]);
  const requests: string[] = [];
  const authorities: string[] = [];
  const server = new grpc.Server();
  server.addService(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (s: string) => encodeHealthCheckRequest(s).subarray(5),
        requestDeserialize: (b: Buffer) => (b.length > 2 && b[0] === 0x0a ? b.subarray(2, 2 + b[1]!).toString() : ''),
        responseSerialize: (status: number) => Buffer.from([0x08, status]),
        responseDeserialize: (b: Buffer) => b[1] ?? 0,
      },
    } as grpc.ServiceDefinition,
    {
      Check: (call: grpc.ServerUnaryCall<string, number>, callback: grpc.sendUnaryData<number>) => {
        requests.push(call.request);
        authorities.push(String(call.metadata.get(':authority')[0] ?? call.getPath()));
        const s = statuses.get(call.request);
        if (s === undefined) callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
        else callback(null, s);
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const c = cluster([port], fast({ grpc_health_check: { service_name: 'reviews', authority: 'reviews.default' } }));
  const unknown = cluster([port], fast({ grpc_health_check: { service_name: 'nope' } }));
  try {
    await c.ready;
    await unknown.ready;
    const host = c.hosts[0]!;
    assert.equal(host.healthFlags.failedActiveHc, false);
    assert.ok(requests.includes('reviews'));
    assert.equal(unknown.hosts[0]!.healthFlags.failedActiveHc, true, 'grpc-status NOT_FOUND fails the check');
    statuses.set('reviews', 2); // NOT_SERVING
    await until('NOT_SERVING to fail the host', () => host.healthFlags.failedActiveHc);
    statuses.set('reviews', 1);
    await until('SERVING again', () => !host.healthFlags.failedActiveHc);
  } finally {
    c.destroy();
    unknown.destroy();
    server.forceShutdown();
  }
  assert.equal(decodeServingStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01])), 1);
  assert.equal(decodeServingStatus(Buffer.from([0, 0, 0, 0, 0])), 0, 'an empty message is UNKNOWN');
  assert.equal(decodeServingStatus(Buffer.from([0, 0, 0, 0, 9, 0x08])), undefined, 'truncated');
});

test('an outlier-ejected host returns on a passing active check; a failing check keeps it out', async () => {
  let status = 200;
  const server = await listen(createServer((_req, res) => res.writeHead(status).end()));
  const c = cluster([server.port], fast({ interval: ms(150), http_health_check: { path: '/' } }), { outlier_detection: { consecutive_5xx: u(1), max_ejection_percent: u(100), base_ejection_time: ms(60_000) } });
  try {
    await c.ready;
    const host = c.hosts[0]!;
    c.reportResult(host, 500);
    assert.equal(host.healthFlags.failedOutlierCheck, true);
    await until('the next passing check to un-eject', () => !host.healthFlags.failedOutlierCheck, 2000);
    assert.equal(c.healthStats()['outlier_detection.ejections_active'], 0);
    status = 500;
    c.reportResult(host, 500);
    await until('the failing check', () => host.healthFlags.failedActiveHc);
    assert.equal(host.healthFlags.failedOutlierCheck, true);
  } finally {
    c.destroy();
    await close(server);
  }
});

test('health_checks are validated with field paths', () => {
  const problems: string[] = [];
  compileHealthChecks(
    [
      { timeout: ms(0), interval: ms(1000), unhealthy_threshold: u(1), healthy_threshold: u(1), interval_jitter_percent: 101, http_health_check: { path: 'x', expected_statuses: [{ start: 99, end: 700 }], retriable_statuses: [{ start: 500, end: 500 }], codec_client_type: 'HTTP3', method: 'CONNECT' }, tcp_health_check: { send: { text: 'zz' } }, event_log_path: '/tmp/x' },
      { timeout: ms(1000), interval: ms(1000) },
    ],
    'Cluster c.health_checks',
    'c',
    problems,
  );
  for (const expected of [
    'Cluster c.health_checks: only one health check per cluster is supported',
    'Cluster c.health_checks[0].timeout: must be greater than 0',
    'Cluster c.health_checks[0].interval_jitter_percent: must be at most 100, got 101',
    'Cluster c.health_checks[0].event_log_path: is not supported',
    'Cluster c.health_checks[0]: exactly one of http_health_check, tcp_health_check, grpc_health_check is required, got http_health_check and tcp_health_check',
    'Cluster c.health_checks[0].http_health_check.path: must start with "/", got "x"',
    'Cluster c.health_checks[0].http_health_check.expected_statuses[0].start: must be at least 100, got 99',
    'Cluster c.health_checks[0].http_health_check.expected_statuses[0].end: must be at most 600, got 700',
    'Cluster c.health_checks[0].http_health_check.retriable_statuses[0]: end (500) must be greater than start (500)',
    'Cluster c.health_checks[0].http_health_check.codec_client_type: only HTTP1 and HTTP2 are supported, got HTTP3',
    'Cluster c.health_checks[0].http_health_check.method: CONNECT is not allowed',
    'Cluster c.health_checks[0].tcp_health_check.send.text: must be hex-encoded bytes',
  ]) {
    assert.ok(problems.some((p) => p.startsWith(expected)), `missing: ${expected}\n${problems.join('\n')}`);
  }
  const missing: string[] = [];
  compileHealthChecks([{ http_health_check: {} }], 'p', 'c', missing);
  assert.deepEqual(missing.sort(), ['p[0].healthy_threshold: required', 'p[0].http_health_check.path: required', 'p[0].interval: required', 'p[0].timeout: required', 'p[0].unhealthy_threshold: required']);
  // Defaults: 200 only, the cluster name as host, GET, no-traffic interval 60 s, unhealthy interval = interval.
  const d = compileHealthChecks([{ timeout: ms(1000), interval: ms(5000), unhealthy_threshold: u(2), healthy_threshold: u(2), http_health_check: { path: '/' } }], 'p', 'outbound|80||svc', [])!;
  assert.deepEqual(d.probe, { kind: 'http', host: 'outbound|80||svc', path: '/', method: 'GET', http2: false, headersToAdd: [], headersToRemove: [], expectedStatuses: [[200, 201]], retriableStatuses: [] });
  assert.equal(d.noTrafficIntervalMs, 60_000);
  assert.equal(d.unhealthyIntervalMs, 5000);
  assert.equal(d.reuseConnection, true);
  assert.throws(() => compileCluster({ name: 'o', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', health_checks: [{ timeout: ms(1000), interval: ms(1000), unhealthy_threshold: u(1), healthy_threshold: u(1), tcp_health_check: {} }] }), (err: unknown) => err instanceof XdsValidationError && /health_checks: not supported on ORIGINAL_DST/.test(err.message));
});

test('EDS with health checks: warming waits for the first checks; a removed host stays while it passes (unless ignore_health_on_host_removal)', async () => {
  const statuses = new Map<number, number>();
  const servers = await Promise.all([0, 1].map(() => listen(createServer((req, res) => res.writeHead(statuses.get(req.socket.localPort ?? 0) ?? 200).end()))));
  const [p1, p2] = servers.map((s) => s.port) as [number, number];
  const cla = (ports: number[]): envoy.config.endpoint.v3.ClusterLoadAssignment => ({
    cluster_name: 'svc',
    endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } } })) }],
  });
  const eds = (ignore: boolean): UpstreamClusterImpl =>
    compileCluster({ name: 'svc', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, health_checks: [fast({ http_health_check: { path: '/' } })], ...(ignore ? { ignore_health_on_host_removal: true } : {}) });
  const c = eds(false);
  const strict = eds(true);
  try {
    c.applyLoadAssignment(cla([p1, p2]));
    assert.equal(c.warm, false);
    await c.ready;
    assert.deepEqual(c.hosts.map((h) => h.healthFlags.failedActiveHc), [false, false]);
    c.applyLoadAssignment(cla([p1]));
    const kept = c.hosts.find((h) => h.port === p2)!;
    assert.ok(kept, 'still a member while it passes its checks');
    assert.equal(kept.healthFlags.pendingDynamicRemoval, true);
    const seen = new Set<number>();
    for (let i = 0; i < 10; i++) seen.add(c.chooseHost({})!.port);
    assert.deepEqual([...seen].sort(), [p1, p2].sort(), 'and still serves');
    statuses.set(p2, 503);
    await until('the removed host to leave after a failed check', () => !c.hosts.some((h) => h.port === p2));
    assert.equal(c.stats.membership_total, 1);
    // Back in discovery: a new host, checked again from FAILED_ACTIVE_HC.
    statuses.delete(p2);
    c.applyLoadAssignment(cla([p1, p2]));
    assert.equal(c.hosts.find((h) => h.port === p2)!.healthFlags.failedActiveHc, true);

    strict.applyLoadAssignment(cla([p1, p2]));
    await strict.ready;
    strict.applyLoadAssignment(cla([p1]));
    assert.deepEqual(strict.hosts.map((h) => h.port), [p1], 'ignore_health_on_host_removal: removed at once');
  } finally {
    c.destroy();
    strict.destroy();
    await Promise.all(servers.map(close));
  }
});

test('HealthCheckResponse decoding: unknown varint and length-delimited fields skipped, multi-byte varints, bad frames refused', () => {
  const frame = (...body: number[]): Buffer => Buffer.from([0, 0, 0, 0, body.length, ...body]);
  assert.equal(decodeServingStatus(frame(0x10, 0xff, 0x01, 0x08, 0x02)), 2, 'an unknown two-byte varint field is skipped');
  assert.equal(decodeServingStatus(frame(0x1a, 0x03, 0x61, 0x62, 0x63, 0x08, 0x01)), 1, 'a length-delimited field is skipped');
  assert.equal(decodeServingStatus(frame(0x08, 0x83, 0x01)), 131, 'a multi-byte status');
  assert.equal(decodeServingStatus(frame(0x1a, 0x80)), undefined, 'a length cut inside its varint');
  assert.equal(decodeServingStatus(frame(0x08, 0x01, 0x10, 0x80)), undefined, 'a value cut inside its varint');
  assert.equal(decodeServingStatus(frame(0x0d, 1, 0, 0, 0)), undefined, 'fixed32 is no field of this message');
  assert.equal(decodeServingStatus(Buffer.from([1, 0, 0, 0, 2, 0x08, 0x01])), undefined, 'a compressed frame');
  assert.equal(decodeServingStatus(Buffer.from([0, 0, 0])), undefined, 'a short frame header');
});

test('a probe settles once; the connection is dropped when asked or when not reused', () => {
  const run = (reuse: boolean, close: boolean): { outcomes: ProbeOutcome[]; resets: number } => {
    const outcomes: ProbeOutcome[] = [];
    let resets = 0;
    const finish = probeFinisher((o) => outcomes.push(o), () => resets++, reuse);
    finish({ healthy: true, degraded: false }, close);
    finish({ healthy: false, type: 'NETWORK', retriable: true, detail: 'stream reset' }, true);
    return { outcomes, resets };
  };
  assert.deepEqual(run(true, false), { outcomes: [{ healthy: true, degraded: false }], resets: 0 }, 'the later reset event is ignored');
  assert.equal(run(true, true).resets, 1);
  assert.equal(run(false, false).resets, 1);
});
