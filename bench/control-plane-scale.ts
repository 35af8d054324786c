// Control plane at scale: `trellis control` (its own process) with 1,000 services; memory with 0 and 100 connected proxies,
// time for 100 proxies to receive full config, and time for one VirtualService edit to reach all of them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WILDCARD, XdsClient, clusterResourceType, listenerResourceType, type Cluster, type Listener } from '../src/xds/client/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../src/xds/type-urls.js';
import { unpackAny } from '../src/xds/codec.js';
import { printFigure, printRatio } from './report.js';

const SERVICES = Number(process.env['SERVICES'] ?? 1000);
const PROXIES = Number(process.env['PROXIES'] ?? 100);
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function serviceYaml(i: number): string {
  const ns = `ns-${i % 20}`;
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  hosts: [svc-${i}.${ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - { number: 8080, name: http, protocol: HTTP }
  - { number: 9090, name: grpc, protocol: GRPC }
  endpoints:
  - { address: 10.1.${i % 250}.1, labels: { app: svc-${i}, version: v1 } }
  - { address: 10.1.${i % 250}.2, labels: { app: svc-${i}, version: v2 } }
  - { address: 10.1.${i % 250}.3, labels: { app: svc-${i}, version: v2 } }
---
`;
}

function routingYaml(i: number, timeout: string): string {
  const ns = `ns-${i % 20}`;
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  hosts: [svc-${i}.${ns}.svc.cluster.local]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: svc-${i}.${ns}.svc.cluster.local, subset: v2 } }]
  - timeout: ${timeout}
    route:
    - { destination: { host: svc-${i}.${ns}.svc.cluster.local, subset: v1 }, weight: 90 }
    - { destination: { host: svc-${i}.${ns}.svc.cluster.local, subset: v2 }, weight: 10 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: svc-${i}, namespace: ${ns} }
spec:
  host: svc-${i}.${ns}.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
`;
}

/** CPU seconds (user + system) the process has used so far, from /proc/<pid>/stat (fields 14 and 15, in clock ticks). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / CLOCK_TICKS;
}

// Linux's USER_HZ, what /proc reports CPU times in; 100 on every mainstream architecture.
const CLOCK_TICKS = Number(process.env['CLK_TCK'] ?? 100);

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function startControl(dir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [cli, 'control', '--config-dir', dir, '--xds-address', '127.0.0.1:0', '--monitoring-address', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /xds port (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`trellis control exited with ${code}`)));
  });
  return { child, port };
}

/** A proxy the way Envoy subscribes: CDS and LDS wildcard, then EDS and RDS for what they reference. */
function connectProxy(port: number, i: number): { client: XdsClient; synced: Promise<void> } {
  const ns = `ns-${i % 20}`;
  const client = new XdsClient({
    server: `127.0.0.1:${port}`,
    node: {
      id: `sidecar~10.2.${Math.floor(i / 250)}.${i % 250}~app-${i}.${ns}~${ns}.svc.cluster.local`,
      cluster: `app-${i}.${ns}`,
      metadata: { fields: { NAMESPACE: { string_value: ns }, LABELS: { struct_value: { fields: { app: { string_value: `app-${i}` } } } } } },
    },
  });
  const have = new Set<string>();
  const synced = new Promise<void>((resolve) => {
    const check = (): void => {
      if ([CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION].every((t) => have.has(t))) resolve();
    };
    client.on('ack', (event) => {
      have.add(event.typeUrl);
      if (process.env['DEBUG']) console.error(`proxy ${i} ACK ${event.typeUrl} changed=${event.changed.length}`);
      check();
    });
    client.on('nack', (event) => console.error(`proxy ${i} NACK ${event.typeUrl}: ${event.message}`));
  });
  // The apply hook sees the update before the client stores it, so keep our own view of what is held.
  const clusters = new Map<string, Cluster>();
  const listeners = new Map<string, Listener>();
  client.onApply<Cluster>(clusterResourceType, (update) => {
    for (const [name, cluster] of update.changed) clusters.set(name, cluster);
    for (const name of update.removed) clusters.delete(name);
    const eds = [...clusters.values()].filter((c) => c.type === 'EDS').map((c) => c.eds_cluster_config?.service_name || c.name || '');
    client.subscribe(CLUSTER_LOAD_ASSIGNMENT, eds);
  });
  client.onApply<Listener>(listenerResourceType, (update) => {
    for (const [name, listener] of update.changed) listeners.set(name, listener);
    for (const name of update.removed) listeners.delete(name);
    const routes = new Set<string>();
    for (const listener of listeners.values()) {
      for (const chain of listener.filter_chains ?? []) {
        for (const filter of chain.filters ?? []) {
          if (filter.name !== 'envoy.filters.network.http_connection_manager' || !filter.typed_config) continue;
          const hcm = unpackAny<{ rds?: { route_config_name?: string } }>(filter.typed_config);
          if (hcm.rds?.route_config_name) routes.add(hcm.rds.route_config_name);
        }
      }
    }
    client.subscribe(ROUTE_CONFIGURATION, [...routes]);
  });
  client.subscribe(CLUSTER, WILDCARD);
  client.subscribe(LISTENER, WILDCARD);
  return { client, synced };
}

const dir = mkdtempSync(join(tmpdir(), 'trellis-scale-'));
try {
  writeFileSync(join(dir, 'services.yaml'), Array.from({ length: SERVICES }, (_, i) => serviceYaml(i)).join(''));
  writeFileSync(join(dir, 'routing.yaml'), Array.from({ length: SERVICES / 10 }, (_, i) => routingYaml(i, '10s')).join(''));
  const { child, port } = await startControl(dir);
  await new Promise((r) => setTimeout(r, 1000));
  const idleRss = rssMb(child.pid!);

  const cpuIdle = cpuSeconds(child.pid!);
  const started = performance.now();
  const proxies = Array.from({ length: PROXIES }, (_, i) => connectProxy(port, i));
  await Promise.all(proxies.map((p) => p.synced));
  const convergeMs = performance.now() - started;
  const cpuConnect = cpuSeconds(child.pid!) - cpuIdle;
  await new Promise((r) => setTimeout(r, 1000));
  const loadedRss = rssMb(child.pid!);

  // One VirtualService edit: how long until every proxy has ACKed a new RDS version.
  const acked = proxies.map((p) => new Promise<void>((resolve) => p.client.on('ack', (e) => e.typeUrl === ROUTE_CONFIGURATION && e.changed.length > 0 && resolve())));
  const cpuBeforeEdit = cpuSeconds(child.pid!);
  const editStart = performance.now();
  writeFileSync(join(dir, 'routing.yaml'), [routingYaml(0, '3s'), ...Array.from({ length: SERVICES / 10 - 1 }, (_, i) => routingYaml(i + 1, '10s'))].join(''));
  await Promise.all(acked);
  const editMs = performance.now() - editStart;
  const cpuEdit = cpuSeconds(child.pid!) - cpuBeforeEdit;

  for (const p of proxies) p.client.close();
  child.kill('SIGTERM');
  printFigure(`control plane RSS, ${SERVICES} services, 0 proxies`, idleRss, 'MB');
  printFigure(`control plane RSS, ${SERVICES} services, ${PROXIES} proxies connected and synced`, loadedRss, 'MB');
  printFigure(`per connected proxy`, (loadedRss - idleRss) / PROXIES, 'MB');
  printRatio(`RSS with ${PROXIES} proxies / RSS with none`, loadedRss / idleRss);
  printFigure(`${PROXIES} proxies connect and receive full config (CDS, EDS, LDS, RDS ACKed)`, convergeMs, 'ms');
  printFigure(`control plane CPU (user+system) while they connect and sync`, cpuConnect * 1000, 'ms');
  printFigure(`one VirtualService edit until all ${PROXIES} proxies ACKed the new route (includes 100 ms debounce)`, editMs, 'ms');
  printFigure(`control plane CPU (user+system) for that edit`, cpuEdit * 1000, 'ms');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
