// The local mesh manifest (`mesh.yaml`): workloads, gateways, Istio config dirs and mesh options, read and validated with every problem named.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { TrellisError } from '../common/errors.js';
import { PATH_NORMALIZATION_MODES, type PathNormalizationMode } from '../control/model/mesh-config.js';
import { parseDurationMs } from '../api/duration.js';
import { parseExtensionProviders } from '../control/model/extension-providers.js';
import type { ExtensionProvider } from '../control/model/mesh-config.js';

export const MANIFEST_FILE = 'mesh.yaml';

/** One process of the mesh: the application, started beside its own sidecar unless `sidecar: false`. */
export interface WorkloadSpec {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** Absolute path of a `.js` file (run with this Node) or a program name / path. */
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The mesh service it serves: short host name (`reviews`) and service port (9080). */
  readonly service?: { readonly host: string; readonly port: number; readonly protocol: string };
  /** `false`: no sidecar, no registry entry (e.g. a stand-in for a host outside the mesh). */
  readonly sidecar: boolean;
  /** A fixed application port instead of one from the workload's port block. */
  readonly port?: number;
  /**
   * Pod annotations; the local mesh reads Istio's `prometheus.io/scrape|port|path` (metrics merging: the sidecar's
   * agent serves the app's metrics with the proxy's on its status port).
   */
  readonly annotations: Readonly<Record<string, string>>;
  /**
   * `region`, `region/zone` or `region/zone/subzone`: its WorkloadEntry's `locality` (so its endpoint's locality in
   * EDS) and its sidecar's `node.locality` (so the locality its own calls are balanced from).
   */
  readonly locality?: string;
}

export interface GatewaySpec {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** The ports its Gateways' servers bind (checked free before start). */
  readonly ports: readonly number[];
}

/** A self-signed certificate made with openssl at first start; `config` dirs that need it load only when it exists. */
export interface CertificateSpec {
  readonly cert: string;
  readonly key: string;
  readonly hosts: readonly string[];
  readonly config: readonly string[];
}

export interface MeshManifest {
  /** The manifest's file and directory: relative paths in it resolve against the directory. */
  readonly file: string;
  readonly dir: string;
  /** First port of the first block (`--port-base` overrides). */
  readonly portBase: number;
  readonly config: readonly string[];
  readonly mesh: {
    readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
    readonly pathNormalization?: PathNormalizationMode;
    /** Lifetime of the workload certificates the control plane's CA issues (Istio's DEFAULT_WORKLOAD_CERT_TTL, 24 h). */
    readonly workloadCertTtlSeconds?: number;
    /** Istio's meshConfig extensionProviders: the external authorizers CUSTOM AuthorizationPolicies name. */
    readonly extensionProviders?: readonly ExtensionProvider[];
    /** Istio's meshConfig accessLogFile / accessLogEncoding / accessLogFormat and defaultProviders.accessLogging. */
    readonly accessLogFile?: string;
    readonly accessLogEncoding?: 'TEXT' | 'JSON';
    readonly accessLogFormat?: string;
    readonly defaultAccessLogProviders?: readonly string[];
  };
  readonly workloads: readonly WorkloadSpec[];
  readonly gateways: readonly GatewaySpec[];
  readonly certificates: readonly CertificateSpec[];
  /** Addresses to show the user once the mesh is ready (`http://127.0.0.1:8080/productpage`). */
  readonly urls: readonly string[];
  /**
   * Problems that did not stop the rest: a workload or gateway with a problem (unknown field, missing command, a
   * name used twice) is left out and named here, so the rest of the mesh still starts.
   */
  readonly problems: readonly string[];
}

export const DEFAULT_PORT_BASE = 15100;

/** A manifest that cannot be used at all (unreadable, invalid YAML, not a mapping); each detail names the file and field path. */
export class ManifestError extends TrellisError {
  readonly details: readonly string[];
  constructor(details: readonly string[]) {
    super('TRELLIS_MANIFEST_INVALID', details.join('\n'));
    this.details = details;
  }
}

type Obj = Record<string, unknown>;

class Checker {
  readonly problems: string[] = [];
  constructor(private readonly source: string) {}

  add(path: string, message: string): void {
    this.problems.push(`${this.source}: ${path}: ${message}`);
  }

