// Telemetry tracing + MeshConfig → trellis.filters.http.tracing: provider selection and merging by level and mode, sampling precedence, Istio's tags, and the proxy accepting what the control plane writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../../../src/xds/codec.js';
import type { envoy, google } from '../../../../src/xds/generated/types.js';
import type { Telemetry } from '../../../../src/api/kinds.js';
import type { TelemetrySpec } from '../../../../src/api/telemetry/telemetry.js';
import { DEFAULT_MESH_CONFIG } from '../../../../src/control/model/mesh-config.js';
import { parseExtensionProviders } from '../../../../src/control/model/extension-providers.js';
import { buildTracingFilter, TRACING_FILTER_NAME, type TracingMeshConfig, type HttpFilter } from '../../../../src/control/translate/telemetry/tracing.js';
import { structToJson } from '../../../../src/xds/struct.js';
import { SpanExporterPool, tracingFilterFactory, TRACING_TYPE_URL } from '../../../../src/proxy/filters/tracing/tracing-filter.js';

type HcmTracing = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing;

function telemetry(namespace: string, name: string, spec: TelemetrySpec): Telemetry {
  return { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { namespace, name }, spec } as unknown as Telemetry;
}

const proxy = { namespace: 'default', labels: { app: 'reviews', version: 'v2' } };

// Providers as Istio's mesh config YAML spells them (the parser keeps zipkin/opentelemetry bodies under their kind).
const mesh = (extra: Partial<TracingMeshConfig> = {}): TracingMeshConfig => {
  const parsed = parseExtensionProviders([
    { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411, maxTagLength: 100 } },
    { name: 'otel', opentelemetry: { service: 'otel-collector.observability.svc.cluster.local', port: 4318, http: { path: '/v1/traces', timeout: '5s' } } },
    { name: 'otel-grpc', opentelemetry: { service: 'otel-collector', port: 4317 } },
  ]);
  assert.deepEqual(parsed.problems, []);
  return { ...DEFAULT_MESH_CONFIG, extensionProviders: parsed.providers, ...extra };
};

test('extensionProviders: zipkin and opentelemetry keep their fields; a missing service or bad port is reported with its path', () => {
  const bad = parseExtensionProviders([{ name: 'z', zipkin: { port: 9411 } }, { name: 'o', opentelemetry: { service: 'otel', port: 0 } }]);
  assert.deepEqual(bad.problems, [
    'extensionProviders[0].zipkin.service: service must not be empty',
    'extensionProviders[1].opentelemetry.port: port must be in the range [1, 65535], found: 0',
  ]);
});

function decode(filter: HttpFilter | undefined): { tracing: HcmTracing; provider: string; providerConfig: Record<string, unknown> } {
  assert.ok(filter, 'a tracing filter');
  assert.equal(filter.name, TRACING_FILTER_NAME);
  assert.equal(filter.typed_config?.type_url, TRACING_TYPE_URL);
  const tracing = unpackAny<HcmTracing>(filter.typed_config!);
  const providerConfig = structToJson(unpackAny<google.protobuf.Struct>(tracing.provider!.typed_config!));
  return { tracing, provider: tracing.provider!.name!, providerConfig };
}

test('no Telemetry, no default provider, no legacy zipkin address: no tracing filter', () => {
  assert.equal(buildTracingFilter([], proxy, 'CLIENT', mesh()), undefined);
});

