// istio.stats: records Istio's standard request metrics when a stream completes, as source or destination reporter.
import { XdsValidationError } from '../../../common/errors.js';
import type { google } from '../../../xds/generated/types.js';
import type { FilterFactoryContext, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../../http/filter.js';
import { structToJson } from '../../../xds/struct.js';
import { readStructConfig } from '../struct-config.js';
import { DOWNSTREAM_PEER, UPSTREAM_PEER, type PeerMetadata } from '../metadata-exchange/peer-metadata.js';
import { istioLabels, workloadLabels, type Reporter, type WorkloadLabels } from './labels.js';
import type { IstioMetrics } from './metrics.js';

export const ISTIO_STATS_FILTER = 'istio.stats';
/** Istio's config type. Trellis has no codec for it: the control plane sends its fields as a google.protobuf.Struct (found by name). */
export const ISTIO_STATS_TYPE_URL = 'type.googleapis.com/stats.PluginConfig';

export interface IstioStatsConfig {
  readonly reporter: Reporter;
}

const FIELDS = ['reporter', 'direction', 'disable_host_header_fallback'];

/**
 * The Struct form of stats.PluginConfig: `reporter` (Istio's UNSPECIFIED | SERVER_GATEWAY) and Trellis's `direction`
 * (INBOUND | OUTBOUND), standing in for the listener traffic_direction Istio's plugin reads, which a Trellis filter
 * does not see. UNSPECIFIED infers the reporter from the direction, else from an `inbound` stat prefix.
 */
export function compileIstioStatsConfig(config: unknown, statPrefix: string): IstioStatsConfig {
  const problems: string[] = [];
  const json = readStructConfig(config, FIELDS, problems);
  const reporter = json['reporter'] ?? 'UNSPECIFIED';
  if (reporter !== 'UNSPECIFIED' && reporter !== 'SERVER_GATEWAY') problems.push(`reporter: expected UNSPECIFIED or SERVER_GATEWAY, got ${JSON.stringify(reporter)}`);
  const direction = json['direction'];
  if (direction !== undefined && direction !== 'INBOUND' && direction !== 'OUTBOUND') problems.push(`direction: expected INBOUND or OUTBOUND, got ${JSON.stringify(direction)}`);
  if (problems.length > 0) throw new XdsValidationError(problems);
  if (reporter === 'SERVER_GATEWAY') return { reporter: 'destination' };
  const inbound = direction === undefined ? statPrefix.startsWith('inbound') : direction === 'INBOUND';
  return { reporter: inbound ? 'destination' : 'source' };
}

class IstioStatsFilter implements HttpFilter {
  readonly name = ISTIO_STATS_FILTER;
  constructor(
    private readonly reporter: Reporter,
    private readonly self: WorkloadLabels,
    private readonly metrics: IstioMetrics,
  ) {}

  onStreamComplete(ctx: HttpFilterContext): void {
    const info = ctx.info;
    const peer = info.filterState.get(this.reporter === 'destination' ? DOWNSTREAM_PEER : UPSTREAM_PEER) as PeerMetadata | undefined;
    const end = info.endTime ?? performance.now();
    this.metrics.record({
      labels: istioLabels(this.reporter, this.self, peer, info),
      durationMs: Math.max(0, end - info.startTime),
      requestBytes: info.bytesReceived,
      responseBytes: info.bytesSent,
    });
  }
}

/** The factory, bound to this proxy's node metadata and its metrics store (shown on /stats/prometheus). */
export function istioStatsFilterFactory(deps: { readonly nodeMetadata?: google.protobuf.Struct; readonly metrics: IstioMetrics }): HttpFilterFactory {
  const self = workloadLabels(structToJson(deps.nodeMetadata));
  return {
    name: ISTIO_STATS_FILTER,
    typeUrl: ISTIO_STATS_TYPE_URL,
    create(config: unknown, context: FilterFactoryContext): HttpFilter {
      return new IstioStatsFilter(compileIstioStatsConfig(config, context.statPrefix).reporter, self, deps.metrics);
    },
  };
}
