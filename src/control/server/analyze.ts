// `trellis analyze`: the config store's own loading and validation, plus istioctl-analyze-style checks across resources.
import { resourceRef, type DestinationRule, type VirtualService, type Destination, type Gateway } from '../../api/index.js';
import { FileConfigStore, type ConfigProblem } from '../config/index.js';
import { ServiceEntryRegistry } from '../registry/index.js';
import type { ServiceRegistry } from '../registry/registry.js';
import type { ConfigStore } from '../config/store.js';
import { DEFAULT_DOMAIN_SUFFIX, hostMatches, resolveHostname } from '../model/hostname.js';
import { MESH_GATEWAY, resolveGatewayName } from '../model/virtual-service-index.js';
import { selectorMatches } from '../model/visibility.js';

export type AnalysisLevel = 'Error' | 'Warning' | 'Info';

/** One finding, with istioctl's message codes where Istio has one. */
export interface AnalysisMessage {
  readonly level: AnalysisLevel;
  /** IST0101 referenced resource not found, IST0106 schema validation error, IST0109 conflicting mesh VirtualService hosts, IST0173 subset selects no workload. */
  readonly code: string;
  /** `Kind namespace/name`, when the finding is about one resource. */
  readonly resource?: string;
  /** File (and `:line` when known). */
  readonly origin?: string;
  /** Field path within the resource, e.g. `spec.http[0].route[1].destination.subset`. */
  readonly path?: string;
  readonly message: string;
}

export interface AnalysisResult {
  readonly messages: readonly AnalysisMessage[];
  readonly resources: number;
  readonly namespaces: readonly string[];
}

/** Loads `dir` once (no watching) with the file store's code, validates it, and runs the cross-resource checks. */
export async function analyzeDirectory(dir: string, options: { domainSuffix?: string } = {}): Promise<AnalysisResult> {
  const store = new FileConfigStore({ dir, watch: false });
  try {
    await store.start();
    const registry = new ServiceEntryRegistry(store, { domainSuffix: options.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX });
    try {
      return analyze(store, registry, options.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX);
    } finally {
      registry.close();
    }
  } finally {
    await store.close();
  }
}

/** Every problem of a store (refused resources) and of its valid resources taken together. */
export function analyze(store: ConfigStore, registry: ServiceRegistry, domainSuffix = DEFAULT_DOMAIN_SUFFIX): AnalysisResult {
  const messages: AnalysisMessage[] = store.problems().map(problemMessage);
  const virtualServices = store.list('VirtualService');
  const destinationRules = store.list('DestinationRule');
  const gateways = store.list('Gateway');
  const checks = new CrossChecks(registry, destinationRules, gateways, domainSuffix);
  for (const vs of virtualServices) messages.push(...checks.virtualService(vs));
  for (const dr of destinationRules) messages.push(...checks.destinationRule(dr));
  messages.push(...checks.conflictingMeshHosts(virtualServices));
  const all = [...virtualServices, ...destinationRules, ...gateways, ...store.list('ServiceEntry'), ...store.list('WorkloadEntry'), ...store.list('Sidecar'),
    ...store.list('PeerAuthentication'), ...store.list('RequestAuthentication'), ...store.list('AuthorizationPolicy'), ...store.list('Telemetry')];
  const namespaces = [...new Set(all.map((r) => r.metadata.namespace))].sort();
  return { messages, resources: all.length, namespaces };
}

function problemMessage(p: ConfigProblem): AnalysisMessage {
  const origin = p.line !== undefined ? `${p.source}:${p.line}:${p.column ?? 1}` : p.source;
  const what = p.code === 'TRELLIS_CONFIG_PARSE' ? '' : p.code === 'TRELLIS_CONFIG_UNSUPPORTED' ? 'Unsupported resource: ' : p.code === 'TRELLIS_CONFIG_CONFLICT' ? 'Conflicting definition: ' : 'Schema validation error: ';
  return {
    level: 'Error',
    code: 'IST0106',
    ...(p.resource ? { resource: p.resource } : p.document !== undefined ? { resource: `document ${p.document}` } : {}),
    origin,
    ...(p.path ? { path: p.path } : {}),
    message: `${what}${p.path ? `${p.path}: ` : ''}${p.message}`,
  };
}

class CrossChecks {
  private readonly rulesByHost = new Map<string, DestinationRule[]>();
  private readonly gatewayNames: ReadonlySet<string>;

  constructor(
    private readonly registry: ServiceRegistry,
    rules: readonly DestinationRule[],
    gateways: readonly Gateway[],
    private readonly domainSuffix: string,
  ) {
    for (const rule of rules) {
      const host = resolveHostname(rule.spec.host ?? '', rule.metadata.namespace, domainSuffix);
      const list = this.rulesByHost.get(host) ?? [];
      list.push(rule);
      this.rulesByHost.set(host, list);
    }
    this.gatewayNames = new Set(gateways.map((g) => `${g.metadata.namespace}/${g.metadata.name}`));
  }

