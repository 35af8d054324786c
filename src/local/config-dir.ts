// The config directory the local control plane watches: the mesh's Istio YAML copied in, plus ServiceEntries and WorkloadEntries generated for the manifest's workloads.
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import type { MeshManifest, WorkloadSpec } from './manifest.js';
import type { PortPlan } from './port-blocks.js';

/** Generated registry entries live here, under the watched directory; the file is rewritten on every `up`. */
export const GENERATED_SUBDIR = 'generated';

const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
/** The label a warming workload's WorkloadEntry carries instead of its own, so only its warm-up ServiceEntry selects it. */
export const WARMING_LABEL = 'trellis.io/warming';

/** What the registry leaves out or holds back. */
export interface RegistryState {
  /** Workloads without a WorkloadEntry: a blocked port, or scaled down. */
  readonly skip: ReadonlySet<string>;
  /**
   * Workloads scaling up: their WorkloadEntry is selected only by a ServiceEntry of their own that nobody calls
   * (`<name>.warming.trellis.local`), so their sidecar gets its inbound listener before any client gets the endpoint
   * (what a Kubernetes pod has before it is ready: its service targets, but no ready endpoint).
   */
  readonly warming?: ReadonlySet<string>;
}

export interface ConfigDirResult {
  readonly dir: string;
  /** Source config dirs or files copied, and where. */
  readonly copied: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  /** Notes for the user (a config dir that does not exist, a service whose workloads share no label). */
  readonly notes: readonly string[];
}

/**
 * (Re)creates `dir`: empties it, copies each of `sources` (directories or files) under it, then writes
 * `generated/registry.yaml` with one ServiceEntry per service and one WorkloadEntry per sidecar'd workload. Each
 * WorkloadEntry points at its workload's sidecar inbound port (not the application), so the other sidecars' traffic
 * goes through it.
 */
export function writeConfigDir(
  dir: string,
  manifest: MeshManifest,
  sources: readonly string[],
  plan: PortPlan,
  skipWorkloads: ReadonlySet<string> = new Set(),
  podEndpoints?: ReadonlyMap<string, string>,
): ConfigDirResult {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, GENERATED_SUBDIR), { recursive: true });
  const copied: Array<{ from: string; to: string }> = [];
  const notes: string[] = [];
  const used = new Set<string>();
  for (const source of sources) {
    if (!existsSync(source)) {
      notes.push(`config ${source} does not exist; skipped`);
      continue;
    }
    let name = basename(source);
    for (let i = 2; used.has(name); i++) name = `${basename(source)}-${i}`;
    used.add(name);
    const to = statSync(source).isDirectory() ? join(dir, 'mesh', name) : join(dir, 'mesh', name);
    cpSync(source, to, { recursive: true });
    copied.push({ from: source, to });
  }
  const { yaml, notes: registryNotes } = registryYaml(manifest, plan, skipWorkloads, podEndpoints);
  notes.push(...registryNotes);
  writeFileSync(join(dir, GENERATED_SUBDIR, 'registry.yaml'), yaml);
  return { dir, copied, notes };
}

/**
 * Rewrites only `generated/registry.yaml`, leaving out `skipWorkloads` (a workload being scaled down): written beside
 * it and renamed, so the watching control plane never reads half a file.
 */
export function writeRegistry(dir: string, manifest: MeshManifest, plan: PortPlan, state: RegistryState, podEndpoints?: ReadonlyMap<string, string>): void {
  const path = join(dir, GENERATED_SUBDIR, 'registry.yaml');
  writeFileSync(`${path}.tmp`, registryYaml(manifest, plan, state.skip, podEndpoints, state.warming).yaml);
  renameSync(`${path}.tmp`, path);
}

/**
 * The ServiceEntries and WorkloadEntries of the manifest's workloads, as multi-document YAML. `podEndpoints` (--isolated):
 * each workload's pod IP, where its WorkloadEntry points at the service port itself (the pod's capture rules take it to
 * the sidecar), instead of 127.0.0.1 and the sidecar's inbound port. `warming`: see RegistryState.
 */
