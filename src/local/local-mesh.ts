// Brings a whole mesh up on one machine: config dir, in-process control plane, each workload beside its sidecar, the gateways; status and a clean stop.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { proxyBootstrapYaml, proxyNodeId } from '../agent/bootstrap.js';
import { formatTable } from '../cli/commands/table.js';
import type { ControlPlane, ControlPlaneOptions } from '../control/server/main.js';
import { ensureCertificate } from './certificates.js';
import { PROMETHEUS_ANNOTATIONS_ENV, prometheusAnnotationsEnv } from './prometheus-annotations.js';
import { writeConfigDir, writeRegistry } from './config-dir.js';
import { loadManifest, type MeshManifest } from './manifest.js';
import { describeTakenPort, findTakenPorts, planPorts, type PortPlan } from './port-blocks.js';
import { writeState, isAlive, readState, removeState, stateDir, type MeshState } from './state-file.js';
import { Supervisor, type SupervisorOptions } from './supervisor.js';
import { createPodNetwork, isolatedUnavailable, POD_DNS_PORT, podCanConnect, podHttpStatus, type Pod, type PodNetwork } from './pod-network.js';

/** The `trellis` entry point the proxies are started with (this build's). */
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
/** Listener drain on stop: one second is plenty on a developer's machine, and stops are sequential (reverse order). */
const PROXY_DRAIN_S = 1;
/**
 * A sidecar's termination drain (Istio's terminationDrainDuration default), ended early once no inbound connection is
 * left (EXIT_ON_ZERO_ACTIVE_CONNECTIONS), so stopping a whole mesh does not wait it out for every proxy.
 */
const SIDECAR_TERMINATION_ARGS = ['--termination-drain-duration', '5s', '--exit-on-zero-active-connections'];
/**
 * A pod's sidecar runs the agent's DNS proxy (Istio's ISTIO_META_DNS_CAPTURE) where the init step's rules send port 53,
 * with VIPs for the generated ServiceEntries, which have no addresses (ISTIO_META_DNS_AUTO_ALLOCATE).
 */
const POD_DNS_ARGS = ['--dns-port', String(POD_DNS_PORT), '--dns-auto-allocate'];
/** How long a scale-down or scale-up waits for the other proxies to drop or learn an endpoint before going on. */
const ENDPOINT_PROPAGATION_MS = 10_000;

export interface LocalMeshOptions {
  /** The mesh dir (holding mesh.yaml) or the manifest file. */
  readonly dir: string;
  /** Overrides the manifest's portBase. */
  readonly portBase?: number;
  readonly write?: (text: string) => void;
  readonly color?: boolean;
  /** Restart backoff of crashed processes (tests shorten it). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /**
   * Every sidecar'd workload as a pod (root only, see pod-network.ts): its own network namespace and IP on the
   * trellis0 bridge, Istio's capture rules, no HTTP_PROXY; the control plane listens on the bridge address.
   */
  readonly isolated?: boolean;
}

/** One row of the mesh: a workload, a gateway or an external stand-in, its processes and ports. */
export interface MeshMember {
  readonly name: string;
  readonly kind: 'workload' | 'gateway' | 'external';
  readonly namespace: string;
  readonly nodeId?: string;
  readonly appPort?: number;
  readonly outboundPort?: number;
  readonly inboundPort?: number;
  readonly adminPort?: number;
  readonly listenerPorts?: readonly number[];
  /** --isolated: the workload's pod (namespace and IP). */
  readonly pod?: Pod;
  /** Supervised process names: the application and/or its proxy. */
  readonly processes: readonly string[];
}

