// The chaos suite's harness: a small local mesh, a load generator in its own process, and the faults to inject.
//
// How to write a scenario (see weights.test.ts and control-plane-restart.test.ts):
//   const mesh = await startChaosMesh('chaos-x-', { workloads: [client(), backend('backend-v1', 'backend', { version: 'v1' })], config: { 'dr.yaml': … } });
//   try {
//     const load = mesh.startLoad({ from: 'client', authority: 'backend:8080', rate: 200, durationMs: 10_000 });
//     await load.started;
//     … inject faults: mesh.applyConfig(), mesh.setBackend(), mesh.kill(), mesh.stopControlPlane() …
//     const report = summarize(await load.done);
//     console.log(`chaos: <scenario>: ${formatReport(report)}`);   // the lead copies these lines into the issue
//     assert.equal(report.failed, 0, formatReport(report));
//   } finally { await mesh.stop(); }
//
// The mesh is what `trellis up` runs (src/local/local-mesh.ts: startLocalMesh), started in the test process so a
// scenario can stop and start its control plane; every workload is backend.ts (answers 200 with its name, steerable
// on its application port) beside its own sidecar. Requests go load generator → the `from` workload's sidecar
// (its HTTP_PROXY port, absolute-form like an application's outbound call) → a backend's sidecar → the backend.
// Everything is bounded: start-up waits at most 60 s, load runs for its duration plus its timeout, and stop() kills
// whatever is left by PID and removes the temp dir. Keep one mesh per test file and each scenario to 10-25 s.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startLocalMesh, type LocalMesh, type MeshMember } from '../../../src/local/local-mesh.js';
import { isAlive, readState } from '../../../src/local/state-file.js';
import { freePortBase } from '../trellis-up.js';
import type { LoadMessage, LoadOptions, LoadRecord } from './load-generator.js';

const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));
const LOAD_GENERATOR = fileURLToPath(new URL('./load-generator.js', import.meta.url));

/** One workload of a chaos mesh; every one runs backend.ts (named `name`, CHAOS_NAME) beside its own sidecar. */
export interface ChaosWorkload {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The service it is an endpoint of; none for a pure client. */
  readonly service?: { readonly host: string; readonly port: number };
  /** More environment for backend.ts (CHAOS_FAIL_RATE, CHAOS_HANG). */
  readonly env?: Readonly<Record<string, string>>;
  /** `region/zone/subzone` (manifest `locality`): its endpoint's locality and its proxy's node.locality. */
  readonly locality?: string;
}

/**
 * The calling workload (the load generator talks to its sidecar). It serves a service of its own name too, because
 * a local mesh's sidecar needs one (mesh.yaml: `service` is required with a sidecar); nothing calls it.
 */
export function client(name = 'client', extra: Partial<ChaosWorkload> = {}): ChaosWorkload {
  return { name, labels: { app: name }, service: { host: name, port: 8080 }, ...extra };
}

/** A workload serving `host:port` (default 8080), labelled app=host plus `labels`. */
export function backend(name: string, host: string, labels: Record<string, string> = {}, extra: Partial<ChaosWorkload> = {}): ChaosWorkload {
  return { name, labels: { app: host, ...labels }, service: { host, port: 8080 }, ...extra };
}

export interface ChaosMeshOptions {
  readonly workloads: readonly ChaosWorkload[];
  /** Istio YAML loaded at start (file name → text); change it live with applyConfig(). */
  readonly config?: Readonly<Record<string, string>>;
  /** The supervisor's restart delay for a process that exited (default 500 ms, as `trellis up`); raise it to keep a killed endpoint dead. */
  readonly restartBackoffMs?: number;
}

export interface LoadRun {
  /** The generator process is up and sending. */
  readonly started: Promise<void>;
  /** Every request's outcome, once the duration passed and nothing is in flight. */
  readonly done: Promise<LoadResult>;
  /** Ends the run early (done still resolves with what was sent). */
  stop(): void;
}

export interface LoadResult {
  readonly records: readonly LoadRecord[];
  /** Requests due while maxInFlight were in flight: not sent (a sign the mesh could not keep up). */
  readonly skipped: number;
}

export interface StartLoadOptions {
  /** The workload whose sidecar's outbound (HTTP_PROXY) port the requests enter. */
  readonly from: string;
  readonly authority: string;
  readonly path?: string;
  /** Default 100 requests per second (2 cores shared with the rest of the suite: a rate the mesh keeps up with). */
  readonly rate?: number;
  readonly durationMs: number;
  /**
   * Default 15 s: a request is lost when it gets no answer, not when a loaded machine answers it slowly (p99 and
   * skipped show slowness).
   */
  readonly timeoutMs?: number;
  /** Default 128. */
  readonly maxInFlight?: number;
}

