// istio.stats as a network filter on TCP chains: Istio's TCP metrics for the connections tcp_proxy carries, reported as
// destination (inbound) or source (outbound).
import { FilterStateFilter } from '../filter-state-filter.js';
import type { NetworkFilterDeps, NetworkReadFilter, NetworkReadFilterFactory } from '../network-filter.js';
import { structToJson } from '../../../xds/struct.js';
import { compileIstioStatsConfig, ISTIO_STATS_FILTER, ISTIO_STATS_TYPE_URL } from './filter.js';
import { workloadLabels, type Reporter, type WorkloadLabels } from './labels.js';
import { IstioTcpMetrics } from './tcp-metrics.js';

/** Connection filter state: how tcp_proxy records this connection. */
export const TCP_STATS = 'istio.stats.tcp';

export interface TcpStatsContext {
  readonly reporter: Reporter;
  readonly self: WorkloadLabels;
  readonly metrics: IstioTcpMetrics;
}

export const istioTcpStatsFilterFactory: NetworkReadFilterFactory = {
  name: ISTIO_STATS_FILTER,
  typeUrl: ISTIO_STATS_TYPE_URL,
  create(config: unknown, path: string, deps: NetworkFilterDeps): NetworkReadFilter {
    // The listener's stat prefix is not known here: without `direction` or SERVER_GATEWAY the reporter is source.
    const { reporter } = compileIstioStatsConfig(config, '');
    const context: TcpStatsContext = { reporter, self: workloadLabels(structToJson(deps.node?.metadata)), metrics: deps.tcpMetrics ?? new IstioTcpMetrics() };
    return new FilterStateFilter(ISTIO_STATS_FILTER, TCP_STATS, context);
  },
};
