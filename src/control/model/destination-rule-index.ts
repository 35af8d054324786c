// DestinationRules by host with Istio's precedence: the proxy's namespace, then the service's, then the root namespace (exportTo permitting).
import type { DestinationRule, Subset } from '../../api/index.js';
import { hostMatches, isWildcardHost, resolveHostname } from './hostname.js';
import type { Service } from './service.js';
import type { PushStatusReporter } from './push-status.js';
import { compareConfigs, isVisibleTo, selectorMatches } from './visibility.js';

/** The rule that applies (several rules of one namespace for one host merged, as Istio's mergeDestinationRule does) and the rules it came from. */
export interface ConsolidatedDestinationRule {
  readonly rule: DestinationRule;
  readonly sources: readonly DestinationRule[];
}

interface HostRules {
  /** Rules without workloadSelector, oldest first (here: by name). */
  readonly plain: DestinationRule[];
  /** Rules with workloadSelector: they apply only to matching workloads of their own namespace, and before the plain ones. */
  readonly selected: DestinationRule[];
}

interface NamespaceRules {
  readonly exact: Map<string, HostRules>;
  /** Wildcard hosts, longest (most specific) first. */
  readonly wildcards: [string, HostRules][];
}

export class DestinationRuleIndex {
  private readonly byNamespace = new Map<string, NamespaceRules>();
  private readonly cache = new Map<string, ConsolidatedDestinationRule | null>();

  /** `report`: told of subsets that merging a namespace's rules for one host drops (Istio's pilot_destrule_subsets). */
  constructor(rules: readonly DestinationRule[], private readonly rootNamespace: string, domainSuffix: string, report?: PushStatusReporter) {
    for (const dr of [...rules].sort(compareConfigs)) {
      const ns = dr.metadata.namespace;
      const host = resolveHostname(dr.spec.host ?? '', ns, domainSuffix);
      let nsRules = this.byNamespace.get(ns);
      if (!nsRules) this.byNamespace.set(ns, (nsRules = { exact: new Map(), wildcards: [] }));
      let hostRules = isWildcardHost(host) ? nsRules.wildcards.find(([h]) => h === host)?.[1] : nsRules.exact.get(host);
      if (!hostRules) {
        hostRules = { plain: [], selected: [] };
        if (isWildcardHost(host)) nsRules.wildcards.push([host, hostRules]);
        else nsRules.exact.set(host, hostRules);
      }
      (dr.spec.workloadSelector?.matchLabels && Object.keys(dr.spec.workloadSelector.matchLabels).length > 0 ? hostRules.selected : hostRules.plain).push(dr);
    }
    for (const ns of this.byNamespace.values()) ns.wildcards.sort(([a], [b]) => b.length - a.length);
    if (report) this.reportDuplicateSubsets(report);
  }

  /** Istio reports these when it merges, at push context init: done here for every merge consolidate() will do. */
  private reportDuplicateSubsets(report: PushStatusReporter): void {
    for (const ns of this.byNamespace.values()) {
      for (const [host, rules] of [...ns.exact, ...ns.wildcards]) {
        if (rules.plain.length < 2) continue;
        const names = new Set<string>();
        for (const dr of rules.plain) {
          for (const s of dr.spec.subsets ?? []) {
            if (names.has(s.name)) report('pilot_destrule_subsets', host, `Duplicate subset ${s.name} found while merging destination rules for ${host} (${dr.metadata.namespace}/${dr.metadata.name} loses it)`);
            names.add(s.name);
          }
        }
      }
    }
  }

  /**
   * The DestinationRule for traffic from a proxy in `proxyNamespace` (with `proxyLabels`, for workloadSelector rules)
   * to `service`: the most specific host match in the proxy's namespace (all its rules), else in the service's namespace,
   * else in the root namespace — those two only with rules exported to the proxy's namespace.
   */
  lookup(proxyNamespace: string, service: Pick<Service, 'hostname' | 'namespace'>, proxyLabels?: Readonly<Record<string, string>>): ConsolidatedDestinationRule | undefined {
    if (proxyLabels) {
      const local = this.match(proxyNamespace, service.hostname);
      const selected = local?.selected.find((dr) => selectorMatches(dr.spec.workloadSelector?.matchLabels, proxyLabels));
      if (selected) return { rule: selected, sources: [selected] };
    }
    const key = `${proxyNamespace}|${service.namespace}|${service.hostname}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const found = this.lookupPlain(proxyNamespace, service);
    this.cache.set(key, found ?? null);
    return found;
  }

  private lookupPlain(proxyNamespace: string, service: Pick<Service, 'hostname' | 'namespace'>): ConsolidatedDestinationRule | undefined {
    const local = this.match(proxyNamespace, service.hostname);
    if (local && local.plain.length > 0) return consolidate(local.plain);
    for (const ns of service.namespace === this.rootNamespace ? [service.namespace] : [service.namespace, this.rootNamespace]) {
      if (ns === proxyNamespace) continue;
      const exported = this.match(ns, service.hostname)?.plain.filter((dr) => isVisibleTo(dr.spec.exportTo, ns, proxyNamespace));
      if (exported && exported.length > 0) return consolidate(exported);
    }
    return undefined;
  }

  private match(namespace: string, hostname: string): HostRules | undefined {
    const ns = this.byNamespace.get(namespace);
    if (!ns) return undefined;
    const exact = ns.exact.get(hostname);
    if (exact) return exact;
    for (const [pattern, rules] of ns.wildcards) if (hostMatches(pattern, hostname)) return rules;
    return undefined;
  }
}

/** The labels of `subset` in `rule`, or undefined when the rule has no such subset. */
export function subsetLabels(rule: DestinationRule | undefined, subset: string): Readonly<Record<string, string>> | undefined {
  return rule?.spec.subsets?.find((s) => s.name === subset)?.labels ?? (rule?.spec.subsets?.some((s) => s.name === subset) ? {} : undefined);
}

// Istio's mergeDestinationRule: subsets are added unless one of that name exists (first wins); the first top-level trafficPolicy wins.
function consolidate(rules: readonly DestinationRule[]): ConsolidatedDestinationRule {
  if (rules.length === 1) return { rule: rules[0]!, sources: rules };
  const [first] = rules as [DestinationRule, ...DestinationRule[]];
  const subsets: Subset[] = [];
  const names = new Set<string>();
  let trafficPolicy = first.spec.trafficPolicy;
  for (const dr of rules) {
    for (const s of dr.spec.subsets ?? []) {
      if (names.has(s.name)) continue;
      names.add(s.name);
      subsets.push(s);
    }
    trafficPolicy ??= dr.spec.trafficPolicy;
  }
  const rule: DestinationRule = {
    ...first,
    spec: { ...first.spec, ...(trafficPolicy ? { trafficPolicy } : {}), ...(subsets.length > 0 ? { subsets } : {}) },
  };
  return { rule, sources: rules };
}