export interface LocalMesh {
  readonly manifest: MeshManifest;
  readonly plan: PortPlan;
  /** The watched config dir (`$CONFIG` in the walkthrough). */
  readonly configDir: string;
  /** Where the control plane's xDS and CA ports listen: 127.0.0.1, or the trellis0 bridge address with --isolated. */
  readonly controlHost: string;
  readonly members: readonly MeshMember[];
  /** The running control plane (a new object after startControlPlane()); its ports never change. */
  readonly control: ControlPlane;
  /** Members left out (bad manifest entry, port taken) with the reason. */
  readonly skipped: readonly string[];
  /** The dashboard's page (`http://127.0.0.1:<base+3>/`), unless its port was taken. */
  readonly dashboardUrl?: string;
  /**
   * Waits until every proxy is LIVE and synced and every application accepts connections; resolves with the members
   * still not ready when `timeoutMs` passed (empty: all ready).
   */
  waitReady(timeoutMs: number): Promise<string[]>;
  /** The status table: each member, its ports, process state and proxy sync state. */
  statusTable(): Promise<string>;
  /**
   * Stops the in-process control plane (its ports close and every xDS stream ends) and leaves the proxies and
   * applications running on their last accepted config: the outage `startControlPlane()` ends.
   */
  stopControlPlane(): Promise<void>;
  /** Starts the control plane again with the same options, ports, CA root and config dir; re-issues the agents' tokens. */
  startControlPlane(): Promise<void>;
  /**
   * Scales a workload down in Istio's order: its endpoint leaves the registry, and once no other proxy routes to it
   * (the control plane pushed EDS without it) its sidecar gets SIGTERM and drains (terminationDrainDuration, ended
   * early when no inbound connection is left), then the application stops. In-flight requests finish; new ones go to
   * the other endpoints.
   */
  stopWorkload(name: string): Promise<void>;
  /** Scales it up again: sidecar and application start, and its endpoint rejoins the registry once both are ready. */
  startWorkload(name: string): Promise<void>;
  /** Stops everything in reverse start order, then the control plane; removes the state file. */
  stop(): Promise<void>;
}

