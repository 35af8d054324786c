// Gateway builder on Bookinfo's ingress: listeners per server port, http.<port> routes from bound VirtualServices, HTTPS, redirects, host binding.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../../src/xds/codec.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { buildGatewayConfig } from '../../../src/control/translate/gateway/index.js';
import { serviceLookupOf } from '../../../src/control/translate/common/service-lookup.js';
import {
  MESH,
  assertListenerOnTheWire,
  assertRouteConfigOnTheWire,
  details,
  gateway,
  productpage,
  proxy,
  ratings,
  reviews,
  reviewsVs,
  virtualService,
} from './bookinfo-translate-fixture.js';

type HttpConnectionManager = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;

const ingress = proxy({
  id: 'router~10.0.0.9~istio-ingressgateway-abc.istio-system~istio-system.svc.cluster.local',
  type: 'router',
  namespace: 'istio-system',
  labels: { istio: 'ingressgateway' },
});
const services = serviceLookupOf([productpage, details, reviews, ratings]);

const bookinfoGateway = gateway('bookinfo-gateway', {
  selector: { istio: 'ingressgateway' },
  servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
});

/** Bookinfo's bookinfo.yaml gateway rules. */
const bookinfoVs = virtualService('bookinfo', {
  hosts: ['*'],
  gateways: ['bookinfo-gateway'],
  http: [
    {
      match: [{ uri: { exact: '/productpage' } }, { uri: { prefix: '/static' } }, { uri: { exact: '/login' } }, { uri: { exact: '/logout' } }, { uri: { prefix: '/api/v1/products' } }],
      route: [{ destination: { host: 'productpage', port: { number: 9080 } } }],
    },
  ],
});

function hcmOf(listener: envoy.config.listener.v3.Listener, chain = 0): HttpConnectionManager {
  const filter = listener.filter_chains?.[chain]?.filters?.[0];
  assert.equal(filter?.name, 'envoy.filters.network.http_connection_manager');
  return unpackAny<HttpConnectionManager>(filter!.typed_config!);
}

describe('Bookinfo ingress gateway', () => {
  const config = buildGatewayConfig(ingress, [bookinfoGateway], [bookinfoVs, reviewsVs], services, { proxy: ingress, mesh: MESH });

  test('one bound listener 0.0.0.0_8080 with an HTTP connection manager asking RDS for http.8080', () => {
    assert.deepEqual(config.listeners.map((l) => l.name), ['0.0.0.0_8080']);
    const l = config.listeners[0]!;
    assert.deepEqual(l.address, { socket_address: { address: '0.0.0.0', port_value: 8080 } });
    assert.equal(l.bind_to_port, undefined);
    assert.equal(l.listener_filters, undefined);
    const hcm = hcmOf(l);
    assert.equal(hcm.stat_prefix, 'outbound_0.0.0.0_8080');
    assert.equal(hcm.rds?.route_config_name, 'http.8080');
    assert.deepEqual(hcm.use_remote_address, { value: true });
    assert.equal(hcm.forward_client_cert_details, 'SANITIZE_SET');
    assert.deepEqual(hcm.http_filters?.map((f) => f.name), ['istio.metadata_exchange', 'envoy.filters.http.fault', 'envoy.filters.http.cors', 'istio.stats', 'envoy.filters.http.router']);
  });

  test('route http.8080: one * virtual host with the bound VirtualService\'s routes; mesh-only VirtualServices stay out', () => {
    assert.deepEqual(config.routes.map((r) => r.name), ['http.8080']);
    const route = config.routes[0]!;
    assert.deepEqual(route.virtual_hosts?.map((v) => [v.name, v.domains]), [['*:8080', ['*']]]);
    const routes = route.virtual_hosts![0]!.routes!;
    assert.deepEqual(routes.map((r) => r.match?.path ?? r.match?.prefix), ['/productpage', '/static', '/login', '/logout', '/api/v1/products']);
    assert.ok(routes.every((r) => r.route?.cluster === 'outbound|9080||productpage.default.svc.cluster.local'));
    assert.deepEqual(routes[0]!.match, { path: '/productpage', case_sensitive: { value: true } });
    assert.deepEqual(routes[0]!.decorator, { operation: 'productpage.default.svc.cluster.local:9080/productpage' });
    assert.deepEqual(routes[0]!.route?.timeout, { seconds: 0 });
    assert.equal(routes[0]!.route?.retry_policy?.num_retries?.value, 2);
  });

  test('encodes and the xDS client accepts the listener and the route configuration', () => {
    for (const l of config.listeners) assertListenerOnTheWire(l);
    for (const r of config.routes) assertRouteConfigOnTheWire(r);
  });

  test('destination port defaults to the service\'s only port, not the gateway port', () => {
    const vs = virtualService('pp', { hosts: ['bookinfo.example.com'], gateways: ['default/bookinfo-gateway'], http: [{ route: [{ destination: { host: 'productpage' } }] }] });
    const out = buildGatewayConfig(ingress, [bookinfoGateway], [vs], services, { mesh: MESH });
    const vhost = out.routes[0]!.virtual_hosts![0]!;
    assert.deepEqual([vhost.name, vhost.domains], ['bookinfo.example.com:8080', ['bookinfo.example.com', 'bookinfo.example.com:8080']]);
    assert.equal(vhost.routes![0]!.route?.cluster, 'outbound|9080||productpage.default.svc.cluster.local');
  });
});