  virtualService(vs: VirtualService): AnalysisMessage[] {
    const out: AnalysisMessage[] = [];
    const ns = vs.metadata.namespace;
    const at = (path: string, message: string, level: AnalysisLevel = 'Error'): AnalysisMessage => ({ level, code: 'IST0101', ...this.where(vs), path, message });
    (vs.spec.gateways ?? []).forEach((gateway, i) => {
      const name = resolveGatewayName(gateway, ns);
      if (name !== MESH_GATEWAY && !this.gatewayNames.has(name)) out.push(at(`spec.gateways[${i}]`, `Referenced gateway not found: "${gateway}"`));
    });
    const check = (destination: Destination | undefined, path: string): void => {
      if (!destination?.host) return;
      const host = resolveHostname(destination.host, ns, this.domainSuffix);
      if (!this.knownHost(host, ns)) {
        out.push(at(`${path}.host`, `Referenced host not found: "${destination.host}"`));
        return;
      }
      if (destination.subset && !this.subsetDefined(host, destination.subset)) {
        out.push(at(`${path}.subset`, `Referenced host+subset in destinationrule not found: "${destination.host}+${destination.subset}"`));
      }
    };
    (vs.spec.http ?? []).forEach((route, i) => {
      (route.route ?? []).forEach((d, j) => check(d.destination, `spec.http[${i}].route[${j}].destination`));
      if (route.mirror) check(route.mirror, `spec.http[${i}].mirror`);
      (route.mirrors ?? []).forEach((m, j) => check(m.destination, `spec.http[${i}].mirrors[${j}].destination`));
    });
    (vs.spec.tcp ?? []).forEach((route, i) => (route.route ?? []).forEach((d, j) => check(d.destination, `spec.tcp[${i}].route[${j}].destination`)));
    (vs.spec.tls ?? []).forEach((route, i) => (route.route ?? []).forEach((d, j) => check(d.destination, `spec.tls[${i}].route[${j}].destination`)));
    return out;
  }

  destinationRule(rule: DestinationRule): AnalysisMessage[] {
    const host = resolveHostname(rule.spec.host ?? '', rule.metadata.namespace, this.domainSuffix);
    const service = this.registry.getService(host, rule.metadata.namespace);
    // A rule for a host the registry does not know (external, or defined elsewhere) has no workloads to check against.
    if (!service) return [];
    const instances = this.registry.instances(host, { namespace: rule.metadata.namespace });
    const out: AnalysisMessage[] = [];
    (rule.spec.subsets ?? []).forEach((subset, i) => {
      if (instances.some((instance) => selectorMatches(subset.labels, instance.labels))) return;
      out.push({
        level: 'Warning',
        code: 'IST0173',
        ...this.where(rule),
        path: `spec.subsets[${i}].labels`,
        message: `The Subset ${subset.name} defined in the DestinationRule does not select any workload of "${host}" (labels ${JSON.stringify(subset.labels ?? {})})`,
      });
    });
    return out;
  }

  conflictingMeshHosts(virtualServices: readonly VirtualService[]): AnalysisMessage[] {
    const byHost = new Map<string, VirtualService[]>();
    for (const vs of virtualServices) {
      const gateways = (vs.spec.gateways ?? []).map((g) => resolveGatewayName(g, vs.metadata.namespace));
      if (gateways.length > 0 && !gateways.includes(MESH_GATEWAY)) continue;
      for (const host of new Set((vs.spec.hosts ?? []).map((h) => resolveHostname(h, vs.metadata.namespace, this.domainSuffix)))) {
        const list = byHost.get(host) ?? [];
        list.push(vs);
        byHost.set(host, list);
      }
    }
    const out: AnalysisMessage[] = [];
    for (const [host, list] of byHost) {
      if (list.length < 2) continue;
      const names = list.map((vs) => `${vs.metadata.namespace}/${vs.metadata.name}`).join(',');
      for (const vs of list) {
        out.push({
          level: 'Error',
          code: 'IST0109',
          ...this.where(vs),
          path: 'spec.hosts',
          message: `The VirtualServices ${names} associated with mesh gateway define the same host "${host}" which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
        });
      }
    }
    return out;
  }

  private knownHost(host: string, namespace: string): boolean {
    if (this.registry.getService(host, namespace)) return true;
    return this.registry.services().some((s) => s.hostname.startsWith('*') && hostMatches(s.hostname, host));
  }

  private subsetDefined(host: string, subset: string): boolean {
    return (this.rulesByHost.get(host) ?? []).some((rule) => (rule.spec.subsets ?? []).some((s) => s.name === subset));
  }

  private where(resource: VirtualService | DestinationRule): { resource: string; origin?: string } {
    return { resource: resourceRef(resource), ...(resource.origin?.source ? { origin: resource.origin.source } : {}) };
  }
}

/** `Error [IST0101] (VirtualService default/reviews file.yaml) Referenced host not found: "reviewz"`, as istioctl analyze prints it. */
export function formatAnalysisMessage(m: AnalysisMessage): string {
  const subject = [m.resource, m.origin].filter(Boolean).join(' ');
  return `${m.level} [${m.code}]${subject ? ` (${subject})` : ''} ${m.message}`;
}
