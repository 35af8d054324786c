// What the dashboard shows, gathered from the mesh itself: proxies' /stats/prometheus (or a Prometheus server) and the control plane's debug API.
import { parsePrometheusText, type Sample } from './prometheus-text.js';
import { buildTrafficGraph, counterIncreases, DURATION_BUCKET, GRAPH_LABELS, REQUESTS_TOTAL, type Snapshot, type TrafficGraph } from './traffic-graph.js';
import { parseConfigz, serviceConfig, type Configz, type ServiceConfig } from './service-config.js';

export interface MeshSourceOptions {
  /** The control plane's monitoring address (`http://127.0.0.1:15014`): /debug/syncz and /debug/configz. */
  readonly monitoringUrl?: string;
  /** Proxies' admin base URLs, each serving /stats/prometheus. */
  readonly proxyAdminUrls: readonly string[];
  /** Query this Prometheus server instead of scraping the proxies. */
  readonly prometheusUrl?: string;
  /** The window rates are computed over, in seconds. */
  readonly windowSeconds?: number;
  readonly timeoutMs?: number;
}

export interface TypeSync {
  readonly state: string;
  readonly nack?: string;
}

export interface ProxySync {
  readonly proxy: string;
  readonly types: Readonly<Record<string, TypeSync>>;
}

export interface SourceStatus {
  readonly url: string;
  readonly ok: boolean;
  readonly error?: string;
}

export interface DashboardState {
  readonly updatedAt: string;
  readonly metricsFrom: 'proxies' | 'prometheus';
  readonly graph: TrafficGraph;
  /** Per graph node: the config that applies to it. */
  readonly services: Readonly<Record<string, ServiceConfig>>;
  readonly sync: readonly ProxySync[];
  readonly configProblems: number;
  readonly sources: readonly SourceStatus[];
}

export class MeshSource {
  private readonly snapshots = new Map<string, Snapshot[]>();
  private readonly windowMs: number;
  private readonly timeoutMs: number;
  private current: DashboardState;

  constructor(private readonly options: MeshSourceOptions) {
    this.windowMs = (options.windowSeconds ?? 30) * 1000;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.current = {
      updatedAt: new Date(0).toISOString(),
      metricsFrom: options.prometheusUrl ? 'prometheus' : 'proxies',
      graph: { nodes: [], edges: [], windowSeconds: null },
      services: {},
      sync: [],
      configProblems: 0,
      sources: [],
    };
  }

  state(): DashboardState {
    return this.current;
  }

  /** Scrapes everything once; a target that fails is reported in `sources` and the rest still count. */
  async refresh(): Promise<DashboardState> {
    const sources: SourceStatus[] = [];
    const [graph, control] = await Promise.all([this.options.prometheusUrl ? this.queryPrometheus(this.options.prometheusUrl, sources) : this.scrapeProxies(sources), this.readControlPlane(sources)]);
    const services: Record<string, ServiceConfig> = {};
    for (const node of graph.nodes) services[node.id] = serviceConfig(control.configz, node.id, node.namespace);
    this.current = {
      updatedAt: new Date().toISOString(),
      metricsFrom: this.options.prometheusUrl ? 'prometheus' : 'proxies',
      graph,
      services,
      sync: control.sync,
      configProblems: control.configz?.problems.length ?? 0,
      sources,
    };
    return this.current;
  }