export interface ChaosMesh {
  readonly dir: string;
  readonly local: LocalMesh;
  member(name: string): MeshMember;
  /** The PID of a supervised process (`backend-v1`, or `backend-v1/sidecar` for its proxy); throws when it is not running. */
  pid(processName: string): number;
  /** Signals a supervised process by PID (SIGKILL by default); the supervisor restarts it after restartBackoffMs. */
  kill(processName: string, signal?: NodeJS.Signals): void;
  /** Changes a backend's behaviour on its application port (backend.ts /__chaos: failRate, hang, exit). */
  setBackend(name: string, behaviour: { failRate?: number; hang?: boolean; exit?: number }): Promise<void>;
  /** Writes (atomically: temp file and rename) an Istio YAML file into the watched config dir. */
  applyConfig(file: string, yaml: string): void;
  removeConfig(file: string): void;
  /** Stops the control plane (its ports close, every xDS stream ends); the proxies keep their last config. */
  stopControlPlane(): Promise<void>;
  /** Starts it again with the same options and ports, from the same config dir. */
  startControlPlane(): Promise<void>;
  /** /debug/syncz: per proxy node id, each type's sync state (empty when the control plane is down). */
  syncStates(): Promise<Map<string, Record<string, string>>>;
  /** Polls syncz until every proxy has every type SYNCED (or IGNORED); resolves with the ms it took, rejects after timeoutMs. */
  waitAllSynced(timeoutMs: number): Promise<number>;
  /** A proxy's admin /stats as name → value (`filter` is Envoy's regex filter). */
  proxyStats(name: string, filter?: string): Promise<Map<string, number>>;
  /** A proxy's admin GET `path`, parsed as JSON. */
  proxyAdminJson(name: string, path: string): Promise<unknown>;
  startLoad(options: StartLoadOptions): LoadRun;
  /** The mesh's recent log lines (control plane, proxies, backends): print them when a scenario fails. */
  logTail(lines?: number): string;
  /** Stops everything it started, by PID, and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a mesh of `options.workloads` in a new temp dir on a free port block; resolves once every proxy is LIVE and SYNCED. */
export async function startChaosMesh(prefix: string, options: ChaosMeshOptions): Promise<ChaosMesh> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const configFiles: string[] = [];
  for (const [name, text] of Object.entries(options.config ?? {})) {
    writeFileSync(join(dir, name), text);
    configFiles.push(name);
  }
  const manifest = {
    config: configFiles,
    workloads: options.workloads.map((w) => ({
      name: w.name,
      labels: w.labels,
      serviceAccount: w.labels['app'] ?? w.name,
      command: BACKEND,
      env: { CHAOS_NAME: w.name, ...w.env },
      ...(w.service ? { service: { host: w.service.host, port: w.service.port, protocol: 'HTTP' } } : {}),
      ...(w.locality ? { locality: w.locality } : {}),
    })),
  };
  writeFileSync(join(dir, 'mesh.yaml'), stringify(manifest));

