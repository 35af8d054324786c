// The HTTP filter registry, keyed by Envoy filter name and typed_config type URL; each filter is one file listed here.
import type { HttpFilterFactory } from '../http/filter.js';
import type { ClusterManager } from '../upstream/types.js';
import { corsFilterFactory } from './cors.js';
import { extAuthzFilterFactory } from './ext-authz.js';
import { faultFilterFactory } from './fault.js';
import { httpRbacFilterFactory } from './rbac/http-rbac.js';
import { jwtAuthnFilterFactory, type JwtFilterLog } from './jwt-authn/filter.js';
import { routerFilterFactory } from './router-filter.js';
import { istioStatsFilterFactory } from './istio-stats/filter.js';
import { IstioMetrics } from './istio-stats/metrics.js';
import { metadataExchangeFilterFactory, type LocalNode } from './metadata-exchange/filter.js';
import { SpanExporterPool, tracingFilterFactory } from './tracing/tracing-filter.js';

export class HttpFilterRegistry {
  private readonly names = new Map<string, HttpFilterFactory>();
  private readonly typeUrls = new Map<string, HttpFilterFactory>();

  register(factory: HttpFilterFactory): this {
    this.names.set(factory.name, factory);
    this.typeUrls.set(factory.typeUrl, factory);
    if (factory.routeConfigTypeUrl) this.typeUrls.set(factory.routeConfigTypeUrl, factory);
    return this;
  }
  byName(name: string): HttpFilterFactory | undefined {
    return this.names.get(name);
  }
  byTypeUrl(typeUrl: string): HttpFilterFactory | undefined {
    return this.typeUrls.get(typeUrl);
  }
}

/** The filters Trellis ships: fault, CORS, JWT authentication and the router (the last two need the live cluster manager). */
export function createHttpFilterRegistry(deps: {
  readonly clusters: ClusterManager;
  readonly log?: JwtFilterLog;
  /** This proxy's node: istio.metadata_exchange sends it, istio.stats labels its own side with it. */
  readonly node?: LocalNode;
  /** Where istio.stats records (main shows it on /stats/prometheus). */
  readonly istioMetrics?: IstioMetrics;
  /** Span exporters of trellis.filters.http.tracing, shared by every HCM (main may close them at shutdown). */
  readonly spanExporters?: SpanExporterPool;
}): HttpFilterRegistry {
  const node = deps.node ?? { id: '' };
  return new HttpFilterRegistry()
    .register(metadataExchangeFilterFactory(node))
    .register(istioStatsFilterFactory({ ...(node.metadata ? { nodeMetadata: node.metadata } : {}), metrics: deps.istioMetrics ?? new IstioMetrics() }))
    .register(tracingFilterFactory({ node: tracingNodeOf(node), exporters: deps.spanExporters ?? new SpanExporterPool() }))
    .register(faultFilterFactory)
    .register(httpRbacFilterFactory)
    .register(extAuthzFilterFactory(deps.clusters))
    .register(corsFilterFactory)
    .register(jwtAuthnFilterFactory({ clusters: deps.clusters, ...(deps.log ? { log: deps.log } : {}) }))
    .register(routerFilterFactory(deps.clusters));
}

/** node_id, zone and the service name (node.cluster) for spans, from whatever node main passes. */
function tracingNodeOf(node: LocalNode & { readonly cluster?: string; readonly locality?: { readonly zone?: string } }): { id: string; cluster: string; zone?: string } {
  return { id: node.id, cluster: node.cluster ?? '', ...(node.locality?.zone ? { zone: node.locality.zone } : {}) };
}
