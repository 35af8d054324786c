// PeerAuthentications by namespace with Istio's precedence (ComposePeerAuthentication): the mTLS mode a workload accepts, per port.
import type { PeerAuthentication } from '../../api/index.js';
import type { MtlsMode } from '../../api/security/peer-authentication.js';
import { compareStrings, selectorMatches } from './visibility.js';

/** The modes a PeerAuthentication resolves to (UNSET never survives composition: it inherits). */
export type MutualTlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** Istio's MergedPeerAuthentication: the workload-wide mode and the `portLevelMtls` overrides by workload port. */
export interface EffectivePeerAuthentication {
  readonly mode: MutualTlsMode;
  readonly perPort: ReadonlyMap<number, MutualTlsMode>;
}

/** Istio's default when no policy says anything. */
export const DEFAULT_MTLS_MODE: MutualTlsMode = 'PERMISSIVE';

interface NamespacePolicies {
  /** The oldest policy without selector (namespace-wide, or mesh-wide in the root namespace). */
  readonly namespaceWide: PeerAuthentication | undefined;
  /** Policies with a selector, oldest first. */
  readonly selected: readonly PeerAuthentication[];
}

/**
 * Built once per PushContext. Istio's rules (pilot/pkg/security/authn ComposePeerAuthentication and
 * AuthenticationPolicies.GetNamespaceMutualTLSMode):
 * - the narrowest scope wins: a workload-selector policy in the workload's namespace, then the namespace-wide policy,
 *   then the mesh-wide policy (selector-less, in the root namespace); selector policies in the root namespace are ignored;
 * - among policies of one scope the oldest wins (creation time, then name, then namespace, as Istio sorts configs);
 * - UNSET (or no `mtls`) inherits from the scope above; a `portLevelMtls` entry overrides the workload port's mode,
 *   UNSET there inheriting the workload's mode;
 * - nothing set anywhere means PERMISSIVE.
 */
export class PeerAuthenticationIndex {
  private readonly byNamespace = new Map<string, NamespacePolicies>();
  private readonly workloadCache = new Map<string, EffectivePeerAuthentication>();

  constructor(policies: readonly PeerAuthentication[], private readonly rootNamespace: string) {
    const grouped = new Map<string, PeerAuthentication[]>();
    for (const policy of [...policies].sort(compareByAge)) {
      const list = grouped.get(policy.metadata.namespace) ?? [];
      list.push(policy);
      grouped.set(policy.metadata.namespace, list);
    }
    for (const [namespace, list] of grouped) {
      this.byNamespace.set(namespace, {
        namespaceWide: list.find((p) => !hasSelector(p)),
        selected: list.filter(hasSelector),
      });
    }
  }

  /** The mesh-wide mode (root namespace policy without selector), or undefined when it sets none. */
  meshMode(): MutualTlsMode | undefined {
    return modeOf(this.byNamespace.get(this.rootNamespace)?.namespaceWide);
  }

  /**
   * Istio's GetNamespaceMutualTLSMode: the namespace-wide policy's mode, else (none, or UNSET) the mesh-wide one;
   * undefined when neither sets a mode. Workload policies are not considered (clients infer a service's mode from this).
   */
  namespaceMode(namespace: string): MutualTlsMode | undefined {
    return modeOf(this.byNamespace.get(namespace)?.namespaceWide) ?? this.meshMode();
  }

  /** The effective policy of a workload in `namespace` with `labels` (Istio's ComposePeerAuthentication). */
  forWorkload(namespace: string, labels: Readonly<Record<string, string>>): EffectivePeerAuthentication {
    const workload = namespace === this.rootNamespace ? undefined : this.workloadPolicy(namespace, labels);
    if (!workload) {
      const key = `${namespace}|`;
      let cached = this.workloadCache.get(key);
      if (!cached) this.workloadCache.set(key, (cached = { mode: this.namespaceMode(namespace) ?? DEFAULT_MTLS_MODE, perPort: new Map() }));
      return cached;
    }
    // Keyed by the chosen policy: every workload it selects composes to the same result.
    const key = `${namespace}|${workload.metadata.name}`;
    let cached = this.workloadCache.get(key);
    if (!cached) {
      const mode = modeOf(workload) ?? this.namespaceMode(namespace) ?? DEFAULT_MTLS_MODE;
      const perPort = new Map<number, MutualTlsMode>();
      for (const [port, setting] of Object.entries(workload.spec.portLevelMtls ?? {})) {
        const number = Number(port);
        if (!Number.isInteger(number) || number < 1 || number > 65535) continue;
        perPort.set(number, toMode(setting?.mode) ?? mode);
      }
      this.workloadCache.set(key, (cached = { mode, perPort }));
    }
    return cached;
  }

  /** The mode a workload accepts on one of its (endpoint) ports: Istio's GetMutualTLSModeForPort. */
  modeForPort(namespace: string, labels: Readonly<Record<string, string>>, port: number): MutualTlsMode {
    const effective = this.forWorkload(namespace, labels);
    return effective.perPort.get(port) ?? effective.mode;
  }

  private workloadPolicy(namespace: string, labels: Readonly<Record<string, string>>): PeerAuthentication | undefined {
    return this.byNamespace.get(namespace)?.selected.find((p) => selectorMatches(p.spec.selector?.matchLabels, labels));
  }
}

function hasSelector(policy: PeerAuthentication): boolean {
  return Object.keys(policy.spec.selector?.matchLabels ?? {}).length > 0;
}

function toMode(mode: MtlsMode | undefined): MutualTlsMode | undefined {
  return mode === 'STRICT' || mode === 'PERMISSIVE' || mode === 'DISABLE' ? mode : undefined;
}

function modeOf(policy: PeerAuthentication | undefined): MutualTlsMode | undefined {
  return toMode(policy?.spec.mtls?.mode);
}

/**
 * Istio's sortConfigByCreationTime: creation time, then name, then namespace. Files carry no creation time, so for
 * them Istio's tie-break alone orders; a store that records `metadata.creationTimestamp` (Kubernetes) orders by it first.
 */
export function compareByAge(a: PeerAuthentication, b: PeerAuthentication): number {
  const ta = creationTime(a), tb = creationTime(b);
  if (ta !== tb) return ta - tb;
  return compareStrings(a.metadata.name, b.metadata.name) || compareStrings(a.metadata.namespace, b.metadata.namespace);
}

function creationTime(policy: PeerAuthentication): number {
  const raw = (policy.metadata as { creationTimestamp?: unknown }).creationTimestamp;
  const time = typeof raw === 'string' ? Date.parse(raw) : NaN;
  // Without a time a policy sorts as if created at the epoch, so timestamped and untimestamped ones still order totally.
  return Number.isNaN(time) ? 0 : time;
}
