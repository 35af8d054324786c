// The explicit-proxy outbound listener for local meshes: workloads send HTTP to it through HTTP_PROXY, nothing is captured.
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import { accessLogOption } from '../telemetry/access-log.js';
import { tracingOption } from '../telemetry/tracing.js';
import { httpConnectionManagerFilter, pathNormalizationOption, socketAddress } from '../common/network-filters.js';
import { EXPLICIT_OUTBOUND_ROUTE_NAME } from '../route/route-configuration.js';
import type { Listener } from './listener-context.js';

/**
 * A bound HTTP listener on `address:port` whose connection manager asks RDS for `outbound_http` (every HTTP service's
 * virtual hosts, see buildExplicitRouteConfiguration). Bound, unlike the captured listeners, since no iptables rule
 * hands it connections.
 */
export function buildExplicitOutboundListener(proxy: Proxy, address: string, port: number, mesh?: Pick<MeshConfig, 'pathNormalization'>, push?: PushContext): Listener {
  // Per proxy (not shared), so the proxy's Telemetry access logging (CLIENT) applies here.
  const accessLog = push ? accessLogOption({ mesh: push.mesh, proxy, push }, 'CLIENT') : {};
  const tracing = push ? tracingOption({ mesh: push.mesh, proxy, push }, 'CLIENT') : {};
  return {
    name: EXPLICIT_OUTBOUND_ROUTE_NAME,
    address: socketAddress(address, port),
    filter_chains: [
      {
        name: EXPLICIT_OUTBOUND_ROUTE_NAME,
        filters: [httpConnectionManagerFilter({ statPrefix: EXPLICIT_OUTBOUND_ROUTE_NAME, rdsRouteName: EXPLICIT_OUTBOUND_ROUTE_NAME, useRemoteAddress: false, ...pathNormalizationOption(mesh), ...accessLog, ...tracing })],
      },
    ],
    traffic_direction: 'OUTBOUND',
  };
}
