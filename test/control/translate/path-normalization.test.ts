// meshConfig pathNormalization → every generated connection manager's normalize_path, merge_slashes and escaped-slash action, as Istio sets them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { DEFAULT_MESH_CONFIG, type MeshConfig, type PathNormalizationMode } from '../../../src/control/model/mesh-config.js';
import { buildExplicitOutboundListener, buildSidecarListeners } from '../../../src/control/translate/listener/index.js';
import { buildGatewayConfig } from '../../../src/control/translate/gateway/index.js';
import { serviceLookupOf } from '../../../src/control/translate/common/service-lookup.js';
import { gateway, http9080, instance, productpage, proxy } from './bookinfo-translate-fixture.js';

type HttpConnectionManager = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type Listener = envoy.config.listener.v3.Listener;

function hcms(listeners: readonly Listener[]): HttpConnectionManager[] {
  return listeners.flatMap((l) => [...(l.filter_chains ?? []), ...(l.default_filter_chain ? [l.default_filter_chain] : [])])
    .flatMap((c) => c.filters ?? [])
    .filter((f) => f.name === 'envoy.filters.network.http_connection_manager')
    .map((f) => unpackAny<HttpConnectionManager>(f.typed_config!, 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'));
}

/** Every HCM of a sidecar (outbound per port, inbound), its explicit listener and a gateway, under `mode`. */
function allHcms(mode: PathNormalizationMode | undefined): HttpConnectionManager[] {
  const mesh: MeshConfig = mode ? { ...DEFAULT_MESH_CONFIG, pathNormalization: { normalization: mode } } : DEFAULT_MESH_CONFIG;
  const sidecar = buildSidecarListeners(proxy(), { outboundServices: [productpage], inboundInstances: [instance(productpage, http9080)] }, { mesh });
  const explicit = buildExplicitOutboundListener(proxy(), '127.0.0.1', 15080, mesh);
  const ingress = proxy({ type: 'router', namespace: 'istio-system', labels: { istio: 'ingressgateway' } });
  const gw = gateway('gw', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] });
  const gateways = buildGatewayConfig(ingress, [gw], [], serviceLookupOf([productpage]), { mesh, proxy: ingress }).listeners;
  const out = hcms([...sidecar, explicit, ...gateways]);
  // outbound 0.0.0.0_9080, inbound mTLS + plaintext, HTTP passthrough mTLS + plaintext, explicit, gateway.
  assert.equal(out.length, 7);
  return out;
}

/** Unpacked from the Any, a BoolValue false reads back as `{}`: present but not true. */
function settings(hcm: HttpConnectionManager): [boolean | undefined, boolean | undefined, unknown] {
  const normalize = hcm.normalize_path === undefined ? undefined : hcm.normalize_path.value === true;
  return [normalize, hcm.merge_slashes, hcm.path_with_escaped_slashes_action];
}

test('DEFAULT (and absent) and BASE: RFC 3986 normalization, slashes kept, escaped slashes kept', () => {
  for (const mode of [undefined, 'DEFAULT', 'BASE'] as const) {
    for (const hcm of allHcms(mode)) assert.deepEqual(settings(hcm), [true, undefined, 'KEEP_UNCHANGED'], String(mode));
  }
});

test('NONE: no normalization at all', () => {
  for (const hcm of allHcms('NONE')) assert.deepEqual(settings(hcm), [false, undefined, 'KEEP_UNCHANGED']);
});

test('MERGE_SLASHES: normalization and // merged', () => {
  for (const hcm of allHcms('MERGE_SLASHES')) assert.deepEqual(settings(hcm), [true, true, 'KEEP_UNCHANGED']);
});

test('DECODE_AND_MERGE_SLASHES: also %2F/%5C decoded (UNESCAPE_AND_FORWARD), so an escaped slash cannot hide a path', () => {
  for (const hcm of allHcms('DECODE_AND_MERGE_SLASHES')) assert.deepEqual(settings(hcm), [true, true, 'UNESCAPE_AND_FORWARD']);
});
