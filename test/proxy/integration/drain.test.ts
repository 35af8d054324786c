// Change without loss, through real sockets: an endpoint removed by EDS and a cluster removed by CDS let their in-flight
// requests finish while new requests go elsewhere and their pooled connections close; /drain_listeners?inboundonly&graceful
// keeps the inbound listener accepting with `connection: close` for the drain time, then stops it, the outbound one
// untouched; pilot-agent's termination drain waits for in-flight inbound requests (or its duration) before the stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { terminationDrain } from '../../../src/agent/termination-drain.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import { ProxyLog } from '../../../src/proxy/admin/log-levels.js';
import { startProxy } from '../../../src/proxy/main.js';
import { ClusterManagerImpl } from '../../../src/proxy/upstream/cluster-manager.js';
import type { UpstreamCluster, UpstreamHost } from '../../../src/proxy/upstream/types.js';
import { eventually, get, HCM_TYPE, ROUTER, startUpstream, staticCluster, type Json } from './support.js';

/** An upstream that holds requests to /slow until release(), answering the rest at once. */
async function holdingUpstream(name: string) {
  const held: ServerResponse[] = [];
  const up = await startUpstream(name, (req, res) => {
    if (req.url === '/slow') held.push(res);
    else res.writeHead(200, { 'x-upstream': name }).end(name);
  });
  return Object.assign(up, {
    held,
    release(): void {
      for (const res of held.splice(0)) res.writeHead(200, { 'x-upstream': name }).end(`${name} slow`);
    },
  });
}

/** One request through a cluster to a host the cluster picks (or `host`); resolves with the status or the failure. */
function send(cluster: UpstreamCluster, path: string, host?: UpstreamHost): Promise<{ status?: number; host: string; failure?: string }> {
  const chosen = host ?? cluster.chooseHost({})!;
  return new Promise((resolve) => {
    let status: number | undefined;
    const headers: HttpHeaders = { ':method': 'GET', ':path': path, ':authority': 'svc', ':scheme': 'http' };
    const req = cluster.request(chosen, headers, {
      onHeaders: (s) => (status = s),
      onData: () => undefined,
      onEnd: () => resolve({ status, host: chosen.addressText }),
      onFailure: (failure) => resolve({ host: chosen.addressText, failure }),
    });
    req.end();
  });
}

/** A STATIC cluster as decoded protobuf (what the cluster manager takes from CDS). */
function staticProto(name: string, port: number) {
  return { name, type: 'STATIC' as const, connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } };
}

function assignment(ports: readonly number[]): Json {
  return { cluster_name: 'svc', endpoints: [{ lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })) }] };
}

test('endpoint removal: the in-flight request on the removed host finishes, new requests go to the others, its pooled connections close', async (t) => {
  const a = await holdingUpstream('a');
  const b = await holdingUpstream('b');
  const clusters = new ClusterManagerImpl();
  t.after(async () => {
    a.release();
    await clusters.close();
    await a.close();
    await b.close();
  });
  clusters.applyClusters([{ name: 'svc', type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_config: { service_name: 'svc' } }]);
  clusters.applyLoadAssignment('svc', assignment([a.port, b.port]));
  await eventually('the cluster warmed', () => clusters.get('svc') !== undefined);
  const cluster = clusters.get('svc')!;
  const hostA = [...Array(10)].map(() => cluster.chooseHost({})!).find((h) => h.port === a.port)!;
  // Two connections to a: one idle in the pool after a quick request, one carrying a request the upstream holds.
  const slow = send(cluster, '/slow', hostA);
  await eventually('a holds the slow request', () => a.held.length === 1);
  assert.equal((await send(cluster, '/quick', hostA)).status, 200);
  assert.equal(a.sockets.size, 2);

  clusters.applyLoadAssignment('svc', assignment([b.port]));
  // The idle connection closes at once; the busy one stays for its request.
  await eventually('the idle connection to a closed', () => a.sockets.size === 1);
  const after = await Promise.all([...Array(10)].map(() => send(cluster, '/quick')));
  assert.deepEqual(new Set(after.map((r) => r.host)), new Set([`127.0.0.1:${b.port}`]));
  assert.ok(after.every((r) => r.status === 200));
  a.release();
  const finished = await slow;
  assert.equal(finished.status, 200, `the in-flight request on the removed host: ${JSON.stringify(finished)}`);
  await eventually('the last connection to a closed', () => a.sockets.size === 0);
  console.log(`endpoint removal: in-flight on the removed host ${finished.status}, ${after.length} new requests all to b`);
});

test('cluster removal: its in-flight request finishes and its connections close; new requests find no cluster', async (t) => {
  const a = await holdingUpstream('a');
  const clusters = new ClusterManagerImpl();
  t.after(async () => {
    a.release();
    await clusters.close();
    await a.close();
  });
  clusters.applyClusters([staticProto('gone', a.port), staticProto('kept', a.port)]);
  const gone = clusters.get('gone')!;
  const slow = send(gone, '/slow');
  await eventually('a holds the slow request', () => a.held.length === 1);
  assert.equal((await send(gone, '/quick')).status, 200);
  clusters.applyClusters([staticProto('kept', a.port)]);
  assert.equal(clusters.get('gone'), undefined);
  await eventually('the idle connection of the removed cluster closed', () => a.sockets.size === 1);
  a.release();
  assert.equal((await slow).status, 200);
  await eventually('the removed cluster has no connection left', () => a.sockets.size === 0);
  assert.equal((await send(clusters.get('kept')!, '/quick')).status, 200);
});

