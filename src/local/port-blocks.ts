// Port blocks on the loopback: the control plane's ports and one block per workload or gateway, so a whole mesh runs on 127.0.0.1 without collisions.
import { createServer } from 'node:net';
import type { MeshManifest } from './manifest.js';

/** Ports per block; a block is `base + BLOCK_SIZE * (index + 1)`, block 0 is the control plane's. */
export const BLOCK_SIZE = 10;

export interface ControlPorts {
  readonly xds: number;
  readonly monitoring: number;
  /** TLS xDS and the CA (Istio's 15012). */
  readonly secureXds: number;
  /** `trellis dashboard`'s page, served by the `up` process. */
  readonly dashboard: number;
}

/** A workload's block: its application, its sidecar's explicit outbound (HTTP_PROXY), inbound and admin ports. */
export interface WorkloadPorts {
  readonly app: number;
  readonly outbound?: number;
  readonly inbound?: number;
  readonly admin?: number;
  /** The agent's SDS server, which the proxy's `sds-grpc` cluster points at. */
  readonly sds?: number;
  /** The agent's status port (Istio's 15020): merged metrics on /stats/prometheus, /healthz/ready. */
  readonly status?: number;
}

export interface GatewayPorts {
  readonly admin: number;
  readonly sds: number;
  readonly status: number;
  /** Its Gateway servers' ports, from the manifest (they come from Istio's Gateway resources, not from the block). */
  readonly listeners: readonly number[];
}

export interface PortPlan {
  readonly base: number;
  readonly control: ControlPorts;
  readonly workloads: ReadonlyMap<string, WorkloadPorts>;
  readonly gateways: ReadonlyMap<string, GatewayPorts>;
}

/** The ports of every process, in manifest order: workloads first, then gateways. */
export function planPorts(manifest: MeshManifest, base: number = manifest.portBase): PortPlan {
  const blocks = manifest.workloads.length + manifest.gateways.length + 1;
  if (base < 1024 || base + blocks * BLOCK_SIZE > 65535) {
    throw new RangeError(`port base ${base}: the mesh needs ports ${base}-${base + blocks * BLOCK_SIZE - 1}, which must lie within 1024-65535`);
  }
  let index = 0;
  const block = (): number => base + BLOCK_SIZE * ++index;
  const workloads = new Map<string, WorkloadPorts>();
  for (const w of manifest.workloads) {
    const start = block();
    workloads.set(w.name, w.sidecar ? { app: w.port ?? start, outbound: start + 1, inbound: start + 2, admin: start + 3, sds: start + 4, status: start + 5 } : { app: w.port ?? start });
  }
  const gateways = new Map<string, GatewayPorts>();
  for (const g of manifest.gateways) {
    const start = block();
    gateways.set(g.name, { admin: start + 3, sds: start + 4, status: start + 5, listeners: g.ports });
  }
  return { base, control: { xds: base, monitoring: base + 1, secureXds: base + 2, dashboard: base + 3 }, workloads, gateways };
}

/** One port that cannot be bound, and who needed it. */
export interface TakenPort {
  readonly owner: string;
  readonly role: string;
  readonly port: number;
  readonly reason: string;
}

/** Every port of `plan` that cannot be bound on 127.0.0.1 right now (something else listens there). */
export async function findTakenPorts(plan: PortPlan): Promise<TakenPort[]> {
  const wanted: Array<Omit<TakenPort, 'reason'>> = [
    { owner: 'control', role: 'xds', port: plan.control.xds },
    { owner: 'control', role: 'monitoring', port: plan.control.monitoring },
    { owner: 'control', role: 'secure xds', port: plan.control.secureXds },
    { owner: 'dashboard', role: 'dashboard', port: plan.control.dashboard },
  ];
  for (const [name, p] of plan.workloads) {
    for (const role of ['app', 'outbound', 'inbound', 'admin', 'sds', 'status'] as const) {
      const port = p[role];
      if (port !== undefined) wanted.push({ owner: name, role, port });
    }
  }
  for (const [name, p] of plan.gateways) {
    wanted.push({ owner: name, role: 'admin', port: p.admin });
    wanted.push({ owner: name, role: 'sds', port: p.sds });
    wanted.push({ owner: name, role: 'status', port: p.status });
    for (const port of p.listeners) wanted.push({ owner: name, role: 'gateway listener', port });
  }
  // One at a time: two owners of one port (a fixed port inside a block) must not make each other look taken.
  const taken: TakenPort[] = [];
  for (const w of wanted) {
    const reason = await portProblem(w.port);
    if (reason !== undefined) taken.push({ ...w, reason });
  }
  return taken;
}

/** Why `port` cannot be bound on 127.0.0.1 (e.g. `EADDRINUSE`), or undefined when it is free. */
export function portProblem(port: number, host = '127.0.0.1'): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? 'already in use by another process' : err.code ?? err.message));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** `reviews-v2: inbound port 15152 is already in use by another process`. */
export function describeTakenPort(t: TakenPort): string {
  return `${t.owner}: ${t.role} port ${t.port} is ${t.reason}`;
}
