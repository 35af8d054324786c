// ClusterLoadAssignment → hosts (address, weight, priority, locality, health, metadata), validated with field paths.
import type { envoy } from '../../xds/generated/types.js';
import { structToJson } from '../../xds/struct.js';
import { rejectUnsupported, wrapped } from './config-values.js';
import { DEFAULT_OVERPROVISIONING_FACTOR, localityWeightKey } from './priority-set.js';
import type { HostHealth, HostLocality } from './types.js';
import { isIP } from 'node:net';

type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;

/** One endpoint as configured; DNS clusters resolve `address` into one or more hosts. */
export interface EndpointSpec {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly priority: number;
  readonly locality: HostLocality;
  readonly health: HostHealth;
  readonly metadata: Record<string, Record<string, unknown>>;
  readonly hostname: string;
}

export interface LoadAssignment {
  readonly endpoints: readonly EndpointSpec[];
  /** localityWeightKey(priority, locality) → load_balancing_weight. */
  readonly localityWeights: ReadonlyMap<string, number>;
  readonly overprovisioningFactor: number;
}

const HEALTH_NAMES: readonly HostHealth[] = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'];

/** Validates a ClusterLoadAssignment; `requireIp` for STATIC and EDS (addresses must be IPs), not for DNS clusters. */
export function compileLoadAssignment(cla: ClusterLoadAssignment, path: string, requireIp: boolean, problems: string[]): LoadAssignment {
  rejectUnsupported(cla, ['cluster_name', 'endpoints', 'policy'], path, problems);
  rejectUnsupported(cla.policy, ['overprovisioning_factor'], `${path}.policy`, problems);
  const overprovisioningFactor = wrapped(cla.policy?.overprovisioning_factor, DEFAULT_OVERPROVISIONING_FACTOR);
  if (overprovisioningFactor < 1) problems.push(`${path}.policy.overprovisioning_factor: must be at least 1`);
  const endpoints: EndpointSpec[] = [];
  const localityWeights = new Map<string, number>();
  (cla.endpoints ?? []).forEach((le, i) => {
    const lp = `${path}.endpoints[${i}]`;
    rejectUnsupported(le, ['locality', 'lb_endpoints', 'load_balancing_weight', 'priority', 'metadata'], lp, problems);
    const locality: HostLocality = { region: le.locality?.region ?? '', zone: le.locality?.zone ?? '', subZone: le.locality?.sub_zone ?? '' };
    const priority = le.priority ?? 0;
    if (priority > 128) problems.push(`${lp}.priority: must be at most 128, got ${priority}`);
    const lw = le.load_balancing_weight?.value;
    if (lw !== undefined) {
      if (lw < 1) problems.push(`${lp}.load_balancing_weight: must be at least 1`);
      const key = localityWeightKey(priority, locality);
      if (localityWeights.has(key)) problems.push(`${lp}.locality: duplicate locality ${key} at priority ${priority}`);
      localityWeights.set(key, lw);
    }
    (le.lb_endpoints ?? []).forEach((lbe, j) => {
      const ep = `${lp}.lb_endpoints[${j}]`;
      rejectUnsupported(lbe, ['endpoint', 'health_status', 'metadata', 'load_balancing_weight'], ep, problems);
      const e = lbe.endpoint;
      if (!e) {
        problems.push(`${ep}.endpoint: required`);
        return;
      }
      rejectUnsupported(e, ['address', 'hostname'], `${ep}.endpoint`, problems);
      const sa = e.address?.socket_address;
      rejectUnsupported(e.address, ['socket_address'], `${ep}.endpoint.address`, problems, 'is not supported (only socket_address)');
      if (!sa) {
        problems.push(`${ep}.endpoint.address.socket_address: required`);
        return;
      }
      const sp = `${ep}.endpoint.address.socket_address`;
      rejectUnsupported(sa, ['address', 'port_value', 'protocol', 'ipv4_compat'], sp, problems);
      if (sa.protocol !== undefined && sa.protocol !== 'TCP' && sa.protocol !== 0) problems.push(`${sp}.protocol: only TCP is supported`);
      const address = sa.address ?? '';
      if (!address) problems.push(`${sp}.address: required`);
      else if (requireIp && isIP(address) === 0) problems.push(`${sp}.address: "${address}" is not an IP address (use a STRICT_DNS or LOGICAL_DNS cluster for names)`);
      const port = sa.port_value ?? 0;
      if (!(port >= 1 && port <= 65535)) problems.push(`${sp}.port_value: must be 1-65535, got ${port}`);
      const weight = wrapped(lbe.load_balancing_weight, 1);
      if (weight < 1) problems.push(`${ep}.load_balancing_weight: must be at least 1`);
      const hs = lbe.health_status ?? 'UNKNOWN';
      const health = typeof hs === 'number' ? HEALTH_NAMES[hs] : (hs as HostHealth);
      if (!health || !HEALTH_NAMES.includes(health)) problems.push(`${ep}.health_status: unknown value ${String(hs)}`);
      const metadata: Record<string, Record<string, unknown>> = {};
      for (const [k, v] of Object.entries(lbe.metadata?.filter_metadata ?? {})) metadata[k] = structToJson(v);
      rejectUnsupported(lbe.metadata, ['filter_metadata'], `${ep}.metadata`, problems);
      endpoints.push({ address, port, weight, priority, locality, health: health ?? 'UNKNOWN', metadata, hostname: e.hostname ?? '' });
    });
  });
  return { endpoints, localityWeights, overprovisioningFactor };
}