  const log: string[] = [];
  const write = (text: string): void => {
    for (const line of text.split('\n')) if (line !== '') log.push(line);
    if (log.length > 4_000) log.splice(0, log.length - 2_000);
    if (process.env['CHAOS_VERBOSE']) process.stdout.write(text);
  };
  const logTail = (lines = 80): string => log.slice(-lines).join('\n');
  const loads = new Set<ChildProcess>();
  let local: LocalMesh | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const child of loads) if (child.exitCode === null) child.kill('SIGKILL');
      try {
        await local?.stop();
      } finally {
        // Anything the supervisor could not stop: by PID.
        for (const p of readState(dir)?.processes ?? []) if (isAlive(p.pid)) process.kill(p.pid!, 'SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    })());

  try {
    const portBase = await freePortBase(dir);
    local = await startLocalMesh({
      dir,
      portBase,
      write,
      color: false,
      ...(options.restartBackoffMs !== undefined ? { backoffBaseMs: options.restartBackoffMs, backoffMaxMs: Math.max(options.restartBackoffMs, 30_000) } : {}),
    });
    if (local.manifest.problems.length > 0) throw new Error(`chaos mesh: mesh.yaml: ${local.manifest.problems.join('; ')}`);
    if (local.skipped.length > 0) throw new Error(`chaos mesh: left out: ${local.skipped.join('; ')}`);
    const waiting = await local.waitReady(60_000);
    if (waiting.length > 0) throw new Error(`chaos mesh: not ready in 60 s: ${waiting.join(', ')}\n${logTail()}`);
  } catch (err) {
    await stop();
    throw err;
  }
  const mesh = local;

  const member = (name: string): MeshMember => {
    const found = mesh.members.find((m) => m.name === name);
    if (!found) throw new Error(`chaos mesh: no workload ${name} (have ${mesh.members.map((m) => m.name).join(', ')})`);
    return found;
  };
  const pid = (processName: string): number => {
    const p = readState(dir)?.processes.find((s) => s.name === processName);
    if (!p?.pid || p.state !== 'running') throw new Error(`chaos mesh: process ${processName} is not running (${p ? p.state : 'unknown'})`);
    return p.pid;
  };
  const syncStates = async (): Promise<Map<string, Record<string, string>>> => {
    const out = new Map<string, Record<string, string>>();
    const body = await httpRequest('GET', mesh.plan.control.monitoring, '/debug/syncz').catch(() => undefined);
    if (!body || body.status !== 200) return out;
    for (const entry of JSON.parse(body.text) as Array<{ proxy: string; types: Record<string, { state: string }> }>) {
      out.set(entry.proxy, Object.fromEntries(Object.entries(entry.types).map(([type, t]) => [type, t.state])));
    }
    return out;
  };
  const adminPort = (name: string): number => {
    const port = member(name).adminPort;
    if (port === undefined) throw new Error(`chaos mesh: ${name} has no proxy`);
    return port;
  };

  return {
    dir,
    local: mesh,
    member,
    pid,
    kill(processName, signal = 'SIGKILL') {
      process.kill(pid(processName), signal);
    },
    async setBackend(name, behaviour) {
      const query = new URLSearchParams();
      if (behaviour.failRate !== undefined) query.set('failRate', String(behaviour.failRate));
      if (behaviour.hang !== undefined) query.set('hang', behaviour.hang ? '1' : '0');
      if (behaviour.exit !== undefined) query.set('exit', String(behaviour.exit));
      const answer = await httpRequest('POST', member(name).appPort!, `/__chaos?${query}`);
      if (answer.status !== 200) throw new Error(`chaos mesh: ${name} refused ${query}: ${answer.status} ${answer.text}`);
    },
    applyConfig(file, yaml) {
      const path = join(mesh.configDir, file);
      // The watcher must never read half a file: write beside it (a name the store skips), then rename.
      writeFileSync(`${path}.tmp`, yaml);
      renameSync(`${path}.tmp`, path);
    },
    removeConfig(file) {
      rmSync(join(mesh.configDir, file), { force: true });
    },
    stopControlPlane: () => mesh.stopControlPlane(),
    startControlPlane: () => mesh.startControlPlane(),
    syncStates,
    async waitAllSynced(timeoutMs) {
      const begin = Date.now();
      const proxies = mesh.members.flatMap((m) => (m.nodeId ? [m.nodeId] : []));
      let last = new Map<string, Record<string, string>>();
      while (Date.now() - begin < timeoutMs) {
        last = await syncStates();
        const synced = proxies.every((id) => {
          const types = last.get(id);
          return types !== undefined && Object.values(types).every((s) => s === 'SYNCED' || s === 'IGNORED');
        });
        if (synced) return Date.now() - begin;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`chaos mesh: proxies not all SYNCED within ${timeoutMs} ms: ${JSON.stringify(Object.fromEntries(last))}`);
    },
    async proxyStats(name, filter) {
      const answer = await httpRequest('GET', adminPort(name), `/stats${filter ? `?filter=${encodeURIComponent(filter)}` : ''}`);
      const stats = new Map<string, number>();
      for (const line of answer.text.split('\n')) {
        const colon = line.lastIndexOf(': ');
        if (colon > 0) stats.set(line.slice(0, colon), Number(line.slice(colon + 2)));
      }
      return stats;
    },
    async proxyAdminJson(name, path) {
      const answer = await httpRequest('GET', adminPort(name), path);
      if (answer.status !== 200) throw new Error(`chaos mesh: ${name} admin ${path}: ${answer.status} ${answer.text.slice(0, 200)}`);
      return JSON.parse(answer.text) as unknown;
    },
    startLoad(o) {
      const port = member(o.from).outboundPort;
      if (port === undefined) throw new Error(`chaos mesh: ${o.from} has no sidecar to send through`);
      const loadOptions: LoadOptions = {
        port,
        authority: o.authority,
        path: o.path ?? '/',
        absoluteForm: true,
        rate: o.rate ?? 100,
        durationMs: o.durationMs,
        timeoutMs: o.timeoutMs ?? 15_000,
        maxInFlight: o.maxInFlight ?? 128,
      };
      return runLoadGenerator(loadOptions, loads);
    },
    logTail,
    stop,
  };
}

/** Forks the load generator with `options`; the child is tracked in `children` so stop() can kill it. */
function runLoadGenerator(options: LoadOptions, children: Set<ChildProcess>): LoadRun {
  const child = fork(LOAD_GENERATOR, ['child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  let markStarted: () => void = () => undefined;
  let failStart: (err: Error) => void = () => undefined;
  const started = new Promise<void>((resolve, reject) => {
    markStarted = resolve;
    failStart = reject;
  });
  const done = new Promise<LoadResult>((resolve, reject) => {
    // Bounded: the run's duration, then its request timeout, then a margin for the report to travel.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`load generator: no report ${options.durationMs + options.timeoutMs + 15_000} ms after start`));
    }, options.durationMs + options.timeoutMs + 15_000);
    child.on('message', (m: LoadMessage) => {
      if (m.type === 'started') markStarted();
      else if (m.type === 'done') {
        clearTimeout(timer);
        resolve({ records: m.records, skipped: m.skipped });
      }
    });
    child.once('exit', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      const err = new Error(`load generator exited (${signal ?? code}) before its report`);
      failStart(err);
      reject(err);
    });
  });
  // A rejection nobody awaits yet must not crash the test process; callers still see it through `done`.
  done.catch(() => undefined);
  started.catch(() => undefined);
  child.send(options);
  return { started, done, stop: () => void (child.connected && child.send({ type: 'stop' })) };
}

