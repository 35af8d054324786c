// The tracing HTTP filter (trellis.filters.http.tracing, config = Envoy's HCM Tracing) of one proxy and direction, from Telemetry `tracing` and MeshConfig, as Istio's configureTracing builds the HCM's `tracing`.
//
// Levels and directions are chosen as for access logs (telemetry-selection.ts); each level's matching entries override
// providers, randomSamplingPercentage and disableSpanReporting and add customTags. Without any Telemetry tracing, MeshConfig defaultProviders.tracing applies,
// else the legacy `enableTracing` + `defaultConfig.tracing.zipkin.address`. Sampling: Telemetry's percentage, else
// `defaultConfig.tracing.sampling`, else Istio's default 1%.
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { Tracing as TelemetryTracing } from '../../../api/telemetry/telemetry.js';
import type { Telemetry } from '../../../api/kinds.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import { toStruct } from '../common/protobuf-values.js';
import { extensionProvider, modeApplies, telemetryLevels, type TelemetryDirection, type TelemetryProxy } from './telemetry-selection.js';

type HcmTracing = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing;
type CustomTag = envoy.type.tracing.v3.CustomTag;
export type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;

export const TRACING_FILTER_NAME = 'trellis.filters.http.tracing';
export const TRACING_MESSAGE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing';
const STRUCT_MESSAGE = 'google.protobuf.Struct';
/** Istio's default when neither Telemetry nor defaultConfig.tracing.sampling sets one (PILOT_TRACE_SAMPLING). */
export const DEFAULT_SAMPLING_PERCENT = 1;

/** Istio's MeshConfig.ExtensionProvider.ZipkinTracingProvider, YAML field names. */
export interface ZipkinTracingProvider {
  readonly service: string;
  readonly port: number;
  readonly maxTagLength?: number;
  readonly enable64bitTraceId?: boolean;
  readonly path?: string;
}

/** Istio's MeshConfig.ExtensionProvider.OpenTelemetryTracingProvider (only `http` export is supported by Trellis's proxy). */
export interface OpenTelemetryTracingProvider {
  readonly service: string;
  readonly port: number;
  readonly maxTagLength?: number;
  /** OTLP/HTTP export; without it Istio exports over gRPC, which Trellis's proxy does not (the provider is then skipped). */
  readonly http?: { readonly path?: string; readonly timeout?: string };
  readonly grpc?: Readonly<Record<string, unknown>>;
}

/** The MeshConfig fields tracing reads beyond the shared model (filled by the mesh config parser when it knows them). */
export interface TracingMeshConfig extends MeshConfig {
  /** Istio's `enableTracing` (default true). */
  readonly enableTracing?: boolean;
  readonly defaultConfig?: { readonly tracing?: { readonly sampling?: number; readonly zipkin?: { readonly address?: string } } };
}

export type TracingProvider = { readonly kind: 'zipkin'; readonly config: ZipkinTracingProvider } | { readonly kind: 'opentelemetry'; readonly config: OpenTelemetryTracingProvider };

export interface MergedTracing {
  provider?: string;
  sampling?: number;
  disabled: boolean;
  customTags: Map<string, NonNullable<TelemetryTracing['customTags']>[string]>;
}

/** The merged Telemetry tracing for a direction, or undefined when no Telemetry has a matching tracing entry. */
export function mergeTracing(levels: readonly Telemetry[], direction: TelemetryDirection): MergedTracing | undefined {
  let merged: MergedTracing | undefined;
  for (const t of levels) {
    for (const entry of t.spec.tracing ?? []) {
      if (!modeApplies(entry.match?.mode, direction)) continue;
      merged ??= { disabled: false, customTags: new Map() };
      // Istio supports one tracing provider per proxy: the first named.
      const name = entry.providers?.find((p) => p.name)?.name;
      if (name) merged.provider = name;
      if (entry.randomSamplingPercentage !== undefined) merged.sampling = entry.randomSamplingPercentage;
      if (entry.disableSpanReporting !== undefined) merged.disabled = entry.disableSpanReporting;
      for (const [tag, value] of Object.entries(entry.customTags ?? {})) merged.customTags.set(tag, value);
    }
  }
  return merged;
}