test('mesh-wide Telemetry with a zipkin provider: Istio\'s ZipkinConfig fields, 1% default sampling, Istio\'s standard tags', () => {
  const root = telemetry('istio-system', 'mesh-default', { tracing: [{ providers: [{ name: 'zipkin' }] }] });
  const { tracing, provider, providerConfig } = decode(buildTracingFilter([root], proxy, 'SERVER', mesh()));
  assert.equal(provider, 'envoy.tracers.zipkin');
  assert.deepEqual(providerConfig, {
    collector_address: 'zipkin.istio-system.svc.cluster.local:9411',
    collector_endpoint: '/api/v2/spans',
    collector_endpoint_version: 'HTTP_JSON',
    collector_hostname: 'zipkin.istio-system.svc.cluster.local',
    trace_id_128bit: true,
    shared_span_context: false,
    service_name: 'reviews.default',
  });
  assert.equal(tracing.random_sampling?.value, 1);
  assert.equal(tracing.client_sampling?.value, 100);
  assert.equal(tracing.overall_sampling?.value, 100);
  assert.equal(tracing.max_path_tag_length?.value, 100);
  assert.deepEqual(tracing.custom_tags?.map((t) => [t.tag, t.literal?.value]), [
    ['istio.canonical_revision', 'v2'],
    ['istio.canonical_service', 'reviews'],
    ['istio.mesh_id', 'cluster.local'],
    ['istio.namespace', 'default'],
  ]);
});

test('levels: the namespace overrides the root\'s sampling, the workload selector switches the provider; modes pick directions', () => {
  const root = telemetry('istio-system', 'mesh-default', { tracing: [{ providers: [{ name: 'zipkin' }], randomSamplingPercentage: 10 }] });
  const ns = telemetry('default', 'ns', { tracing: [{ randomSamplingPercentage: 50, customTags: { team: { literal: { value: 'books' } }, user: { header: { name: 'x-user', defaultValue: 'anon' } } } }] });
  const wl = telemetry('default', 'reviews', { selector: { matchLabels: { app: 'reviews' } }, tracing: [{ match: { mode: 'SERVER' }, providers: [{ name: 'otel' }] }] });
  const server = decode(buildTracingFilter([root, ns, wl], proxy, 'SERVER', mesh()));
  assert.equal(server.provider, 'envoy.tracers.opentelemetry');
  assert.deepEqual(server.providerConfig, { service_name: 'reviews.default', http_service: { http_uri: { uri: 'http://otel-collector.observability.svc.cluster.local:4318/v1/traces', timeout: '5s' } } });
  assert.equal(server.tracing.random_sampling?.value, 50);
  const tags = new Map(server.tracing.custom_tags?.map((t) => [t.tag, t]));
  assert.equal(tags.get('team')?.literal?.value, 'books');
  assert.deepEqual(tags.get('user')?.request_header, { name: 'x-user', default_value: 'anon' });
  const client = decode(buildTracingFilter([root, ns, wl], proxy, 'CLIENT', mesh()));
  assert.equal(client.provider, 'envoy.tracers.zipkin', 'the SERVER-only workload entry does not apply to outbound');
  assert.equal(client.tracing.random_sampling?.value, 50);
});

test('disableSpanReporting turns tracing off; a gRPC-only OpenTelemetry provider is skipped (the proxy exports over HTTP only)', () => {
  const root = telemetry('istio-system', 'mesh-default', { tracing: [{ providers: [{ name: 'zipkin' }] }] });
  const off = telemetry('default', 'ns', { tracing: [{ disableSpanReporting: true }] });
  assert.equal(buildTracingFilter([root, off], proxy, 'CLIENT', mesh()), undefined);
  const grpc = telemetry('istio-system', 'mesh-default', { tracing: [{ providers: [{ name: 'otel-grpc' }] }] });
  assert.equal(buildTracingFilter([grpc], proxy, 'CLIENT', mesh()), undefined);
});