export function registryYaml(manifest: MeshManifest, plan: PortPlan, skipWorkloads: ReadonlySet<string> = new Set(), podEndpoints?: ReadonlyMap<string, string>, warming: ReadonlySet<string> = new Set()): { yaml: string; notes: string[] } {
  const notes: string[] = [];
  const services = new Map<string, WorkloadSpec[]>();
  for (const w of manifest.workloads) {
    if (!w.sidecar || !w.service) continue;
    const key = `${w.namespace}/${w.service.host}`;
    services.set(key, [...(services.get(key) ?? []), w]);
  }
  const docs: unknown[] = [];
  for (const [key, workloads] of services) {
    const [namespace, host] = key.split('/') as [string, string];
    const selector = commonLabels(workloads);
    if (Object.keys(selector).length === 0) {
      notes.push(`service ${host}.${namespace}: its workloads (${workloads.map((w) => w.name).join(', ')}) share no label, so no ServiceEntry selects them; give them a common label such as app: ${host}`);
      continue;
    }
    const ports = new Map<number, string>();
    for (const w of workloads) ports.set(w.service!.port, w.service!.protocol);
    docs.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: host, namespace, annotations: { 'trellis.io/generated-by': 'trellis up' } },
      spec: {
        hosts: [`${host}.${namespace}.svc.cluster.local`],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [...ports].map(([number, protocol]) => ({ number, name: portName(protocol, number), protocol })),
        workloadSelector: { labels: selector },
      },
    });
    for (const w of workloads) {
      if (skipWorkloads.has(w.name)) continue;
      const podIp = podEndpoints?.get(w.name);
      const inbound = podIp ? w.service!.port : plan.workloads.get(w.name)?.inbound;
      if (inbound === undefined) continue;
      if (warming.has(w.name)) {
        docs.push(...warmingEntries(w, podIp ?? '127.0.0.1', inbound));
        continue;
      }
      docs.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'WorkloadEntry',
        metadata: { name: w.name, namespace: w.namespace, annotations: { 'trellis.io/generated-by': 'trellis up' } },
        // tlsMode istio, as Istio's injector labels a pod with a sidecar: every workload of a local mesh runs beside
        // a sidecar holding a mesh certificate from the control plane's CA, so auto mTLS sends it ISTIO_MUTUAL.
        spec: {
          address: podIp ?? '127.0.0.1',
          ports: { [portName(w.service!.protocol, w.service!.port)]: inbound },
          labels: { [TLS_MODE_LABEL]: 'istio', ...w.labels },
          serviceAccount: w.serviceAccount,
          ...(w.locality ? { locality: w.locality } : {}),
        },
      });
    }
  }
  const header = `# Generated by \`trellis up\` from ${manifest.file}: one ServiceEntry per service, one WorkloadEntry per workload\n# (address 127.0.0.1, port = its sidecar's inbound port). Rewritten on every start; do not edit.\n`;
  return { yaml: header + docs.map((d) => stringify(d)).join('---\n'), notes };
}

/** A warming workload's own ServiceEntry and its WorkloadEntry (labelled for that ServiceEntry only). */
function warmingEntries(w: WorkloadSpec, address: string, inbound: number): unknown[] {
  const port = { number: w.service!.port, name: portName(w.service!.protocol, w.service!.port), protocol: w.service!.protocol };
  const annotations = { 'trellis.io/generated-by': 'trellis up' };
  return [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: `${w.name}-warming`, namespace: w.namespace, annotations },
      spec: { hosts: [`${w.name}.warming.trellis.local`], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [port], workloadSelector: { labels: { [WARMING_LABEL]: w.name } } },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: w.name, namespace: w.namespace, annotations },
      spec: { address, ports: { [port.name]: inbound }, labels: { [TLS_MODE_LABEL]: 'istio', [WARMING_LABEL]: w.name }, serviceAccount: w.serviceAccount },
    },
  ];
}

function portName(protocol: string, port: number): string {
  return `${protocol.toLowerCase()}-${port}`;
}

function commonLabels(workloads: readonly WorkloadSpec[]): Record<string, string> {
  const [first, ...rest] = workloads;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(first?.labels ?? {})) if (rest.every((w) => w.labels[k] === v)) out[k] = v;
  return out;
}