export interface LoadWindow {
  readonly fromMs: number;
  readonly total: number;
  readonly failed: number;
  readonly byBackend: Readonly<Record<string, number>>;
}

export interface LoadReport {
  readonly total: number;
  readonly ok: number;
  readonly failed: number;
  /** Failures by kind: `status-503`, `timeout`, `ECONNRESET`, … */
  readonly failedByKind: Readonly<Record<string, number>>;
  /** Successful answers by the backend that gave them (x-chaos-backend). */
  readonly byBackend: Readonly<Record<string, number>>;
  /** Start time (ms into the run) of the first and last failed request; -1 when none failed. */
  readonly firstFailureMs: number;
  readonly lastFailureMs: number;
  readonly skipped: number;
  readonly p99Ms: number;
  /** Per `windowMs` of start time: totals, failures and who answered. */
  readonly windows: readonly LoadWindow[];
}

/** Counts a run's outcomes: totals, failures by kind, answers per backend, and the same per time window. */
export function summarize(result: LoadResult, windowMs = 1_000): LoadReport {
  const failedByKind: Record<string, number> = {};
  const byBackend: Record<string, number> = {};
  const windows: Array<{ fromMs: number; total: number; failed: number; byBackend: Record<string, number> }> = [];
  let failed = 0;
  let firstFailureMs = -1;
  let lastFailureMs = -1;
  const latencies: number[] = [];
  for (const [startMs, latencyMs, status, error, answeredBy] of result.records) {
    const index = Math.floor(startMs / windowMs);
    while (windows.length <= index) windows.push({ fromMs: windows.length * windowMs, total: 0, failed: 0, byBackend: {} });
    const window = windows[index]!;
    window.total++;
    latencies.push(latencyMs);
    if (status === 200 && error === '') {
      byBackend[answeredBy] = (byBackend[answeredBy] ?? 0) + 1;
      window.byBackend[answeredBy] = (window.byBackend[answeredBy] ?? 0) + 1;
      continue;
    }
    failed++;
    window.failed++;
    failedByKind[error || `status-${status}`] = (failedByKind[error || `status-${status}`] ?? 0) + 1;
    if (firstFailureMs === -1 || startMs < firstFailureMs) firstFailureMs = startMs;
    if (startMs > lastFailureMs) lastFailureMs = startMs;
  }
  latencies.sort((a, b) => a - b);
  return {
    total: result.records.length,
    ok: result.records.length - failed,
    failed,
    failedByKind,
    byBackend,
    firstFailureMs,
    lastFailureMs,
    skipped: result.skipped,
    p99Ms: latencies.length > 0 ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]! : 0,
    windows,
  };
}

/** One line for the log and assertion messages: totals, failures by kind, who answered, p99. */
export function formatReport(r: LoadReport): string {
  const kinds = Object.entries(r.failedByKind).map(([k, n]) => `${k}=${n}`).join(' ');
  const backends = Object.entries(r.byBackend).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k}=${n}`).join(' ');
  const when = r.failed > 0 ? ` started ${r.firstFailureMs}-${r.lastFailureMs} ms` : '';
  return `${r.total} requests, ${r.failed} failed (${(r.total > 0 ? (100 * r.failed) / r.total : 0).toFixed(3)}%)${kinds ? ` [${kinds}${when}]` : ''}, ${r.skipped} skipped, answered by ${backends || 'nobody'}, p99 ${r.p99Ms} ms`;
}

function httpRequest(method: string, port: number, path: string, timeoutMs = 3_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, timeout: timeoutMs, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