  private async get(url: string, sources: SourceStatus[]): Promise<string | undefined> {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      const body = await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${body.slice(0, 200)}`);
      sources.push({ url, ok: true });
      return body;
    } catch (err) {
      sources.push({ url, ok: false, error: (err as Error).message });
      return undefined;
    }
  }

  private async scrapeProxies(sources: SourceStatus[]): Promise<TrafficGraph> {
    const now = Date.now();
    const increases: Sample[] = [];
    let span = 0;
    await Promise.all(
      this.options.proxyAdminUrls.map(async (base) => {
        const url = `${base.replace(/\/$/, '')}/stats/prometheus`;
        const text = await this.get(url, sources);
        const history = this.snapshots.get(url) ?? [];
        if (text !== undefined) history.push({ at: now, samples: parsePrometheusText(text).samples });
        // Keep the newest scrape that is at least a window old as the baseline, and everything after it.
        while (history.length > 2 && history[1]!.at <= now - this.windowMs) history.shift();
        this.snapshots.set(url, history);
        const latest = history[history.length - 1];
        if (!latest || latest.at !== now) return; // this target failed now: its old numbers would be stale
        const baseline = history.length > 1 ? history[0] : undefined;
        increases.push(...counterIncreases(baseline, latest));
        if (baseline) span = Math.max(span, (latest.at - baseline.at) / 1000);
      }),
    );
    return buildTrafficGraph(increases, span > 0 ? span : null);
  }

  private async queryPrometheus(base: string, sources: SourceStatus[]): Promise<TrafficGraph> {
    const window = `${Math.round(this.windowMs / 1000)}s`;
    const by = GRAPH_LABELS.join(', ');
    const queries: [string, string][] = [
      [REQUESTS_TOTAL, `sum by (${by}) (increase(${REQUESTS_TOTAL}[${window}]))`],
      [DURATION_BUCKET, `sum by (${by}, le) (increase(${DURATION_BUCKET}[${window}]))`],
    ];
    const samples: Sample[] = [];
    for (const [name, query] of queries) {
      const body = await this.get(`${base.replace(/\/$/, '')}/api/v1/query?query=${encodeURIComponent(query)}`, sources);
      if (body === undefined) continue;
      try {
        samples.push(...promqlVector(name, body));
      } catch (err) {
        sources.push({ url: base, ok: false, error: (err as Error).message });
      }
    }
    return buildTrafficGraph(samples, this.windowMs / 1000);
  }

  private async readControlPlane(sources: SourceStatus[]): Promise<{ sync: ProxySync[]; configz: Configz | undefined }> {
    const base = this.options.monitoringUrl?.replace(/\/$/, '');
    if (!base) return { sync: [], configz: undefined };
    const [syncBody, configBody] = await Promise.all([this.get(`${base}/debug/syncz`, sources), this.get(`${base}/debug/configz`, sources)]);
    let sync: ProxySync[] = [];
    let configz: Configz | undefined;
    try {
      if (syncBody !== undefined) sync = parseSyncz(JSON.parse(syncBody));
      if (configBody !== undefined) configz = parseConfigz(JSON.parse(configBody));
    } catch (err) {
      sources.push({ url: `${base}/debug`, ok: false, error: (err as Error).message });
    }
    return { sync, configz };
  }
}

/** A Prometheus HTTP API instant-vector answer as samples named `name`. */
export function promqlVector(name: string, body: string): Sample[] {
  const parsed = JSON.parse(body) as { status?: string; error?: string; data?: { resultType?: string; result?: { metric?: Record<string, string>; value?: [number, string] }[] } };
  if (parsed.status !== 'success' || parsed.data?.resultType !== 'vector') throw new Error(`Prometheus query failed: ${parsed.error ?? 'not a vector result'}`);
  return (parsed.data.result ?? []).map((r) => ({ name, labels: r.metric ?? {}, value: Number(r.value?.[1] ?? 0) }));
}

/** /debug/syncz's proxies, each type's state and the NACK reason when it has one. */
export function parseSyncz(body: unknown): ProxySync[] {
  if (!Array.isArray(body)) throw new TypeError('/debug/syncz: expected an array of proxies');
  return body.map((p: { proxy?: unknown; types?: Record<string, { state?: unknown; nack?: { message?: unknown } }> }) => {
    const types: Record<string, TypeSync> = {};
    for (const [type, t] of Object.entries(p.types ?? {})) {
      types[type] = { state: String(t.state ?? 'UNKNOWN'), ...(typeof t.nack?.message === 'string' ? { nack: t.nack.message } : {}) };
    }
    return { proxy: String(p.proxy ?? ''), types };
  });
}
