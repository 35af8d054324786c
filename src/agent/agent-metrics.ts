// The agent's own metrics under pilot-agent's names (istio_agent_*): scrapes served and failed, startup time, process.

import { UPSTREAM_DURATION_BUCKETS, type DnsProxyStats } from './dns/dns-proxy.js';

export type ScrapeType = 'envoy' | 'application' | 'agent';

/** pilot-agent's scrape counters and startup gauge, plus the process collector Istio registers with the same prefix. */
export class AgentMetrics {
  scrapes = 0;
  readonly failures: Record<ScrapeType, number> = { envoy: 0, application: 0, agent: 0 };
  /** Seconds from process start to the first successful readiness check (unset until then). */
  startupSeconds: number | undefined;
  /** The DNS proxy's counters when it runs (trellis proxy --dns-port): Istio's istio_agent_dns_* families. */
  dns: DnsProxyStats | undefined;

  recordReady(): void {
    if (this.startupSeconds === undefined) this.startupSeconds = process.uptime();
  }

  /** Prometheus text format 0.0.4. */
  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string, samples: ReadonlyArray<[string, number]>): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    family('istio_agent_scrapes_total', 'counter', 'The total number of scrapes.', [['', this.scrapes]]);
    family('istio_agent_scrape_failures_total', 'counter', 'The total number of failed scrapes.', (['agent', 'application', 'envoy'] as const).map((t) => [`{type="${t}"}`, this.failures[t]]));
    if (this.startupSeconds !== undefined) family('istio_agent_startup_duration_seconds', 'gauge', 'The time from the process starting to being marked ready.', [['', this.startupSeconds]]);
    if (this.dns) {
      const d = this.dns;
      family('istio_agent_dns_requests_total', 'counter', 'Total number of DNS requests.', [['', d.requests]]);
      family('istio_agent_dns_upstream_requests_total', 'counter', 'Total number of DNS requests forwarded to upstream.', [['', d.upstream_requests]]);
      family('istio_agent_dns_upstream_failures_total', 'counter', 'Total number of DNS requests forwarded to upstream.', [['', d.upstream_failures]]);
      lines.push('# HELP istio_agent_dns_upstream_request_duration_seconds Total time in seconds Istio takes to get DNS response from upstream.', '# TYPE istio_agent_dns_upstream_request_duration_seconds histogram');
      UPSTREAM_DURATION_BUCKETS.forEach((bound, i) => lines.push(`istio_agent_dns_upstream_request_duration_seconds_bucket{le="${bound}"} ${d.upstream_duration.buckets[i]}`));
      lines.push(`istio_agent_dns_upstream_request_duration_seconds_bucket{le="+Inf"} ${d.upstream_duration.count}`);
      lines.push(`istio_agent_dns_upstream_request_duration_seconds_sum ${d.upstream_duration.sum}`, `istio_agent_dns_upstream_request_duration_seconds_count ${d.upstream_duration.count}`);
    }
    const cpu = process.cpuUsage();
    family('istio_agent_process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [['', (cpu.user + cpu.system) / 1e6]]);
    family('istio_agent_process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [['', process.memoryUsage.rss()]]);
    family('istio_agent_process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', [['', Math.round((Date.now() / 1000 - process.uptime()) * 1000) / 1000]]);
    return `${lines.join('\n')}\n`;
  }
}
