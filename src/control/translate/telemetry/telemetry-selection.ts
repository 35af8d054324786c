// Which Telemetry resources and entries apply to a proxy's HCM, and the MeshConfig provider an entry names: shared by access logging and tracing.
//
// Istio's selection: the root namespace's selector-less Telemetry applies mesh-wide, then the workload namespace's
// selector-less one, then one selecting the workload by labels; each more specific level overrides what it sets.
// Entries apply to a direction by `match.mode`: outbound and gateway listeners are CLIENT, inbound ones SERVER.
import type { WorkloadMode } from '../../../api/telemetry/telemetry.js';
import type { Telemetry } from '../../../api/kinds.js';
import type { ExtensionProvider, MeshConfig } from '../../model/mesh-config.js';

/** The side of the traffic an HCM is on: CLIENT for outbound and gateway listeners, SERVER for inbound ones. */
export type TelemetryDirection = 'CLIENT' | 'SERVER';

/** What the selection (and the builders) need of a proxy. */
export interface TelemetryProxy {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Whether an entry with `match.mode` applies to `direction` (no mode, or CLIENT_AND_SERVER, applies to both). */
export function modeApplies(mode: WorkloadMode | undefined, direction: TelemetryDirection): boolean {
  return mode === undefined || mode === 'CLIENT_AND_SERVER' || mode === direction;
}

/**
 * The Telemetry resources in Istio's order (root namespace, workload namespace, workload selector), at most one per
 * level: the first of `telemetries`, which the push context sorts oldest first and has already matched to the proxy.
 */
export function telemetryLevels(telemetries: readonly Telemetry[], proxy: TelemetryProxy, rootNamespace: string): Telemetry[] {
  const hasSelector = (t: Telemetry) => Object.keys(t.spec.selector?.matchLabels ?? {}).length > 0;
  const root = telemetries.find((t) => t.metadata.namespace === rootNamespace && !hasSelector(t));
  const namespace = proxy.namespace === rootNamespace ? undefined : telemetries.find((t) => t.metadata.namespace === proxy.namespace && !hasSelector(t));
  const workload = telemetries.find((t) => t.metadata.namespace === proxy.namespace && hasSelector(t));
  return [root, namespace, workload].filter((t): t is Telemetry => t !== undefined);
}

/** The MeshConfig extension provider a Telemetry entry or `defaultProviders` names, if the mesh defines it. */
export function extensionProvider(mesh: MeshConfig, name: string): ExtensionProvider | undefined {
  return mesh.extensionProviders?.find((p) => p.name === name);
}