function meshTracingProvider(mesh: MeshConfig, name: string): TracingProvider | undefined {
  const p = extensionProvider(mesh, name);
  // The mesh config parser checked service and port of these two kinds (extension-providers.ts).
  if (p?.zipkin) return { kind: 'zipkin', config: p.zipkin as unknown as ZipkinTracingProvider };
  if (p?.opentelemetry) return { kind: 'opentelemetry', config: p.opentelemetry as unknown as OpenTelemetryTracingProvider };
  return undefined;
}

function canonicalService(proxy: TelemetryProxy): string {
  return proxy.labels['service.istio.io/canonical-name'] ?? proxy.labels['app.kubernetes.io/name'] ?? proxy.labels['app'] ?? 'unknown';
}

function canonicalRevision(proxy: TelemetryProxy): string {
  return proxy.labels['service.istio.io/canonical-revision'] ?? proxy.labels['app.kubernetes.io/version'] ?? proxy.labels['version'] ?? 'latest';
}

/** Envoy's tracer provider config, as the fields Trellis's proxy reads from a google.protobuf.Struct (docs/observability.md). */
function providerConfig(provider: TracingProvider, serviceName: string): HcmTracing['provider'] {
  if (provider.kind === 'zipkin') {
    const z = provider.config;
    return {
      name: 'envoy.tracers.zipkin',
      typed_config: packAny(STRUCT_MESSAGE, toStruct({
        collector_address: `${z.service}:${z.port}`,
        collector_endpoint: z.path || '/api/v2/spans',
        collector_endpoint_version: 'HTTP_JSON',
        collector_hostname: z.service,
        trace_id_128bit: z.enable64bitTraceId !== true,
        shared_span_context: false,
        service_name: serviceName,
      })),
    };
  }
  const o = provider.config;
  const path = o.http?.path ? (o.http.path.startsWith('/') ? o.http.path : `/${o.http.path}`) : '/v1/traces';
  return {
    name: 'envoy.tracers.opentelemetry',
    typed_config: packAny(STRUCT_MESSAGE, toStruct({
      service_name: serviceName,
      http_service: { http_uri: { uri: `http://${o.service}:${o.port}${path}`, ...(o.http?.timeout ? { timeout: o.http.timeout } : {}) } },
    })),
  };
}

function customTags(proxy: TelemetryProxy, mesh: MeshConfig, telemetryTags: MergedTracing['customTags'] | undefined): CustomTag[] {
  // Istio's standard tags on every span (buildServiceTags / optionalPolicyTags).
  const tags: CustomTag[] = [
    { tag: 'istio.canonical_revision', literal: { value: canonicalRevision(proxy) } },
    { tag: 'istio.canonical_service', literal: { value: canonicalService(proxy) } },
    { tag: 'istio.mesh_id', literal: { value: mesh.trustDomain } },
    { tag: 'istio.namespace', literal: { value: proxy.namespace } },
  ];
  for (const [tag, v] of telemetryTags ?? []) {
    if (v.literal) tags.push({ tag, literal: { value: v.literal.value ?? '' } });
    else if (v.environment) tags.push({ tag, environment: { name: v.environment.name ?? '', ...(v.environment.defaultValue ? { default_value: v.environment.defaultValue } : {}) } });
    else if (v.header) tags.push({ tag, request_header: { name: v.header.name ?? '', ...(v.header.defaultValue ? { default_value: v.header.defaultValue } : {}) } });
  }
  return tags;
}

/** The tracer and sampling one HCM's tracing filter gets, once Telemetry, MeshConfig and defaults are resolved. */
export interface ResolvedTracing {
  readonly provider: TracingProvider;
  readonly sampling: number;
  readonly customTags: MergedTracing['customTags'] | undefined;
}