describe('gateway servers', () => {
  test('HTTPS SIMPLE with certificate files: SNI-matched chain, DownstreamTlsContext, its own route config; httpsRedirect on :80', () => {
    const gw = gateway('bookinfo-gateway', {
      selector: { istio: 'ingressgateway' },
      servers: [
        { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['bookinfo.example.com'], tls: { httpsRedirect: true } },
        {
          port: { number: 443, name: 'https', protocol: 'HTTPS' },
          hosts: ['bookinfo.example.com'],
          tls: { mode: 'SIMPLE', serverCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem' },
        },
      ],
    });
    const vs = virtualService('bookinfo', { hosts: ['bookinfo.example.com'], gateways: ['bookinfo-gateway'], http: [{ route: [{ destination: { host: 'productpage' } }] }] });
    const out = buildGatewayConfig(ingress, [gw], [vs], services, { mesh: MESH });
    assert.deepEqual(out.listeners.map((l) => l.name), ['0.0.0.0_80', '0.0.0.0_443']);
    assert.deepEqual(out.routes.map((r) => r.name), ['http.80', 'https.443.https.bookinfo-gateway.default']);

    const redirect = out.routes[0]!.virtual_hosts![0]!;
    assert.equal(redirect.require_tls, 'ALL');
    assert.deepEqual(redirect.domains, ['bookinfo.example.com', 'bookinfo.example.com:80']);
    assert.equal(out.routes[1]!.virtual_hosts![0]!.require_tls, undefined);

    const https = out.listeners[1]!;
    assert.deepEqual(https.listener_filters?.map((f) => f.name), ['envoy.filters.listener.tls_inspector']);
    const chain = https.filter_chains![0]!;
    assert.deepEqual(chain.filter_chain_match, { server_names: ['bookinfo.example.com'] });
    assert.equal(chain.transport_socket?.name, 'envoy.transport_sockets.tls');
    const tls = unpackAny<DownstreamTlsContext>(chain.transport_socket!.typed_config!, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext');
    assert.deepEqual(tls.common_tls_context?.tls_certificates, [{ certificate_chain: { filename: '/etc/certs/cert.pem' }, private_key: { filename: '/etc/certs/key.pem' } }]);
    assert.deepEqual(tls.common_tls_context?.alpn_protocols, ['h2', 'http/1.1']);
    assert.deepEqual(tls.common_tls_context?.tls_params, { tls_minimum_protocol_version: 'TLSv1_2' });
    assert.deepEqual(tls.require_client_certificate, {});
    assert.equal(hcmOf(https).rds?.route_config_name, 'https.443.https.bookinfo-gateway.default');
    for (const l of out.listeners) assertListenerOnTheWire(l);
    for (const r of out.routes) assertRouteConfigOnTheWire(r);
  });

  test('credentialName → SDS secret kubernetes://<name>; MUTUAL adds the -cacert validation secret', () => {
    const gw = gateway('secure', {
      servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*.example.com'], tls: { mode: 'MUTUAL', credentialName: 'example-cred' } }],
    });
    const out = buildGatewayConfig(ingress, [gw], [], services, { mesh: MESH });
    const tls = unpackAny<DownstreamTlsContext>(out.listeners[0]!.filter_chains![0]!.transport_socket!.typed_config!);
    assert.deepEqual(tls.common_tls_context?.tls_certificate_sds_secret_configs?.map((s) => s.name), ['kubernetes://example-cred']);
    assert.deepEqual(tls.common_tls_context?.tls_certificate_sds_secret_configs?.[0]?.sds_config?.ads, {});
    assert.equal(tls.common_tls_context?.combined_validation_context?.validation_context_sds_secret_config?.name, 'kubernetes://example-cred-cacert');
    assert.deepEqual(tls.require_client_certificate, { value: true });
    assert.equal(tls.common_tls_context?.tls_certificates, undefined);
    // No VirtualService: a 404 virtual host keeps the route configuration valid.
    assert.deepEqual(out.routes[0]!.virtual_hosts, [{ name: 'blackhole:443', domains: ['*'], routes: [] }]);
    assertRouteConfigOnTheWire(out.routes[0]!);
    assertListenerOnTheWire(out.listeners[0]!);
  });

  test('ns/host: a server restricted to another namespace does not bind this namespace\'s VirtualService', () => {
    const gw = gateway('shared', { servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['shop/*', './internal.example.com'] }] }, 'istio-system');
    const mine = virtualService('mine', { hosts: ['*'], gateways: ['istio-system/shared'], http: [{ route: [{ destination: { host: 'productpage' } }] }] });
    const internal = virtualService('internal', { hosts: ['internal.example.com'], gateways: ['istio-system/shared'], http: [{ route: [{ destination: { host: 'details.default.svc.cluster.local' } }] }] }, 'istio-system');
    const out = buildGatewayConfig(ingress, [gw], [mine, internal], services, { mesh: MESH });
    assert.deepEqual(out.routes[0]!.virtual_hosts?.map((v) => v.name), ['internal.example.com:80']);
    assert.equal(out.routes[0]!.virtual_hosts![0]!.routes![0]!.route?.cluster, 'outbound|9080||details.default.svc.cluster.local');
  });

  test('servers of two gateways on one port share the listener and http.<port>; match.gateways picks per gateway; first VirtualService keeps a host', () => {
    const a = gateway('a', { servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['a.example.com'] }] });
    const b = gateway('b', { servers: [{ port: { number: 80, name: 'http2', protocol: 'HTTP' }, hosts: ['b.example.com'] }] });
    const vs = virtualService('ab', {
      hosts: ['a.example.com', 'b.example.com'],
      gateways: ['a', 'b'],
      http: [
        { match: [{ gateways: ['a'], uri: { prefix: '/only-a' } }], route: [{ destination: { host: 'details' } }] },
        { route: [{ destination: { host: 'productpage' } }] },
      ],
    });
    const shadow = virtualService('shadow', { hosts: ['a.example.com'], gateways: ['a'], http: [{ route: [{ destination: { host: 'ratings' } }] }] });
    const out = buildGatewayConfig(ingress, [a, b], [vs, shadow], services, { mesh: MESH });
    assert.deepEqual(out.listeners.map((l) => l.name), ['0.0.0.0_80']);
    assert.deepEqual(out.routes.map((r) => r.name), ['http.80']);
    const hosts = out.routes[0]!.virtual_hosts!;
    assert.deepEqual(hosts.map((v) => v.name), ['a.example.com:80', 'b.example.com:80']);
    // Routes are built once for the gateways the VirtualService binds on this port, so /only-a is kept for both hosts.
    assert.deepEqual(hosts[0]!.routes!.map((r) => r.route?.cluster), ['outbound|9080||details.default.svc.cluster.local', 'outbound|9080||productpage.default.svc.cluster.local']);
  });

  test('TCP and TLS passthrough servers are not built (no listener, no route)', () => {
    const gw = gateway('tcp', {
      servers: [
        { port: { number: 31400, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
        { port: { number: 8443, name: 'tls', protocol: 'TLS' }, hosts: ['*'], tls: { mode: 'PASSTHROUGH' } },
      ],
    });
    assert.deepEqual(buildGatewayConfig(ingress, [gw], [], services, { mesh: MESH }), { listeners: [], routes: [] });
  });
});
