// The access logs and tracing filter of one proxy's HCMs in a direction, with a key naming exactly what they are built from (for builds many proxies share).
import type { envoy } from '../../../xds/generated/types.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import { accessLogsOfLevels, type AccessLog } from './access-log.js';
import { telemetryLevels, type TelemetryDirection } from './telemetry-selection.js';
import { resolveTracing, tracingFilter, tracingProxyKey, type TracingMeshConfig } from './tracing.js';

/** What a Telemetry (or the MeshConfig) adds to an HCM: accessLogOption and tracingOption in one. */
export interface HttpTelemetry {
  accessLog?: AccessLog[];
  tracingHttpFilter?: envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
}

export interface KeyedHttpTelemetry {
  /**
   * Names every input of `build` that is not the snapshot's own (MeshConfig): the Telemetry resources of each level,
   * by namespace/name (unique within a snapshot, and the key lives no longer than one), and, only when tracing is on,
   * what the tracing filter reads of the proxy. Proxies whose Telemetry and workload identity agree share one key.
   */
  readonly key: string;
  /** The access logs and tracing filter; built only when called, so a shared build pays for it once per key. */
  build(): HttpTelemetry;
}

/** The HCM telemetry of `proxy` in `direction`, from the Telemetry resources that select it in `push`. */
export function keyedHttpTelemetry(proxy: Proxy, push: PushContext, direction: TelemetryDirection): KeyedHttpTelemetry {
  const mesh = push.mesh as TracingMeshConfig;
  const levels = telemetryLevels(push.telemetry(proxy), proxy, mesh.rootNamespace);
  const tracing = resolveTracing(levels, direction, mesh);
  const key = `${levels.map((t) => `${t.metadata.namespace}/${t.metadata.name}`).join(',')}|${tracing ? tracingProxyKey(proxy) : '-'}`;
  return {
    key,
    build: () => {
      const accessLog = accessLogsOfLevels(levels, direction, mesh);
      return { ...(accessLog.length > 0 ? { accessLog } : {}), ...(tracing ? { tracingHttpFilter: tracingFilter(tracing, proxy, mesh) } : {}) };
    },
  };
}