/**
 * Tracing for the proxy whose Telemetry levels (telemetryLevels) are `levels`, in `direction`, or undefined when it is
 * off (no provider, span reporting disabled, or a provider Trellis cannot export to: only zipkin and opentelemetry
 * over HTTP). Nothing of the proxy is read beyond its levels, so this is what its HCMs share with others.
 */
export function resolveTracing(levels: readonly Telemetry[], direction: TelemetryDirection, mesh: TracingMeshConfig): ResolvedTracing | undefined {
  const merged = mergeTracing(levels, direction);
  if (merged?.disabled) return undefined;
  const providerName = merged?.provider ?? mesh.defaultProviders?.tracing?.[0];
  let provider: TracingProvider | undefined;
  if (providerName !== undefined) provider = meshTracingProvider(mesh, providerName);
  else if (mesh.enableTracing !== false && mesh.defaultConfig?.tracing?.zipkin?.address) {
    const address = mesh.defaultConfig.tracing.zipkin.address;
    const colon = address.lastIndexOf(':');
    const port = Number(address.slice(colon + 1));
    if (colon > 0 && Number.isInteger(port)) provider = { kind: 'zipkin', config: { service: address.slice(0, colon), port } };
  }
  // Istio's OpenTelemetry provider exports over gRPC unless `http` is set; Trellis's proxy speaks OTLP/HTTP only.
  if (!provider || (provider.kind === 'opentelemetry' && !provider.config.http)) return undefined;
  const sampling = merged?.sampling ?? mesh.defaultConfig?.tracing?.sampling ?? DEFAULT_SAMPLING_PERCENT;
  return { provider, sampling, customTags: merged?.customTags };
}

/** What tracingFilter reads of the proxy (its namespace, canonical service and revision), as a cache key part. */
export function tracingProxyKey(proxy: TelemetryProxy): string {
  return `${proxy.namespace}|${canonicalService(proxy)}|${canonicalRevision(proxy)}`;
}

/** The tracing HTTP filter for `proxy` from its resolved tracing: the proxy gives the span tags and the service name. */
export function tracingFilter(resolved: ResolvedTracing, proxy: TelemetryProxy, mesh: MeshConfig): HttpFilter {
  const { provider, sampling } = resolved;
  const tracing: HcmTracing = {
    client_sampling: { value: 100 },
    random_sampling: { value: Math.min(100, Math.max(0, sampling)) },
    overall_sampling: { value: 100 },
    max_path_tag_length: { value: provider.config.maxTagLength || 256 },
    custom_tags: customTags(proxy, mesh, resolved.customTags),
    provider: providerConfig(provider, `${canonicalService(proxy)}.${proxy.namespace}`),
  };
  return { name: TRACING_FILTER_NAME, typed_config: packAny(TRACING_MESSAGE, tracing) };
}

/** The tracing filter for one HCM of `proxy` in `direction`, or undefined when tracing is off for it (resolveTracing). */
export function buildTracingFilter(telemetries: readonly Telemetry[], proxy: TelemetryProxy, direction: TelemetryDirection, mesh: TracingMeshConfig): HttpFilter | undefined {
  const resolved = resolveTracing(telemetryLevels(telemetries, proxy, mesh.rootNamespace), direction, mesh);
  return resolved && tracingFilter(resolved, proxy, mesh);
}

/** `{ tracingHttpFilter }` for HttpConnectionManagerOptions (the HCM builder puts it first): none without a proxy. */
export function tracingOption(context: { mesh: MeshConfig; proxy?: Proxy; push?: PushContext }, direction: TelemetryDirection): { tracingHttpFilter?: HttpFilter } {
  if (!context.proxy) return {};
  const telemetries = context.push ? context.push.telemetry(context.proxy) : [];
  const filter = buildTracingFilter(telemetries, context.proxy, direction, context.mesh as TracingMeshConfig);
  return filter ? { tracingHttpFilter: filter } : {};
}
