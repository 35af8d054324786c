// A network read filter whose work is done by tcp_proxy: it puts its compiled config in the connection's filter state
// (Istio's TCP istio.stats and istio.metadata_exchange are both read there) and lets every connection through.
import type { DownstreamConnection, NetworkReadFilter } from './network-filter.js';

const NO_STATS: Readonly<Record<string, number>> = Object.freeze({});

export class FilterStateFilter implements NetworkReadFilter {
  /**
   * `value` goes under `key` on each connection; `counters` (updated by tcp_proxy) are shown as `statPrefix` + name,
   * Envoy's names for the filter's stats.
   */
  constructor(
    readonly name: string,
    private readonly key: string,
    private readonly value: unknown,
    private readonly counters?: { readonly statPrefix: string; readonly values: Readonly<Record<string, number>> },
  ) {}

  get stats(): Readonly<Record<string, number>> {
    if (!this.counters) return NO_STATS;
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.counters.values)) out[`${this.counters.statPrefix}${k}`] = v;
    return out;
  }

  onNewConnection(connection: DownstreamConnection): 'continue' {
    connection.filterState.set(this.key, this.value);
    return 'continue';
  }
}
