// trellis.filters.http.tracing: the HCM's tracing (Envoy's HttpConnectionManager.Tracing) as the first HTTP filter — one span per stream, propagated and exported.
import { performance } from 'node:perf_hooks';
import { XdsValidationError } from '../../../common/errors.js';
import { unpackAny } from '../../../xds/codec.js';
import type { envoy, google } from '../../../xds/generated/types.js';
import type { FilterStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../../http/filter.js';
import { headerValue } from '../../http/headers.js';
import { formatResponseFlags } from '../../http/response-flags.js';
import { structToJson } from '../../../xds/struct.js';
import type { FinishedSpan, SpanKind } from './span.js';
import { SpanExporter, type ExportFormat } from './span-exporter.js';
import { extractContext, injectContext, randomId, type SpanContext } from './trace-context.js';

type HcmTracing = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing;

export const TRACING_FILTER_NAME = 'trellis.filters.http.tracing';
/** The filter's typed_config is Envoy's own HCM `tracing` message, so the control plane writes what it would write into the HCM. */
export const TRACING_MESSAGE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing';
export const TRACING_TYPE_URL = `type.googleapis.com/${TRACING_MESSAGE}`;
export const ZIPKIN_PROVIDER = 'envoy.tracers.zipkin';
export const OPENTELEMETRY_PROVIDER = 'envoy.tracers.opentelemetry';

/** Who this proxy is, for the node_id/zone tags and the reported service name. */
export interface TracingNode {
  readonly id: string;
  /** node.cluster (Envoy's --service-cluster): the span's service name. */
  readonly cluster: string;
  readonly zone?: string;
}

/** Exporters shared by every HCM and config generation of one proxy, keyed by format and URL. */
export class SpanExporterPool {
  private readonly exporters = new Map<string, SpanExporter>();
  constructor(private readonly defaults: { readonly flushIntervalMs?: number; readonly batchSize?: number } = {}) {}

  get(format: ExportFormat, url: string, serviceName: string): SpanExporter {
    const key = `${format} ${url} ${serviceName}`;
    let exporter = this.exporters.get(key);
    if (!exporter) {
      exporter = new SpanExporter({ format, url, source: { serviceName }, ...this.defaults });
      this.exporters.set(key, exporter);
    }
    return exporter;
  }
  all(): SpanExporter[] {
    return [...this.exporters.values()];
  }
  async close(): Promise<void> {
    await Promise.all(this.all().map((e) => e.close()));
    this.exporters.clear();
  }
}

type CustomTag = (ctx: HttpFilterContext) => string | undefined;

export interface CompiledTracing {
  readonly direction: 'INBOUND' | 'OUTBOUND';
  /** Probabilities 0..1. */
  readonly randomSampling: number;
  readonly clientSampling: number;
  readonly overallSampling: number;
  readonly maxPathTagLength: number;
  readonly customTags: readonly (readonly [string, CustomTag])[];
  readonly exporter?: SpanExporter;
  /** ZipkinConfig trace_id_128bit (Istio: true unless enable64bitTraceId); new traces get 64-bit ids when false. */
  readonly traceId128: boolean;
}

function percent(p: { value?: number } | undefined, path: string, problems: string[]): number {
  // An absent Percent is Envoy's default 100%; a present one with value unset (proto3 zero) is 0%.
  const v = p === undefined ? 100 : (p.value ?? 0);
  if (!(v >= 0 && v <= 100)) problems.push(`${path}.value: expected a percentage 0..100, got ${v}`);
  return Math.min(1, Math.max(0, v / 100));
}

function compileProvider(provider: HcmTracing['provider'], node: TracingNode, pool: SpanExporterPool, problems: string[]): { exporter?: SpanExporter; traceId128: boolean } {
  if (!provider) return { traceId128: true };
  const exporter = compileExporter(provider, node, pool, problems);
  const config = provider.typed_config ? structOf(provider.typed_config) : {};
  return { ...(exporter ? { exporter } : {}), traceId128: config['trace_id_128bit'] !== false };
}

function structOf(any: NonNullable<NonNullable<HcmTracing['provider']>['typed_config']>): Record<string, unknown> {
  try {
    return structToJson(unpackAny<google.protobuf.Struct>(any, 'type.googleapis.com/google.protobuf.Struct'));
  } catch {
    return {};
  }
}

function compileExporter(provider: NonNullable<HcmTracing['provider']>, node: TracingNode, pool: SpanExporterPool, problems: string[]): SpanExporter | undefined {
  const name = provider.name ?? '';
  let config: Record<string, unknown> = {};
  if (provider.typed_config) {
    try {
      config = structToJson(unpackAny<google.protobuf.Struct>(provider.typed_config, 'type.googleapis.com/google.protobuf.Struct'));
    } catch (err) {
      problems.push(`provider.typed_config: ${(err as Error).message} (Trellis reads the provider's fields from a google.protobuf.Struct)`);
      return undefined;
    }
  }
  const serviceName = typeof config['service_name'] === 'string' && config['service_name'] ? config['service_name'] : node.cluster;
  if (name === ZIPKIN_PROVIDER) {
    const address = config['collector_address'];
    const endpoint = typeof config['collector_endpoint'] === 'string' ? config['collector_endpoint'] : '/api/v2/spans';
    const version = config['collector_endpoint_version'];
    if (version !== undefined && version !== 'HTTP_JSON') problems.push(`provider.typed_config.collector_endpoint_version: only HTTP_JSON is supported, got ${String(version)}`);
    if (typeof address !== 'string' || !/^[^\s/]+:\d+$/.test(address)) {
      problems.push('provider.typed_config.collector_address: expected host:port of the Zipkin collector');
      return undefined;
    }
    return pool.get('zipkin', `http://${address}${endpoint.startsWith('/') ? '' : '/'}${endpoint}`, serviceName);
  }
  if (name === OPENTELEMETRY_PROVIDER) {
    const uri = ((config['http_service'] as Record<string, unknown> | undefined)?.['http_uri'] as Record<string, unknown> | undefined)?.['uri'];
    if (typeof uri !== 'string' || !/^http:\/\/[^\s/]+(\/\S*)?$/.test(uri)) {
      problems.push('provider.typed_config.http_service.http_uri.uri: expected http://host:port/v1/traces (OTLP/HTTP; gRPC export is not supported)');
      return undefined;
    }
    const url = new URL(uri);
    if (url.pathname === '/') url.pathname = '/v1/traces';
    return pool.get('otlp', url.toString(), serviceName);
  }
  problems.push(`provider.name: ${name || '(empty)'} is not supported (${ZIPKIN_PROVIDER}, ${OPENTELEMETRY_PROVIDER})`);
  return undefined;
}

function compileCustomTags(tags: HcmTracing['custom_tags'], problems: string[]): [string, CustomTag][] {
  const out: [string, CustomTag][] = [];
  (tags ?? []).forEach((t, i) => {
    const name = t.tag ?? '';
    if (!name) problems.push(`custom_tags[${i}].tag: required`);
    if (t.literal) {
      const value = t.literal.value ?? '';
      out.push([name, () => value]);
    } else if (t.request_header) {
      const header = (t.request_header.name ?? '').toLowerCase();
      const fallback = t.request_header.default_value;
      out.push([name, (ctx) => headerValue(ctx.requestHeaders, header) ?? fallback]);
    } else if (t.environment) {
      const value = process.env[t.environment.name ?? ''] ?? t.environment.default_value;
      out.push([name, () => value]);
    } else problems.push(`custom_tags[${i}]: only literal, request_header and environment tags are supported`);
  });
  return out;
}

/** Validates and compiles the tracing config; `direction` is the listener's traffic_direction. */
export function compileTracing(config: HcmTracing, direction: 'INBOUND' | 'OUTBOUND', node: TracingNode, pool: SpanExporterPool): CompiledTracing {
  const problems: string[] = [];
  if (config.verbose) problems.push('verbose: not supported by Trellis');
  if (config.spawn_upstream_span?.value) problems.push('spawn_upstream_span: not supported by Trellis (one span per stream)');
  const compiled: CompiledTracing = {
    direction,
    randomSampling: percent(config.random_sampling, 'random_sampling', problems),
    clientSampling: percent(config.client_sampling, 'client_sampling', problems),
    overallSampling: percent(config.overall_sampling, 'overall_sampling', problems),
    maxPathTagLength: config.max_path_tag_length?.value ?? 256,
    customTags: compileCustomTags(config.custom_tags, problems),
    ...compileProvider(config.provider, node, pool, problems),
  };
  if (problems.length) throw new XdsValidationError(problems);
  return compiled;
}

const STATE_KEY = TRACING_FILTER_NAME;

interface ActiveSpan {
  readonly context: SpanContext;
  readonly url: string;
  readonly method: string;
  readonly userAgent: string;
  readonly downstreamCluster: string;
  readonly fallbackName: string;
  operation?: string;
}

export class TracingFilter implements HttpFilter {
  readonly name = TRACING_FILTER_NAME;
  private readonly kind: SpanKind;

  constructor(
    private readonly config: CompiledTracing,
    private readonly node: TracingNode,
    private readonly stats: Record<string, number>,
  ) {
    this.kind = config.direction === 'INBOUND' ? 'SERVER' : 'CLIENT';
    stats['tracing.random_sampling'] ??= 0;
    stats['tracing.service_forced'] ??= 0;
    stats['tracing.client_enabled'] ??= 0;
    stats['tracing.not_traceable'] ??= 0;
  }

  /** Envoy's decision when the caller made none: x-envoy-force-trace, then x-client-trace-id with client_sampling, then random_sampling; overall_sampling last. */
  private decide(ctx: HttpFilterContext): boolean {
    const h = ctx.requestHeaders;
    let traced: boolean;
    if (h['x-envoy-force-trace'] !== undefined) {
      this.stats['tracing.service_forced']!++;
      traced = true;
    } else if (h['x-client-trace-id'] !== undefined && Math.random() < this.config.clientSampling) {
      this.stats['tracing.client_enabled']!++;
      traced = true;
    } else if (Math.random() < this.config.randomSampling) {
      this.stats['tracing.random_sampling']!++;
      traced = true;
    } else {
      this.stats['tracing.not_traceable']!++;
      traced = false;
    }
    return traced && (this.config.overallSampling >= 1 || Math.random() < this.config.overallSampling);
  }

  onRequestHeaders(ctx: HttpFilterContext): FilterStatus {
    const h = ctx.requestHeaders;
    const incoming = extractContext(h);
    const parent = incoming.context;
    const sampled = parent?.sampled ?? incoming.sampled ?? this.decide(ctx);
    const span: SpanContext = {
      traceId: parent?.traceId ?? randomId(this.config.traceId128 ? 16 : 8),
      spanId: randomId(8),
      ...(parent ? { parentSpanId: parent.spanId } : {}),
      sampled,
      ...(parent?.debug ? { debug: true } : {}),
      ...(parent?.traceState ? { traceState: parent.traceState } : {}),
    };
    // The router forwards these: the upstream request carries this hop's span as its parent.
    injectContext(h, span);
    const authority = headerValue(h, ':authority') ?? '';
    const route = ctx.route();
    let operation = route?.operation;
    if (this.config.direction === 'INBOUND') {
      // Envoy: on ingress an x-envoy-decorator-operation from the caller names the span; it is never forwarded.
      const fromCaller = headerValue(h, 'x-envoy-decorator-operation');
      if (fromCaller) operation = fromCaller;
      delete h['x-envoy-decorator-operation'];
    } else if (operation) {
      h['x-envoy-decorator-operation'] = operation;
    }
    if (!sampled) return 'continue';
    const path = headerValue(h, ':path') ?? '';
    const state: ActiveSpan = {
      context: span,
      url: `${headerValue(h, ':scheme') ?? 'http'}://${authority}${path.length > this.config.maxPathTagLength ? path.slice(0, this.config.maxPathTagLength) : path}`,
      method: headerValue(h, ':method') ?? '',
      userAgent: headerValue(h, 'user-agent') ?? '-',
      downstreamCluster: headerValue(h, 'x-envoy-downstream-service-cluster') ?? '-',
      fallbackName: this.config.direction === 'INBOUND' ? 'ingress' : `egress ${authority}`,
      ...(operation ? { operation } : {}),
    };
    ctx.info.filterState.set(STATE_KEY, state);
    return 'continue';
  }

  onStreamComplete(ctx: HttpFilterContext): void {
    const state = ctx.info.filterState.get(STATE_KEY) as ActiveSpan | undefined;
    if (!state || !this.config.exporter) return;
    const info = ctx.info;
    const end = info.endTime ?? performance.now();
    const code = info.responseCode;
    const tags: Record<string, string> = {
      component: 'proxy',
      node_id: this.node.id,
      zone: this.node.zone ?? '',
      'guid:x-request-id': info.requestId,
      'http.url': state.url,
      'http.method': state.method,
      downstream_cluster: state.downstreamCluster,
      user_agent: state.userAgent,
      'http.protocol': info.protocol,
      'peer.address': info.downstreamRemoteAddress,
      request_size: String(info.bytesReceived),
      response_size: String(info.bytesSent),
      response_flags: formatResponseFlags(info.responseFlags),
      'http.status_code': String(code ?? 0),
    };
    if (!this.node.zone) delete tags['zone'];
    if (info.upstreamCluster) {
      tags['upstream_cluster'] = info.upstreamCluster;
      tags['upstream_cluster.name'] = info.upstreamCluster;
    }
    if (info.upstreamHost) tags['upstream_address'] = info.upstreamHost;
    // Envoy: no response code (reset) or a 5xx marks the span as an error.
    if (code === undefined || code >= 500) tags['error'] = 'true';
    for (const [name, tag] of this.config.customTags) {
      const v = tag(ctx);
      if (v !== undefined) tags[name] = v;
    }
    const span: FinishedSpan = {
      traceId: state.context.traceId,
      spanId: state.context.spanId,
      ...(state.context.parentSpanId ? { parentSpanId: state.context.parentSpanId } : {}),
      name: state.operation ?? state.fallbackName,
      kind: this.kind,
      startMicros: Math.round((performance.timeOrigin + info.startTime) * 1000),
      durationMicros: Math.max(0, Math.round((end - info.startTime) * 1000)),
      tags,
      ...(state.context.debug ? { debug: true } : {}),
    };
    this.config.exporter.add(span);
  }
}

/**
 * The factory: the filter's typed_config is an HttpConnectionManager.Tracing message. The span kind follows the
 * listener's traffic_direction (FilterFactoryContext.trafficDirection) when the HCM passes it, else Istio's stat
 * prefix convention (`inbound_…` and `InboundPassthroughClusterIpv4` are INBOUND, everything else — outbound sidecar and gateway listeners — OUTBOUND).
 */
export function tracingFilterFactory(deps: { readonly node: TracingNode; readonly exporters: SpanExporterPool }): HttpFilterFactory {
  return {
    name: TRACING_FILTER_NAME,
    typeUrl: TRACING_TYPE_URL,
    create(config, context) {
      const direction = context.trafficDirection ?? (/^inbound/i.test(context.statPrefix) ? 'INBOUND' : 'OUTBOUND');
      const compiled = compileTracing(config as HcmTracing, direction, deps.node, deps.exporters);
      return new TracingFilter(compiled, deps.node, context.stats ?? {});
    },
  };
}