/** A bootstrap with an INBOUND and an OUTBOUND listener on port 0, both routing to `cluster`. */
function twoListeners(dir: string, upstreamPort: number): string {
  const listener = (name: string, direction: string): Json => ({
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    traffic_direction: direction,
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: name,
              route_config: { name, virtual_hosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
              http_filters: [ROUTER],
            },
          },
        ],
      },
    ],
  });
  const path = join(dir, 'bootstrap.json');
  writeFileSync(path, JSON.stringify({
    node: { id: 'drain', cluster: 'test' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: { listeners: [listener('inbound', 'INBOUND'), listener('outbound', 'OUTBOUND')], clusters: [staticCluster('app', [upstreamPort])] },
  }));
  return path;
}

async function listenerPorts(admin: string): Promise<Map<string, number>> {
  const body = JSON.parse((await get(admin, '/listeners?format=json')).body) as { listener_statuses: { name: string; local_address: { socket_address: { port_value: number } } }[] };
  return new Map(body.listener_statuses.map((l) => [l.name, l.local_address.socket_address.port_value]));
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

test('/drain_listeners?inboundonly&graceful: the inbound listener keeps accepting with connection: close for the drain time, then stops; outbound untouched', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-drain-'));
  const up = await startUpstream('app');
  const proxy = await startProxy({ bootstrapPath: twoListeners(dir, up.port), drainTimeMs: 1_500, log: new ProxyLog('error') });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(async () => {
    agent.destroy();
    await proxy.stop();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const admin = proxy.admin!.address;
  const ports = await listenerPorts(admin);
  const inbound = `127.0.0.1:${ports.get('inbound')}`;
  const outbound = `127.0.0.1:${ports.get('outbound')}`;
  const before = await get(inbound, '/one', { agent });
  assert.notEqual(before.headers['connection'], 'close');

  const answer = await get(admin, '/drain_listeners?inboundonly&graceful', { method: 'POST' });
  assert.equal(answer.body, 'OK\n');
  assert.equal((await get(admin, '/ready')).status, 503);
  // During the drain time: still served, every response closes its connection; new connections are still accepted.
  const onKeptConnection = await get(inbound, '/two', { agent });
  assert.equal(onKeptConnection.status, 200);
  assert.equal(onKeptConnection.headers['connection'], 'close');
  const fresh = await get(inbound, '/three');
  assert.equal(fresh.status, 200);
  assert.equal(fresh.headers['connection'], 'close');
  assert.notEqual((await get(outbound, '/out', { agent })).headers['connection'], 'close');
  // After it: the inbound listener is closed, the outbound one serves on.
  await eventually('the inbound listener stopped', () => refused(ports.get('inbound')!), 200);
  assert.equal((await get(outbound, '/out')).status, 200);
  const listeners = await listenerPorts(admin);
  assert.deepEqual([...listeners.keys()], ['outbound']);
});

test('termination drain: the stop waits for the in-flight inbound request (exit on zero connections), or the whole duration', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-drain-'));
  const up = await holdingUpstream('app');
  const proxy = await startProxy({ bootstrapPath: twoListeners(dir, up.port), drainTimeMs: 5_000, log: new ProxyLog('error') });
  t.after(async () => {
    up.release();
    await proxy.stop();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ports = await listenerPorts(proxy.admin!.address);
  const inflight = get(`127.0.0.1:${ports.get('inbound')}`, '/slow');
  await eventually('the upstream holds the request', () => up.held.length === 1);
  const begin = Date.now();
  const ended = terminationDrain(proxy, { terminationDrainMs: 10_000, exitOnZeroActiveConnections: true, pollMs: 20 });
  setTimeout(() => up.release(), 300);
  const reply = await inflight;
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['connection'], 'close');
  assert.equal(await ended, 'no-connections');
  console.log(`termination drain: in-flight request answered ${reply.status}, drain ended after ${Date.now() - begin} ms (no inbound connection left)`);
  // Without exit-on-zero the duration is waited out; a second signal (abort) cuts it short.
  assert.equal(await terminationDrain(proxy, { terminationDrainMs: 50, exitOnZeroActiveConnections: false }), 'elapsed');
  const abort = new AbortController();
  const cut = terminationDrain(proxy, { terminationDrainMs: 60_000, exitOnZeroActiveConnections: false, signal: abort.signal });
  abort.abort();
  assert.equal(await cut, 'aborted');
});

test('trellis proxy refuses a bad termination drain duration (flag or TERMINATION_DRAIN_DURATION_SECONDS)', () => {
  const cli = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
  const flag = spawnSync(process.execPath, [cli, 'proxy', '-c', '/nonexistent.yaml', '--termination-drain-duration', 'soon'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(flag.status, 1);
  assert.match(flag.stderr, /--termination-drain-duration.*expected a duration like 5s or 500ms, or a number of seconds, got "soon"/);
  const env = spawnSync(process.execPath, [cli, 'proxy', '-c', '/nonexistent.yaml'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, TERMINATION_DRAIN_DURATION_SECONDS: '-3' } });
  assert.equal(env.status, 1);
  assert.match(env.stderr, /TERMINATION_DRAIN_DURATION_SECONDS: expected a duration like 5s or 500ms, or a number of seconds, got "-3"/);
});
