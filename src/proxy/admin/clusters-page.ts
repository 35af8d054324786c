// /clusters and /listeners in Envoy's text (`cluster::host:port::stat::value`) and JSON (envoy.admin.v3.Clusters / Listeners) forms.
import type { ListenerStatus } from '../listeners/types.js';
import { healthFlagsText } from '../upstream/host.js';
import type { CircuitBreakerState, UpstreamCluster, UpstreamHost } from '../upstream/types.js';

/** One cluster as the admin pages see it. */
export interface ClusterView {
  readonly name: string;
  readonly addedViaApi: boolean;
  /** Undefined while the cluster is known from config but not built (shouldn't last). */
  readonly cluster?: UpstreamCluster;
  readonly hosts: readonly UpstreamHost[];
}

const HOST_STATS = [
  ['cx_active', 'cxActive'],
  ['cx_connect_fail', 'cxConnectFail'],
  ['cx_total', 'cxTotal'],
  ['rq_active', 'rqActive'],
  ['rq_error', 'rqError'],
  ['rq_success', 'rqSuccess'],
  ['rq_timeout', 'rqTimeout'],
  ['rq_total', 'rqTotal'],
] as const;

function breakerLines(prefix: string, breakers: CircuitBreakerState | undefined): string {
  const b = breakers ?? { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 };
  let out = '';
  for (const priority of ['default_priority', 'high_priority']) {
    // Trellis applies one threshold set (the default priority's) to both priorities.
    out += `${prefix}::${priority}::max_connections::${b.maxConnections}\n`;
    out += `${prefix}::${priority}::max_pending_requests::${b.maxPendingRequests}\n`;
    out += `${prefix}::${priority}::max_requests::${b.maxRequests}\n`;
    out += `${prefix}::${priority}::max_retries::${b.maxRetries}\n`;
  }
  return out;
}

/** Envoy's /clusters text. */
export function clustersText(clusters: readonly ClusterView[]): string {
  let out = '';
  for (const view of clusters) {
    const n = view.name;
    out += `${n}::observability_name::${n}\n`;
    out += breakerLines(n, view.cluster?.circuitBreakers);
    out += `${n}::added_via_api::${view.addedViaApi}\n`;
    for (const host of view.hosts) {
      const h = `${n}::${host.addressText}`;
      for (const [stat, key] of HOST_STATS) out += `${h}::${stat}::${host.stats[key]}\n`;
      out += `${h}::hostname::\n`;
      out += `${h}::health_flags::${healthFlagsText(host)}\n`;
      out += `${h}::weight::${host.weight}\n`;
      out += `${h}::region::${host.locality.region}\n`;
      out += `${h}::zone::${host.locality.zone}\n`;
      out += `${h}::sub_zone::${host.locality.subZone}\n`;
      out += `${h}::canary::false\n`;
      out += `${h}::priority::${host.priority}\n`;
      out += `${h}::success_rate::${host.successRate}\n`;
      out += `${h}::local_origin_success_rate::${host.localOriginSuccessRate}\n`;
    }
  }
  return out;
}

function socketAddress(address: string, port: number): Record<string, unknown> {
  return { socket_address: { address, port_value: port } };
}

/** Envoy's /clusters?format=json (envoy.admin.v3.Clusters). */
export function clustersJson(clusters: readonly ClusterView[]): Record<string, unknown> {
  return {
    cluster_statuses: clusters.map((view) => {
      const b = view.cluster?.circuitBreakers;
      const thresholds = b
        ? ['DEFAULT', 'HIGH'].map((priority) => ({
            ...(priority === 'HIGH' ? { priority } : {}),
            max_connections: b.maxConnections,
            max_pending_requests: b.maxPendingRequests,
            max_requests: b.maxRequests,
            max_retries: b.maxRetries,
          }))
        : [];
      return {
        name: view.name,
        observability_name: view.name,
        ...(view.addedViaApi ? { added_via_api: true } : {}),
        circuit_breakers: { thresholds },
        host_statuses: view.hosts.map((host) => ({
          address: socketAddress(host.address, host.port),
          stats: HOST_STATS.map(([stat, key]) => ({ name: stat, ...(host.stats[key] !== 0 ? { value: String(host.stats[key]) } : {}), type: stat.endsWith('active') ? 'GAUGE' : 'COUNTER' })),
          health_status: {
            ...(host.healthFlags.failedActiveHc ? { failed_active_health_check: true } : {}),
            ...(host.healthFlags.failedOutlierCheck ? { failed_outlier_check: true } : {}),
            ...(host.healthFlags.degradedActiveHc ? { failed_active_degraded_check: true } : {}),
            ...(host.healthFlags.pendingDynamicRemoval ? { pending_dynamic_removal: true } : {}),
            ...(host.healthFlags.pendingActiveHc ? { pending_active_hc: true } : {}),
            ...(host.healthFlags.activeHcTimeout ? { active_hc_timeout: true } : {}),
            eds_health_status: host.health,
          },
          ...(host.successRate >= 0 ? { success_rate: { value: host.successRate } } : {}),
          ...(host.localOriginSuccessRate >= 0 ? { local_origin_success_rate: { value: host.localOriginSuccessRate } } : {}),
          weight: host.weight,
          locality: {
            ...(host.locality.region ? { region: host.locality.region } : {}),
            ...(host.locality.zone ? { zone: host.locality.zone } : {}),
            ...(host.locality.subZone ? { sub_zone: host.locality.subZone } : {}),
          },
          ...(host.priority ? { priority: host.priority } : {}),
        })),
      };
    }),
  };
}

function splitHostPort(bound: string): { address: string; port: number } {
  const colon = bound.lastIndexOf(':');
  return { address: bound.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(bound.slice(colon + 1)) };
}

/** Envoy's /listeners text: `name::ip:port` a line. */
export function listenersText(listeners: readonly ListenerStatus[]): string {
  return listeners.map((l) => `${l.name}::${l.boundAddress ?? ''}\n`).join('');
}

/** Envoy's /listeners?format=json (envoy.admin.v3.Listeners). */
export function listenersJson(listeners: readonly ListenerStatus[]): Record<string, unknown> {
  return {
    listener_statuses: listeners.map((l) => {
      if (!l.boundAddress) return { name: l.name };
      const { address, port } = splitHostPort(l.boundAddress);
      return { name: l.name, local_address: socketAddress(address, port) };
    }),
  };
}
