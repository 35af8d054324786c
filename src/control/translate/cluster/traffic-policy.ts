// Which DestinationRule traffic policy applies to a cluster: Istio's port-level and subset merge rules (pilot/pkg/networking/util).
import type { DestinationRule, TrafficPolicy } from '../../../api/index.js';

/** The policy fields a cluster uses; port-level settings are already resolved. */
export type ResolvedTrafficPolicy = Omit<TrafficPolicy, 'portLevelSettings'>;

/**
 * Istio's GetPortLevelTrafficPolicy: when `portLevelSettings` has an entry for the port, that entry replaces the
 * destination-level policy entirely (fields it omits fall back to defaults, they are not inherited).
 */
export function portLevelTrafficPolicy(policy: TrafficPolicy | undefined, port: number): { policy: ResolvedTrafficPolicy | undefined; hasPortLevel: boolean } {
  if (!policy) return { policy: undefined, hasPortLevel: false };
  const portPolicy = (policy.portLevelSettings ?? []).find((p) => p.port?.number !== undefined && p.port.number === port);
  if (!portPolicy) return { policy: withoutPortLevel(policy), hasPortLevel: false };
  return { policy: definedOnly({ connectionPool: portPolicy.connectionPool, loadBalancer: portPolicy.loadBalancer, outlierDetection: portPolicy.outlierDetection, tls: portPolicy.tls }), hasPortLevel: true };
}

/**
 * Istio's MergeSubsetTrafficPolicy: the destination-level policy (port-level resolved) with each field the subset sets
 * overriding it; when the subset has port-level settings for the port, those replace all four of its main fields.
 */
export function mergeSubsetTrafficPolicy(original: TrafficPolicy | undefined, subsetPolicy: TrafficPolicy | undefined, port: number): ResolvedTrafficPolicy | undefined {
  const base = portLevelTrafficPolicy(original, port).policy;
  if (!subsetPolicy) return base;
  const { policy: subset, hasPortLevel } = portLevelTrafficPolicy(subsetPolicy, port);
  if (!base) return subset;
  const merged: ResolvedTrafficPolicy = { ...base };
  const s = subset ?? {};
  if (s.connectionPool !== undefined || hasPortLevel) assign(merged, 'connectionPool', s.connectionPool);
  if (s.outlierDetection !== undefined || hasPortLevel) assign(merged, 'outlierDetection', s.outlierDetection);
  if (s.loadBalancer !== undefined || hasPortLevel) assign(merged, 'loadBalancer', s.loadBalancer);
  if (s.tls !== undefined || hasPortLevel) assign(merged, 'tls', s.tls);
  if (s.tunnel !== undefined) merged.tunnel = s.tunnel;
  if (s.proxyProtocol !== undefined) merged.proxyProtocol = s.proxyProtocol;
  return merged;
}

/**
 * The policy for a cluster of `rule`: `outbound|port||host` when `subset` is undefined, else `outbound|port|subset|host`.
 * Exported so the EDS generator can tell whether a cluster's endpoints may use mTLS (its TLS mode).
 */
export function clusterTrafficPolicy(rule: DestinationRule | undefined, port: number, subset?: string): ResolvedTrafficPolicy | undefined {
  const spec = rule?.spec;
  if (subset === undefined) return portLevelTrafficPolicy(spec?.trafficPolicy, port).policy;
  const found = spec?.subsets?.find((s) => s.name === subset);
  return mergeSubsetTrafficPolicy(spec?.trafficPolicy, found?.trafficPolicy, port);
}

/** Whether endpoints of a cluster with this policy may be sent `tlsMode: istio` (a DR TLS mode other than ISTIO_MUTUAL turns mTLS off). */
export function endpointsMtlsEnabled(policy: ResolvedTrafficPolicy | undefined): boolean {
  const mode = policy?.tls?.mode;
  return mode === undefined || mode === 'ISTIO_MUTUAL';
}

function withoutPortLevel(policy: TrafficPolicy): ResolvedTrafficPolicy {
  const { portLevelSettings: _ignored, ...rest } = policy;
  return rest;
}

function definedOnly(policy: ResolvedTrafficPolicy): ResolvedTrafficPolicy {
  const out: ResolvedTrafficPolicy = {};
  for (const [key, value] of Object.entries(policy)) if (value !== undefined) (out as Record<string, unknown>)[key] = value;
  return out;
}

function assign<K extends keyof ResolvedTrafficPolicy>(target: ResolvedTrafficPolicy, key: K, value: ResolvedTrafficPolicy[K]): void {
  if (value === undefined) delete target[key];
  else target[key] = value;
}