test('MeshConfig: defaultProviders.tracing without Telemetry; defaultConfig.tracing.sampling; legacy zipkin address; enableTracing false', () => {
  const viaDefault = decode(buildTracingFilter([], proxy, 'CLIENT', mesh({ defaultProviders: { tracing: ['otel'] }, defaultConfig: { tracing: { sampling: 25 } } })));
  assert.equal(viaDefault.provider, 'envoy.tracers.opentelemetry');
  assert.equal(viaDefault.tracing.random_sampling?.value, 25);
  const legacy = decode(buildTracingFilter([], proxy, 'CLIENT', mesh({ defaultConfig: { tracing: { zipkin: { address: '127.0.0.1:9411' } } } })));
  assert.equal(legacy.providerConfig['collector_address'], '127.0.0.1:9411');
  assert.equal(buildTracingFilter([], proxy, 'CLIENT', mesh({ enableTracing: false, defaultConfig: { tracing: { zipkin: { address: '127.0.0.1:9411' } } } })), undefined);
  // Telemetry's percentage wins over defaultConfig's.
  const t = telemetry('istio-system', 'mesh-default', { tracing: [{ providers: [{ name: 'zipkin' }], randomSamplingPercentage: 0 }] });
  assert.equal(decode(buildTracingFilter([t], proxy, 'CLIENT', mesh({ defaultConfig: { tracing: { sampling: 25 } } }))).tracing.random_sampling?.value ?? 0, 0);
});

test('the proxy accepts what the control plane writes (both providers)', async () => {
  const pool = new SpanExporterPool();
  try {
    const factory = tracingFilterFactory({ node: { id: 'n', cluster: 'c' }, exporters: pool });
    for (const name of ['zipkin', 'otel']) {
      const t = telemetry('istio-system', 'mesh-default', { tracing: [{ providers: [{ name }], customTags: { e: { environment: { name: 'HOME' } } } }] });
      const filter = buildTracingFilter([t], proxy, 'CLIENT', mesh())!;
      const f = factory.create(unpackAny(filter.typed_config!), { statPrefix: 'outbound_0.0.0.0_9080', stats: {} });
      assert.equal(f.name, TRACING_FILTER_NAME);
    }
    assert.deepEqual(pool.all().map((e) => e.format).sort(), ['otlp', 'zipkin']);
  } finally {
    await pool.close();
  }
});

test('sidecar listeners: with a default tracing provider every HTTP connection manager starts with the tracing filter (inbound SERVER, outbound CLIENT)', async () => {
  const { buildSidecarListeners } = await import('../../../../src/control/translate/listener/index.js');
  const { MESH, http9080, instance, productpage, proxy: fixtureProxy, reviews } = await import('../bookinfo-translate-fixture.js');
  const tracingMesh = { ...MESH, ...mesh({ defaultProviders: { tracing: ['zipkin'] } }), rootNamespace: MESH.rootNamespace };
  const listeners = buildSidecarListeners(fixtureProxy(), { outboundServices: [productpage, reviews], inboundInstances: [instance(productpage, http9080)] }, { mesh: tracingMesh });
  const hcms: { listener: string; filters: string[] }[] = [];
  for (const l of listeners) {
    for (const chain of l.filter_chains ?? []) {
      const f = chain.filters?.[0];
      if (f?.name !== 'envoy.filters.network.http_connection_manager') continue;
      const hcm = unpackAny<envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager>(f.typed_config!);
      hcms.push({ listener: l.name!, filters: (hcm.http_filters ?? []).map((h) => h.name!) });
    }
  }
  assert.ok(hcms.some((h) => h.listener === 'virtualInbound'), 'an inbound HTTP chain');
  assert.ok(hcms.some((h) => h.listener === '0.0.0.0_9080'), 'an outbound HTTP listener');
  for (const h of hcms) assert.equal(h.filters[0], TRACING_FILTER_NAME, `${h.listener}: ${h.filters.join(', ')}`);
  // Without a provider nothing is added.
  const plain = buildSidecarListeners(fixtureProxy(), { outboundServices: [reviews], inboundInstances: [] }, { mesh: MESH });
  for (const l of plain) for (const chain of l.filter_chains ?? []) {
    const f = chain.filters?.[0];
    if (f?.name !== 'envoy.filters.network.http_connection_manager') continue;
    const hcm = unpackAny<envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager>(f.typed_config!);
    assert.ok(!(hcm.http_filters ?? []).some((h) => h.name === TRACING_FILTER_NAME));
  }
});