  object(value: unknown, path: string, allowed: readonly string[]): Obj | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.add(path, `expected a mapping, got ${describe(value)}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.add(path ? `${path}.${key}` : key, `unknown field (expected one of ${allowed.join(', ')})`);
    }
    return value as Obj;
  }

  string(value: unknown, path: string, required = false): string | undefined {
    if (value === undefined || value === null) {
      if (required) this.add(path, 'required');
      return undefined;
    }
    if (typeof value !== 'string' || value === '') {
      this.add(path, `expected a non-empty string, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  port(value: unknown, path: string, required = false): number | undefined {
    if (value === undefined || value === null) {
      if (required) this.add(path, 'required');
      return undefined;
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
      this.add(path, `expected a port number 1-65535, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  strings(value: unknown, path: string): string[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.add(path, `expected a list of strings, got ${describe(value)}`);
      return [];
    }
    const out: string[] = [];
    value.forEach((v, i) => {
      if (typeof v === 'string' || typeof v === 'number') out.push(String(v));
      else this.add(`${path}[${i}]`, `expected a string, got ${describe(v)}`);
    });
    return out;
  }

  stringMap(value: unknown, path: string): Record<string, string> {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.add(path, `expected a mapping of strings, got ${describe(value)}`);
      return {};
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else this.add(`${path}.${k}`, `expected a string, got ${describe(v)}`);
    }
    return out;
  }

  list(value: unknown, path: string): unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.add(path, `expected a list, got ${describe(value)}`);
      return [];
    }
    return value;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** Istio's prometheus.io annotations: values the agent could not use are refused here rather than at scrape time. */
function checkPrometheusAnnotations(check: Checker, annotations: Readonly<Record<string, string>>, path: string): void {
  const scrape = annotations['prometheus.io/scrape'];
  if (scrape !== undefined && scrape !== 'true' && scrape !== 'false') check.add(`${path}.prometheus.io/scrape`, `expected "true" or "false", got ${JSON.stringify(scrape)}`);
  const port = annotations['prometheus.io/port'];
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) check.add(`${path}.prometheus.io/port`, `expected a port number 1-65535, got ${JSON.stringify(port)}`);
  const metricsPath = annotations['prometheus.io/path'];
  if (metricsPath !== undefined && !metricsPath.startsWith('/')) check.add(`${path}.prometheus.io/path`, `expected a path starting with /, got ${JSON.stringify(metricsPath)}`);
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PROTOCOLS = ['HTTP', 'HTTP2', 'GRPC', 'TCP'];

/** Reads `file` (or `<dir>/mesh.yaml`); throws ManifestError when nothing of it is usable, else lists problems in `problems`. */
export function loadManifest(fileOrDir: string): MeshManifest {
  const file = fileOrDir.endsWith('.yaml') || fileOrDir.endsWith('.yml') ? resolve(fileOrDir) : resolve(fileOrDir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ManifestError([`${file}: cannot read the mesh manifest (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  return parseManifest(text, file);
}

/** Parses and validates manifest text; `file` names it in messages and anchors relative paths. */
export function parseManifest(text: string, file: string): MeshManifest {
  const dir = dirname(file);
  const check = new Checker(file);
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) throw new ManifestError(doc.errors.map((e) => `${file}: invalid YAML: ${e.message}`));
  const value: unknown = doc.toJS();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ManifestError([`${file}: expected a mapping with workloads, gateways, config, mesh; got ${describe(value)}`]);
  const root = check.object(value, '', ['portBase', 'config', 'mesh', 'workloads', 'gateways', 'certificates', 'urls']) ?? {};
  const portBase = check.port(root['portBase'], 'portBase') ?? DEFAULT_PORT_BASE;
  const config = check.strings(root['config'], 'config').map((p) => abs(dir, p));
  const meshObj = check.object(root['mesh'], 'mesh', ['outboundTrafficPolicy', 'pathNormalization', 'workloadCertTtl', 'extensionProviders', 'accessLogFile', 'accessLogEncoding', 'accessLogFormat', 'defaultProviders']) ?? {};
  const parsedProviders = parseExtensionProviders(meshObj['extensionProviders'], 'mesh.extensionProviders');
  for (const problem of parsedProviders.problems) {
    const colon = problem.indexOf(': ');
    check.add(problem.slice(0, colon), problem.slice(colon + 2));
  }
  const extensionProviders = parsedProviders.providers;
  const accessLog = parseMeshAccessLog(meshObj, check);
  let workloadCertTtlSeconds: number | undefined;
  if (meshObj['workloadCertTtl'] !== undefined) {
    const ms = typeof meshObj['workloadCertTtl'] === 'string' ? parseDurationMs(meshObj['workloadCertTtl']) : undefined;
    if (ms !== undefined && ms >= 1000) workloadCertTtlSeconds = Math.round(ms / 1000);
    else check.add('mesh.workloadCertTtl', `expected a duration of at least 1s like 24h or 90s, got ${describe(meshObj['workloadCertTtl'])}`);
  }
  // Istio's meshConfig shape: pathNormalization: { normalization: BASE }.
  let pathNormalization: PathNormalizationMode | undefined;
  const normalizationObj = check.object(meshObj['pathNormalization'], 'mesh.pathNormalization', ['normalization']);
  if (normalizationObj && normalizationObj['normalization'] !== undefined) {
    const mode = normalizationObj['normalization'];
    if ((PATH_NORMALIZATION_MODES as readonly unknown[]).includes(mode)) pathNormalization = mode as PathNormalizationMode;
    else check.add('mesh.pathNormalization.normalization', `expected one of ${PATH_NORMALIZATION_MODES.join(', ')}, got ${describe(mode)}`);
  }
  let outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY' = 'ALLOW_ANY';
  const policy = meshObj['outboundTrafficPolicy'];
  if (policy !== undefined) {
    const mode = typeof policy === 'object' && policy !== null && !Array.isArray(policy) ? (policy as Obj)['mode'] : policy;
    if (mode === 'ALLOW_ANY' || mode === 'REGISTRY_ONLY') outboundTrafficPolicy = mode;
    else check.add('mesh.outboundTrafficPolicy', `expected ALLOW_ANY or REGISTRY_ONLY (or { mode: … }), got ${describe(mode)}`);
  }

  const names = new Map<string, string>();
  const unique = (name: string | undefined, path: string): void => {
    if (!name) return;
    const first = names.get(name);
    if (first) check.add(`${path}.name`, `duplicate name ${JSON.stringify(name)} (already used by ${first}); every workload and gateway needs its own name`);
    else names.set(name, path);
  };

  const workloads: WorkloadSpec[] = [];
  check.list(root['workloads'], 'workloads').forEach((raw, i) => {
    const path = `workloads[${i}]`;
    const before = check.problems.length;
    const w = check.object(raw, path, ['name', 'namespace', 'labels', 'annotations', 'serviceAccount', 'command', 'args', 'env', 'service', 'sidecar', 'port', 'locality']);
    if (!w) {
      if (raw === null || raw === undefined) check.add(path, 'expected a workload mapping');
      return;
    }
    const name = check.string(w['name'], `${path}.name`, true);
    if (name && !NAME.test(name)) check.add(`${path}.name`, `${JSON.stringify(name)} must be a DNS label (lower case letters, digits, '-')`);
    unique(name, path);
    const namespace = check.string(w['namespace'], `${path}.namespace`) ?? 'default';
    const command = check.string(w['command'], `${path}.command`, true);
    const serviceObj = check.object(w['service'], `${path}.service`, ['host', 'port', 'protocol']);
    let service: WorkloadSpec['service'];
    if (serviceObj) {
      const host = check.string(serviceObj['host'], `${path}.service.host`, true);
      const port = check.port(serviceObj['port'], `${path}.service.port`, true);
      const protocol = (check.string(serviceObj['protocol'], `${path}.service.protocol`) ?? 'HTTP').toUpperCase();
      if (!PROTOCOLS.includes(protocol)) check.add(`${path}.service.protocol`, `expected one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(protocol)}`);
      if (host && host.includes('.') ) check.add(`${path}.service.host`, `expected the short host name (e.g. "reviews"); the mesh name is <host>.<namespace>.svc.cluster.local`);
      if (host && port) service = { host, port, protocol };
    }
    const sidecar = w['sidecar'] === undefined ? true : w['sidecar'];
    if (typeof sidecar !== 'boolean') check.add(`${path}.sidecar`, `expected true or false, got ${describe(sidecar)}`);
    if (sidecar === true && !service && serviceObj === undefined) check.add(`${path}.service`, 'required for a workload with a sidecar (host and port of the service it serves)');
    const port = check.port(w['port'], `${path}.port`);
    const labels = check.stringMap(w['labels'], `${path}.labels`);
    const serviceAccount = check.string(w['serviceAccount'], `${path}.serviceAccount`) ?? 'default';
    const args = check.strings(w['args'], `${path}.args`);
    const env = check.stringMap(w['env'], `${path}.env`);
    const annotations = check.stringMap(w['annotations'], `${path}.annotations`);
    checkPrometheusAnnotations(check, annotations, `${path}.annotations`);
    const locality = check.string(w['locality'], `${path}.locality`);
    // Istio's WorkloadEntry rule: one to three non-empty parts.
    if (locality !== undefined && (locality.split('/').length > 3 || locality.split('/').some((part) => part === ''))) {
      check.add(`${path}.locality`, `expected region, region/zone or region/zone/subzone, got ${JSON.stringify(locality)}`);
    }
    if (!name || !command || check.problems.length > before) {
      check.add(path, `workload ${name ? JSON.stringify(name) : '(unnamed)'} left out of the mesh because of the problem(s) above`);
      return;
    }
    workloads.push({
      name,
      namespace,
      labels,
      serviceAccount,
      command: command.endsWith('.js') || command.includes('/') ? abs(dir, command) : command,
      args,
      env,
      ...(service ? { service } : {}),
      sidecar: sidecar !== false,
      ...(port !== undefined ? { port } : {}),
      annotations,
      ...(locality ? { locality } : {}),
    });
  });

  const gateways: GatewaySpec[] = [];
  check.list(root['gateways'], 'gateways').forEach((raw, i) => {
    const path = `gateways[${i}]`;
    const before = check.problems.length;
    const g = check.object(raw, path, ['name', 'namespace', 'labels', 'serviceAccount', 'ports']);
    if (!g) return;
    const name = check.string(g['name'], `${path}.name`, true);
    if (name && !NAME.test(name)) check.add(`${path}.name`, `${JSON.stringify(name)} must be a DNS label (lower case letters, digits, '-')`);
    unique(name, path);
    const labels = check.stringMap(g['labels'], `${path}.labels`);
    if (Object.keys(labels).length === 0) check.add(`${path}.labels`, 'required: the labels its Gateways select (e.g. istio: ingressgateway)');
    const ports: number[] = [];
    check.list(g['ports'], `${path}.ports`).forEach((p, j) => {
      const n = check.port(p, `${path}.ports[${j}]`, true);
      if (n) ports.push(n);
    });
    if (!name || check.problems.length > before) {
      check.add(path, `gateway ${name ? JSON.stringify(name) : '(unnamed)'} left out of the mesh because of the problem(s) above`);
      return;
    }
    gateways.push({ name, namespace: check.string(g['namespace'], `${path}.namespace`) ?? 'default', labels, serviceAccount: check.string(g['serviceAccount'], `${path}.serviceAccount`) ?? `${name}-service-account`, ports });
  });

  const certificates: CertificateSpec[] = [];
  check.list(root['certificates'], 'certificates').forEach((raw, i) => {
    const path = `certificates[${i}]`;
    const c = check.object(raw, path, ['cert', 'key', 'hosts', 'config']);
    if (!c) return;
    const cert = check.string(c['cert'], `${path}.cert`, true);
    const key = check.string(c['key'], `${path}.key`, true);
    if (!cert || !key) return;
    certificates.push({ cert: abs(dir, cert), key: abs(dir, key), hosts: check.strings(c['hosts'], `${path}.hosts`), config: check.strings(c['config'], `${path}.config`).map((p) => abs(dir, p)) });
  });

  if (workloads.length === 0 && gateways.length === 0) throw new ManifestError([...check.problems, `${file}: the mesh has no usable workload and no gateway`]);
  return { file, dir, portBase, config, mesh: { outboundTrafficPolicy, ...(pathNormalization ? { pathNormalization } : {}), ...(workloadCertTtlSeconds ? { workloadCertTtlSeconds } : {}), ...(extensionProviders.length > 0 ? { extensionProviders } : {}), ...accessLog }, workloads, gateways, certificates, urls: check.strings(root['urls'], 'urls'), problems: check.problems };
}

/** meshConfig accessLogFile, accessLogEncoding (TEXT or JSON), accessLogFormat and defaultProviders.accessLogging, as Istio spells them. */
function parseMeshAccessLog(mesh: Obj, check: Checker): Pick<MeshManifest['mesh'], 'accessLogFile' | 'accessLogEncoding' | 'accessLogFormat' | 'defaultAccessLogProviders'> {
  const out: { accessLogFile?: string; accessLogEncoding?: 'TEXT' | 'JSON'; accessLogFormat?: string; defaultAccessLogProviders?: string[] } = {};
  for (const key of ['accessLogFile', 'accessLogFormat'] as const) {
    const value = mesh[key];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value === 'string') out[key] = value;
    else check.add(`mesh.${key}`, `expected a string, got ${describe(value)}`);
  }
  const encoding = mesh['accessLogEncoding'];
  if (encoding === 'TEXT' || encoding === 'JSON') out.accessLogEncoding = encoding;
  else if (encoding !== undefined) check.add('mesh.accessLogEncoding', `expected TEXT or JSON, got ${describe(encoding)}`);
  const defaults = check.object(mesh['defaultProviders'], 'mesh.defaultProviders', ['accessLogging', 'tracing', 'metrics']);
  if (defaults && defaults['accessLogging'] !== undefined) out.defaultAccessLogProviders = check.strings(defaults['accessLogging'], 'mesh.defaultProviders.accessLogging');
  return out;
}

function abs(dir: string, path: string): string {
  return isAbsolute(path) ? path : join(dir, path);
}