/** Starts the mesh described by `options.dir`. Throws (ManifestError, RangeError, …) only when nothing can start. */
export async function startLocalMesh(options: LocalMeshOptions): Promise<LocalMesh> {
  const manifest = loadManifest(options.dir);
  const meshDir = manifest.dir;
  const write = options.write ?? ((t: string) => process.stdout.write(t));
  const previous = readState(meshDir);
  if (previous && previous.supervisorPid !== process.pid && isAlive(previous.supervisorPid)) {
    throw new Error(`a mesh from ${manifest.file} is already running (supervisor PID ${previous.supervisorPid}); stop it with \`trellis down ${meshDir}\``);
  }
  let state: Omit<MeshState, 'processes' | 'rows' | 'ready'> | undefined;
  let ready = false;
  let rows: string[][] | undefined;
  const supervisorOptions: SupervisorOptions = {
    write,
    ...(options.color !== undefined ? { color: options.color } : {}),
    ...(options.backoffBaseMs !== undefined ? { backoffBaseMs: options.backoffBaseMs } : {}),
    ...(options.backoffMaxMs !== undefined ? { backoffMaxMs: options.backoffMaxMs } : {}),
    onChange: () => saveState(),
  };
  const supervisor = new Supervisor(supervisorOptions);
  const note = (line: string): void => supervisor.log('trellis', line);
  const saveState = (): void => {
    if (!state) return;
    const processes = supervisor.status().map((s) => ({ name: s.name, pid: s.pid, state: s.state, restarts: s.restarts }));
    writeState(meshDir, { ...state, ready, processes, ...(rows ? { rows } : {}) });
  };

  for (const problem of manifest.problems) note(`mesh.yaml: ${problem}`);
  const plan = planPorts(manifest, options.portBase ?? manifest.portBase);
  const skipped: string[] = [];
  const taken = await findTakenPorts(plan);
  const blocked = new Set<string>();
  for (const t of taken) {
    if (t.owner === 'dashboard') {
      note(`port taken: ${describeTakenPort(t)}; the mesh starts without the dashboard`);
      continue;
    }
    if (t.owner === 'control') throw new Error(`control plane: ${t.role} port ${t.port} is ${t.reason}; choose another block with --port-base`);
    note(`port taken: ${describeTakenPort(t)}${t.role === 'gateway listener' ? ' (the gateway starts, that listener will fail)' : '; left out of the mesh'}`);
    if (t.role !== 'gateway listener') blocked.add(t.owner);
  }
  for (const name of blocked) skipped.push(`${name}: a port of its block is taken`);

  const dotDir = stateDir(meshDir);
  mkdirSync(join(dotDir, 'bootstrap'), { recursive: true });
  const sources = [...manifest.config];
  for (const cert of manifest.certificates) {
    const result = ensureCertificate(cert);
    if (result.ok) {
      if (result.created) note(`made a self-signed certificate ${cert.cert} for ${cert.hosts.join(', ')}`);
      sources.push(...cert.config);
    } else {
      note(`HTTPS skipped: ${result.reason}; not loading ${cert.config.join(', ')}`);
    }
  }
  // --isolated: the pods first, so the registry can name their addresses and the control plane listen on the bridge.
  let network: PodNetwork | undefined;
  if (options.isolated) {
    const unavailable = isolatedUnavailable();
    if (unavailable) throw new Error(unavailable);
    const podWorkloads = manifest.workloads.filter((w) => w.sidecar && !blocked.has(w.name));
    // Service names resolve through each sidecar's DNS proxy (auto-allocated VIPs for the generated ServiceEntries).
    network = createPodNetwork(podWorkloads.map((w) => w.name), CLI);
    note(`--isolated: ${network.pods.size} pods on ${network.gatewayIp}/24 (bridge trellis0): ${[...network.pods.values()].map((p) => `${p.name} ${p.ip}`).join(', ')}`);
  }
  const controlHost = network?.gatewayIp ?? '127.0.0.1';
  const configDir = join(dotDir, 'config');
  const podEndpoints = network ? new Map([...network.pods.values()].map((p) => [p.name, p.ip])) : undefined;
  const written = writeConfigDir(configDir, manifest, sources, plan, blocked, podEndpoints);
  for (const n of written.notes) note(n);

  // The control plane runs in this process: it is the supervisor's first dependency, and its logs join the others'.
  const { startControlPlane } = await import('../control/server/main.js');
  // The CA's self-signed root lives in the mesh's state dir, so restarts keep the identities' trust anchor.
  const caDir = join(dotDir, 'ca');
  const trustBundle = join(caDir, 'trust-bundle.pem');
  const controlOptions: ControlPlaneOptions = {
    configDir,
    xdsAddress: `${controlHost}:${plan.control.xds}`,
    monitoringAddress: `127.0.0.1:${plan.control.monitoring}`,
    mesh: {
      outboundTrafficPolicy: manifest.mesh.outboundTrafficPolicy,
      ...(manifest.mesh.pathNormalization ? { pathNormalization: { normalization: manifest.mesh.pathNormalization } } : {}),
      ...(manifest.mesh.extensionProviders ? { extensionProviders: manifest.mesh.extensionProviders } : {}),
      ...(manifest.mesh.accessLogFile ? { accessLogFile: manifest.mesh.accessLogFile } : {}),
      ...(manifest.mesh.accessLogEncoding ? { accessLogEncoding: manifest.mesh.accessLogEncoding } : {}),
      ...(manifest.mesh.accessLogFormat ? { accessLogFormat: manifest.mesh.accessLogFormat } : {}),
      ...(manifest.mesh.defaultAccessLogProviders ? { defaultProviders: { accessLogging: manifest.mesh.defaultAccessLogProviders } } : {}),
    },
    secureXds: {
      address: `${controlHost}:${plan.control.secureXds}`,
      selfSignedDir: caDir,
      rootCertOut: trustBundle,
      ...(manifest.mesh.workloadCertTtlSeconds ? { workloadCertTtlMs: manifest.mesh.workloadCertTtlSeconds * 1000 } : {}),
    },
    logger: { info: (m) => supervisor.log('control', m), warn: (m) => supervisor.log('control', m) },
  };
  let control: ControlPlane | undefined;
  try {
    control = await startControlPlane(controlOptions);
  } catch (err) {
    network?.close();
    throw err;
  }
  const firstControl = control;
  mkdirSync(join(dotDir, 'tokens'), { recursive: true, mode: 0o700 });
  /** Each agent's identity, so a restarted control plane (new in-memory tokens) can issue its token file again. */
  const identities = new Map<string, { namespace: string; serviceAccount: string }>();
  const writeToken = (name: string, namespace: string, serviceAccount: string): string => {
    const tokenFile = join(dotDir, 'tokens', name);
    writeFileSync(tokenFile, `${(control ?? firstControl).tokens!.issue(namespace, serviceAccount)}\n`, { mode: 0o600 });
    chmodSync(tokenFile, 0o600);
    return tokenFile;
  };
  /**
   * pilot-agent's job for one proxy: a bootstrap token for its identity (what a Kubernetes service account token is
   * to Istio) and the flags that make `trellis proxy` fetch its certificate from the CA and serve it over SDS.
   */
  const agentArgs = (name: string, namespace: string, serviceAccount: string, sdsPort: number): string[] => {
    identities.set(name, { namespace, serviceAccount });
    const tokenFile = writeToken(name, namespace, serviceAccount);
    return [
      '--ca-address', `${controlHost}:${firstControl.secureXdsPort}`,
      '--ca-root-cert', trustBundle,
      '--ca-token-file', tokenFile,
      '--sds-port', String(sdsPort),
      ...(manifest.mesh.workloadCertTtlSeconds ? ['--cert-ttl', String(manifest.mesh.workloadCertTtlSeconds)] : []),
    ];
  };
  state = {
    supervisorPid: process.pid,
    startedAt: new Date().toISOString(),
    manifest: manifest.file,
    configDir,
    monitoringPort: firstControl.monitoringPort,
    xdsPort: firstControl.xdsPort,
  };
  saveState();

  const members: MeshMember[] = [];
  const node = process.execPath;
  for (const w of manifest.workloads) {
    if (blocked.has(w.name)) continue;
    const ports = plan.workloads.get(w.name)!;
    const appEnv: Record<string, string> = { PORT: String(ports.app) };
    if (w.labels['version']) appEnv['SERVICE_VERSION'] = w.labels['version'];
    const processes: string[] = [];
    let nodeId: string | undefined;
    const pod = network?.pods.get(w.name);
    // In a pod the application listens on its service port and calls services by name; capture does the rest.
    if (pod && w.service) appEnv['PORT'] = String(w.service.port);
    const inPod = (command: string, args: readonly string[], asProxy = false): { command: string; args: string[] } =>
      pod && network ? network.wrap(pod, command, args, asProxy) : { command, args: [...args] };
    if (w.sidecar && ports.outbound !== undefined && ports.inbound !== undefined && ports.admin !== undefined) {
      const bootstrapOptions = {
        type: 'sidecar' as const,
        name: w.name,
        namespace: w.namespace,
        labels: w.labels,
        serviceAccount: w.serviceAccount,
        adminPort: ports.admin,
        xdsPort: firstControl.xdsPort,
        sdsPort: ports.sds!,
        // Captured mode in a pod (virtualOutbound/virtualInbound); explicit mode (HTTP_PROXY) on the loopback.
        ...(pod
          ? { ip: pod.ip, xdsHost: controlHost }
          : { explicitProxyPort: ports.outbound, inboundPorts: w.service ? [{ inbound: ports.inbound, app: ports.app }] : [] }),
        ...(w.locality ? { locality: w.locality } : {}),
      };
      nodeId = proxyNodeId(bootstrapOptions);
      const bootstrap = join(dotDir, 'bootstrap', `${w.name}.yaml`);
      writeFileSync(bootstrap, proxyBootstrapYaml(bootstrapOptions));
      const agent = agentArgs(w.name, w.namespace, w.serviceAccount, ports.sds!);
      const scrape = prometheusAnnotationsEnv(w, ports.app);
      supervisor.start({
        name: `${w.name}/sidecar`,
        ...inPod(node, [CLI, 'proxy', '-c', bootstrap, '--drain-time-s', String(PROXY_DRAIN_S), ...SIDECAR_TERMINATION_ARGS, ...agent, '--status-port', String(ports.status), ...(pod ? POD_DNS_ARGS : [])], true),
        cwd: meshDir,
        ...(scrape ? { env: { [PROMETHEUS_ANNOTATIONS_ENV]: scrape } } : {}),
      });
      processes.push(`${w.name}/sidecar`);
      if (!pod) appEnv['HTTP_PROXY'] = `http://127.0.0.1:${ports.outbound}`;
    }
    const isScript = w.command.endsWith('.js') || w.command.endsWith('.mjs');
    supervisor.start({
      name: w.name,
      ...inPod(isScript ? node : w.command, isScript ? [w.command, ...w.args] : [...w.args]),
      env: { ...appEnv, ...w.env },
      cwd: meshDir,
    });
    processes.push(w.name);
    members.push({
      name: w.name,
      kind: w.sidecar ? 'workload' : 'external',
      namespace: w.namespace,
      ...(nodeId ? { nodeId } : {}),
      appPort: pod && w.service ? w.service.port : ports.app,
      ...(w.sidecar ? { adminPort: ports.admin } : {}),
      ...(w.sidecar && !pod ? { outboundPort: ports.outbound, inboundPort: ports.inbound } : {}),
      ...(pod ? { pod } : {}),
      processes,
    });
  }
  for (const g of manifest.gateways) {
    const ports = plan.gateways.get(g.name)!;
    const bootstrapOptions = { type: 'router' as const, name: g.name, namespace: g.namespace, labels: g.labels, serviceAccount: g.serviceAccount, adminPort: ports.admin, xdsHost: controlHost, xdsPort: firstControl.xdsPort, sdsPort: ports.sds };
    const bootstrap = join(dotDir, 'bootstrap', `${g.name}.yaml`);
    writeFileSync(bootstrap, proxyBootstrapYaml(bootstrapOptions));
    const agent = agentArgs(g.name, g.namespace, g.serviceAccount, ports.sds);
    supervisor.start({ name: g.name, command: node, args: [CLI, 'proxy', '-c', bootstrap, '--drain-time-s', String(PROXY_DRAIN_S), ...agent, '--status-port', String(ports.status)], cwd: meshDir });
    members.push({ name: g.name, kind: 'gateway', namespace: g.namespace, nodeId: proxyNodeId(bootstrapOptions), adminPort: ports.admin, listenerPorts: ports.listeners, processes: [g.name] });
  }

  const syncz = async (): Promise<Map<string, Record<string, { state: string; nack?: { message: string } }>>> => {
    const body = await httpGet(firstControl.monitoringPort, '/debug/syncz').catch(() => undefined);
    const out = new Map<string, Record<string, { state: string; nack?: { message: string } }>>();
    if (!body || body.status !== 200) return out;
    for (const entry of JSON.parse(body.text) as Array<{ proxy: string; types: Record<string, { state: string; nack?: { message: string } }> }>) out.set(entry.proxy, entry.types);
    return out;
  };

  const memberReady = async (m: MeshMember, sync: Map<string, Record<string, { state: string }>>): Promise<boolean> => {
    // A pod's admin and application listen on its own loopback: asked from inside; everyone else's on ours.
    const { pod } = m;
    const readyStatus = (port: number): Promise<number | undefined> => (pod ? Promise.resolve(podHttpStatus(pod, port, '/ready')) : httpGet(port, '/ready').then((r) => r.status, () => undefined));
    const accepts = (port: number): Promise<boolean> => (pod ? Promise.resolve(podCanConnect(pod, port)) : canConnect(port));
    if (m.adminPort !== undefined) {
      if ((await readyStatus(m.adminPort)) !== 200) return false;
      const types = sync.get(m.nodeId ?? '');
      if (!types || !Object.values(types).every((t) => t.state === 'SYNCED' || t.state === 'IGNORED')) return false;
    }
    return m.appPort === undefined || accepts(m.appPort);
  };

  // The dashboard (docs/observability.md): scrapes every proxy's admin /stats/prometheus and the control plane's
  // debug endpoints, served from this process on block 0's fourth port. A failure only costs the page.
  let dashboard: { readonly url: string; close(): Promise<void> } | undefined;
  if (!taken.some((t) => t.owner === 'dashboard')) {
    try {
      const { MeshSource } = await import('../dashboard/mesh-source.js');
      const { startDashboardServer } = await import('../dashboard/dashboard-server.js');
      // Pods' admin ports are on their own loopback, out of the dashboard's reach.
      const proxyAdminUrls = members.flatMap((m) => (m.adminPort !== undefined && !m.pod ? [`http://127.0.0.1:${m.adminPort}`] : []));
      dashboard = await startDashboardServer(new MeshSource({ monitoringUrl: `http://127.0.0.1:${firstControl.monitoringPort}`, proxyAdminUrls }), { port: plan.control.dashboard });
    } catch (err) {
      note(`dashboard not started: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Workloads scaled down (stopWorkload): left out of the registry until startWorkload. */
  const scaledDown = new Set<string>();
  /** Workloads scaling up (startWorkload): their sidecar gets its inbound listener before their endpoint is published. */
  const warming = new Set<string>();
  const writeRegistryNow = (): void => writeRegistry(configDir, manifest, plan, { skip: new Set([...blocked, ...scaledDown]), warming }, podEndpoints);
  /** The endpoint other proxies route to: the sidecar's inbound port on 127.0.0.1, or (--isolated) the pod's service port. */
  const endpointOf = (m: MeshMember): string => {
    const podIp = podEndpoints?.get(m.name);
    const w = manifest.workloads.find((x) => x.name === m.name);
    return podIp && w?.service ? `${podIp}:${w.service.port}` : `127.0.0.1:${m.inboundPort}`;
  };
  const workloadMember = (name: string): MeshMember => {
    const m = members.find((x) => x.name === name && x.kind === 'workload');
    if (!m) throw new Error(`no workload ${name} with a sidecar in this mesh (have ${members.filter((x) => x.kind === 'workload').map((x) => x.name).join(', ')})`);
    return m;
  };
  /** Whether each other running proxy's /clusters lists (or no longer lists) `address` as a host. */
  const othersSee = async (except: string, address: string, listed: boolean): Promise<boolean> => {
    const running = new Set(supervisor.status().filter((s) => s.state === 'running').map((s) => s.name));
    for (const m of members) {
      if (m.name === except || m.adminPort === undefined) continue;
      if (!running.has(m.kind === 'gateway' ? m.name : `${m.name}/sidecar`)) continue;
      const page = await httpGet(m.adminPort, '/clusters').catch(() => undefined);
      if (!page || page.status !== 200) return false;
      if (page.text.includes(`::${address}::`) !== listed) return false;
    }
    return true;
  };
  const until = async (what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() >= deadline) {
        note(`${what}: not within ${timeoutMs / 1000} s; going on`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  let stopped: Promise<void> | undefined;
  // One control-plane transition at a time: a start waits for a stop in progress, and the reverse.
  let transition: Promise<void> = Promise.resolve();
  const mesh: LocalMesh = {
    manifest,
    plan,
    configDir,
    controlHost,
    members,
    get control() {
      return control ?? firstControl;
    },
    stopControlPlane() {
      return (transition = transition.then(async () => {
        if (!control) return;
        const running = control;
        control = undefined;
        note('stopping the control plane; proxies keep serving their last config');
        await running.close();
      }));
    },
    startControlPlane() {
      return (transition = transition.then(async () => {
        if (control || stopped) return;
        control = await startControlPlane(controlOptions);
        // The new CA knows none of the old tokens: agents that start from now on (a restarted proxy) need new ones.
        for (const [name, id] of identities) writeToken(name, id.namespace, id.serviceAccount);
        note('control plane started again');
      }));
    },
    skipped,
    ...(dashboard ? { dashboardUrl: dashboard.url } : {}),
    async waitReady(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const sync = await syncz();
        const states = await Promise.all(members.map((m) => memberReady(m, sync)));
        const waiting = members.filter((_, i) => !states[i]).map((m) => m.name);
        if (waiting.length === 0 || Date.now() >= deadline) {
          ready = true;
          saveState();
          return waiting;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async statusTable() {
      const sync = await syncz();
      const processes = new Map(supervisor.status().map((s) => [s.name, s]));
      const table: string[][] = [];
      for (const m of members) {
        const procs = m.processes.map((p) => processes.get(p)).filter((p) => p !== undefined);
        const procText = procs.map((p) => `${p.name.endsWith('/sidecar') ? 'proxy' : m.kind === 'gateway' ? 'proxy' : 'app'} ${p.state}${p.restarts ? ` (${p.restarts} restarts, last ${p.lastExit})` : ''}`).join(', ');
        let syncText = '-';
        if (m.nodeId) {
          const types = sync.get(m.nodeId);
          if (!types) syncText = 'NOT CONNECTED';
          else {
            const bad = Object.entries(types).filter(([, t]) => t.state !== 'SYNCED' && t.state !== 'IGNORED');
            syncText = bad.length === 0 ? 'SYNCED' : bad.map(([type, t]) => `${type} ${t.state}`).join(', ');
          }
        }
        table.push([
          m.name,
          m.kind,
          m.pod && m.appPort !== undefined ? `${m.pod.ip}:${m.appPort}` : m.appPort !== undefined ? String(m.appPort) : m.listenerPorts?.join(',') ?? '-',
          m.outboundPort !== undefined ? `http://127.0.0.1:${m.outboundPort}` : '-',
          m.inboundPort !== undefined ? String(m.inboundPort) : '-',
          m.adminPort !== undefined ? String(m.adminPort) : '-',
          procText,
          syncText,
        ]);
      }
      rows = table;
      saveState();
      return formatTable(STATUS_HEADER, table);
    },
    async stopWorkload(name) {
      const m = workloadMember(name);
      scaledDown.add(name);
      writeRegistryNow();
      note(`scaling ${name} down: its endpoint left the registry`);
      const address = endpointOf(m);
      await until(`scaling ${name} down: the other proxies dropping ${address}`, () => othersSee(name, address, false), ENDPOINT_PROPAGATION_MS);
      note(`scaling ${name} down: no proxy routes to ${address}; draining its sidecar, then stopping the application`);
      await supervisor.stopProcess(`${name}/sidecar`);
      await supervisor.stopProcess(name);
      saveState();
    },
    async startWorkload(name) {
      const m = workloadMember(name);
      const address = endpointOf(m);
      // Kubernetes' order: the workload exists (its sidecar builds its inbound listener) before its endpoint is ready.
      scaledDown.delete(name);
      warming.add(name);
      writeRegistryNow();
      supervisor.startProcess(`${name}/sidecar`);
      supervisor.startProcess(name);
      // A local sidecar binds its inbound port itself (with --isolated, capture reaches its virtualInbound listener).
      const inboundBound = async (): Promise<boolean> =>
        podEndpoints !== undefined || (await httpGet(m.adminPort!, '/listeners').catch(() => undefined))?.text.includes(`::${address}`) === true;
      await until(`scaling ${name} up: its sidecar (inbound ${address} bound) and application ready`, async () => (await memberReady(m, await syncz())) && (await inboundBound()), 30_000);
      warming.delete(name);
      writeRegistryNow();
      await until(`scaling ${name} up: the other proxies learning ${address}`, () => othersSee(name, address, true), ENDPOINT_PROPAGATION_MS);
      note(`scaled ${name} up: ready, and its endpoint is back in the registry`);
      saveState();
    },
    stop() {
      return (stopped ??= (async () => {
        await dashboard?.close();
        await supervisor.stop();
        await transition;
        await control?.close();
        network?.close();
        state = undefined;
        removeState(meshDir);
      })());
    },
  };
  return mesh;
}

export const STATUS_HEADER = ['NAME', 'KIND', 'PORT', 'HTTP_PROXY', 'INBOUND', 'ADMIN', 'PROCESSES', 'SYNC'];

/** A GET on 127.0.0.1 with a short timeout. */
export function httpGet(port: number, path: string, timeoutMs = 2_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: timeoutMs, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}
