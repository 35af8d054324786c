// mTLS through the real proxy from a static bootstrap whose static_resources.secrets hold `default` and `ROOTCA`:
// a PERMISSIVE inbound port (tls_inspector; transport_protocol tls + Istio ALPN vs raw_buffer) taking mTLS and
// plaintext, bad client certificates refused and counted, x-forwarded-client-cert at the app, and ISTIO_MUTUAL
// upstream TLS with the SAN check passing and failing.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { ProxyLog } from '../../../src/proxy/admin/log-levels.js';
import { startProxy, type RunningProxy } from '../../../src/proxy/main.js';
import { hasOpenssl, opensslDate, spiffe, TestCa, type Pem } from '../transport/pki.js';
import { get, HCM_TYPE, ROUTER, startUpstream, type Json, type Upstream } from './support.js';

const TD = 'cluster.local';
const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } };
const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
/** What Istio's permissive inbound mTLS chain matches on (the ALPN its sidecars offer). */
const ISTIO_ALPN = ['istio-peer-exchange', 'istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
const skip = hasOpenssl() ? false : 'openssl CLI is missing: cannot make test certificates';

function hcm(statPrefix: string, cluster: string, extra: Json = {}): Json {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM_TYPE,
      stat_prefix: statPrefix,
      route_config: { name: 'inbound', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] },
      http_filters: [ROUTER],
      ...extra,
    },
  };
}

function istioMutualCluster(name: string, port: number, sans: readonly string[]): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': UPSTREAM_TLS,
        sni: 'outbound_.9080_._.ratings.default.svc.cluster.local',
        common_tls_context: {
          alpn_protocols: ['istio-peer-exchange', 'istio'],
          tls_certificate_sds_secret_configs: [{ name: 'default' }],
          combined_validation_context: {
            default_validation_context: { match_subject_alt_names: sans.map((exact) => ({ exact })) },
            validation_context_sds_secret_config: { name: 'ROOTCA' },
          },
        },
      },
    },
  };
}

interface TlsUpstream {
  readonly port: number;
  readonly seen: { headers: IncomingHttpHeaders; peerSans: string; sni: string | false }[];
  close(): Promise<void>;
}

/** The "ratings" sidecar: TLS with its SPIFFE certificate, requires a client certificate from the CA, no ALPN. */
async function startTlsUpstream(pem: Pem, ca: string): Promise<TlsUpstream> {
  const seen: TlsUpstream['seen'] = [];
  const http = createHttpServer((req, res) => {
    const s = req.socket as TLSSocket;
    seen.push({ headers: req.headers, peerSans: s.getPeerCertificate().subjectaltname ?? '', sni: s.servername || false });
    res.end('ratings');
  });
  const tls = createTlsServer({ cert: pem.cert, key: pem.key, ca, requestCert: true, rejectUnauthorized: true }, (s) => http.emit('connection', s));
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  return {
    port: (tls.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((r) => {
      http.closeAllConnections();
      tls.close(() => r());
    }),
  };
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
}

/** An HTTP/1.1 request over mTLS as a sidecar makes it (Istio ALPN, SNI), checking the server's SPIFFE SAN itself. */
function mtlsGet(port: number, client: Pem, ca: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options: RequestOptions = {
        host: '127.0.0.1', port, path, agent: false, headers, cert: client.cert, key: client.key, ca,
        servername: 'outbound_.9080_._.reviews.default.svc.cluster.local',
        checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${spiffe(TD, 'default', 'reviews')}` ? undefined : new Error(`unexpected server SANs ${cert.subjectaltname}`)),
    };
    // The ALPN a sidecar offers (node:https passes it on to tls.connect; its RequestOptions type does not list it).
    Object.assign(options, { ALPNProtocols: ['istio-http/1.1', 'istio'] });
    const req = httpsRequest(options, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('mTLS through the proxy (static secrets)', { skip }, () => {
  let ca: TestCa;
  let reviews: Pem;
  let productpage: Pem & { serial: string };
  let app: Upstream;
  let ratings: TlsUpstream;
  let proxy: RunningProxy;
  let inboundPort: number;
  let outboundPort: number;
  let strictPort: number;
  let admin: string;

  const stat = async (name: string): Promise<number> => {
    const text = (await get(admin, '/stats')).body;
    const line = text.split('\n').find((l) => l.startsWith(`${name}: `));
    return line ? Number(line.slice(name.length + 2)) : NaN;
  };

  before(async () => {
    ca = new TestCa(TD);
    reviews = ca.issue('reviews', { uris: [spiffe(TD, 'default', 'reviews')] });
    productpage = ca.issue('productpage', { uris: [spiffe(TD, 'default', 'productpage')], dns: ['productpage.default.svc'] });
    const ratingsPem = ca.issue('ratings', { uris: [spiffe(TD, 'default', 'ratings')] });
    app = await startUpstream('reviews-app');
    ratings = await startTlsUpstream(ratingsPem, ca.root.cert);
    const dir = mkdtempSync(join(tmpdir(), 'trellis-mtls-'));
    const downstreamTls = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': DOWNSTREAM_TLS,
        common_tls_context: {
          alpn_protocols: ['h2', 'http/1.1'],
          tls_certificate_sds_secret_configs: [{ name: 'default' }],
          combined_validation_context: {
            default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${TD}/` } }] },
            validation_context_sds_secret_config: { name: 'ROOTCA' },
          },
          tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        },
        require_client_certificate: true,
      },
    };
    // The connection manager Istio puts on inbound chains: APPEND_FORWARD with subject, URI and DNS.
    const inboundHcm = { forward_client_cert_details: 'APPEND_FORWARD', set_current_client_cert_details: { subject: true, uri: true, dns: true } };
    const bootstrap = {
      node: { id: 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local', cluster: 'reviews.default' },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      static_resources: {
        secrets: [
          { name: 'default', tls_certificate: { certificate_chain: { inline_string: reviews.cert }, private_key: { inline_string: reviews.key } } },
          { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca.root.cert } } },
        ],
        listeners: [
          {
            name: 'inbound_9080',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            listener_filters: [TLS_INSPECTOR],
            filter_chains: [
              { name: 'mtls', filter_chain_match: { transport_protocol: 'tls', application_protocols: ISTIO_ALPN }, transport_socket: downstreamTls, filters: [hcm('inbound_mtls', 'inbound|9080||', inboundHcm)] },
              { name: 'plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [hcm('inbound_plaintext', 'inbound|9080||', inboundHcm)] },
            ],
          },
          {
            name: 'inbound_strict',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            listener_filters: [TLS_INSPECTOR],
            filter_chains: [
              { name: 'mtls', filter_chain_match: { transport_protocol: 'tls', application_protocols: ISTIO_ALPN }, transport_socket: downstreamTls, filters: [hcm('inbound_strict', 'inbound|9080||', inboundHcm)] },
            ],
          },
          {
            name: 'outbound',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            filter_chains: [{
              filters: [{
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': HCM_TYPE,
                  stat_prefix: 'outbound',
                  route_config: { name: 'outbound', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [
                    { match: { prefix: '/good' }, route: { cluster: 'outbound|9080||ratings' } },
                    { match: { prefix: '/wrong-san' }, route: { cluster: 'outbound|9080||ratings-wrong-identity' } },
                  ] }] },
                  http_filters: [ROUTER],
                },
              }],
            }],
          },
        ],
        clusters: [
          { name: 'inbound|9080||', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'inbound|9080||', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: app.port } } } }] }] } },
          istioMutualCluster('outbound|9080||ratings', ratings.port, [spiffe(TD, 'default', 'ratings')]),
          istioMutualCluster('outbound|9080||ratings-wrong-identity', ratings.port, [spiffe(TD, 'default', 'details')]),
        ],
      },
    };
    const path = join(dir, 'bootstrap.json');
    writeFileSync(path, JSON.stringify(bootstrap, null, 2));
    proxy = await startProxy({ bootstrapPath: path, drainTimeMs: 200, log: new ProxyLog('error') });
    admin = proxy.admin!.address;
    const listeners = JSON.parse((await get(admin, '/listeners?format=json')).body) as { listener_statuses: { name: string; local_address: { socket_address: { port_value: number } } }[] };
    const port = (name: string): number => listeners.listener_statuses.find((l) => l.name === name)!.local_address.socket_address.port_value;
    inboundPort = port('inbound_9080');
    outboundPort = port('outbound');
    strictPort = port('inbound_strict');
  });

  after(async () => {
    await proxy?.stop();
    await app?.close();
    await ratings?.close();
  });

  test('PERMISSIVE: plaintext on the inbound port reaches the app through the raw_buffer chain; a spoofed XFCC is stripped', async () => {
    const r = await get(`127.0.0.1:${inboundPort}`, '/plain', { headers: { 'x-forwarded-client-cert': 'By=spiffe://evil/x;Hash=00;URI=spiffe://cluster.local/ns/default/sa/admin' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'reviews-app /plain');
    const seen = app.seen.at(-1)!;
    assert.equal(seen.headers['x-forwarded-client-cert'], undefined);
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
  });

  test('PERMISSIVE: a sidecar\'s mTLS on the same port is accepted; the app gets x-forwarded-client-cert exactly as Envoy writes it', async () => {
    const r = await mtlsGet(inboundPort, productpage, ca.root.cert, '/mtls', { 'x-forwarded-client-cert': 'By=spiffe://upstream-hop;Hash=11' });
    assert.equal(r.status, 200);
    const seen = app.seen.at(-1)!;
    assert.equal(seen.path, '/mtls');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    const { createHash, X509Certificate } = await import('node:crypto');
    const hash = createHash('sha256').update(new X509Certificate(productpage.cert).raw).digest('hex');
    assert.equal(
      seen.headers['x-forwarded-client-cert'],
      `By=spiffe://upstream-hop;Hash=11,By=${spiffe(TD, 'default', 'reviews')};Hash=${hash};Subject="CN=productpage,O=${TD}";URI=${spiffe(TD, 'default', 'productpage')};DNS=productpage.default.svc`,
    );
    assert.ok((await stat(`listener.127.0.0.1_${inboundPort}.ssl.handshake`)) >= 1);
  });

  test('an Istio workload certificate (no subject, identity only in the URI SAN) is accepted; XFCC keeps an empty Subject=""', async () => {
    const istioStyle = ca.issue('pp-istio', { uris: [spiffe(TD, 'default', 'productpage')], emptySubject: true });
    const r = await mtlsGet(inboundPort, istioStyle, ca.root.cert, '/istio-cert');
    assert.equal(r.status, 200);
    const { createHash, X509Certificate } = await import('node:crypto');
    const hash = createHash('sha256').update(new X509Certificate(istioStyle.cert).raw).digest('hex');
    assert.equal(app.seen.at(-1)!.headers['x-forwarded-client-cert'], `By=${spiffe(TD, 'default', 'reviews')};Hash=${hash};Subject="";URI=${spiffe(TD, 'default', 'productpage')}`);
  });

  test('bad client certificates on the mTLS chain are refused, logged and counted in ssl.fail_verify_error / fail_verify_san', async () => {
    const day = 86_400_000;
    const other = new TestCa('other.domain');
    const bad: [string, Pem, string][] = [
      ['expired', ca.issue('pp-expired', { uris: [spiffe(TD, 'default', 'productpage')], startDate: opensslDate(new Date(Date.now() - 3 * day)), endDate: opensslDate(new Date(Date.now() - day)) }), 'ssl.fail_verify_error'],
      ['not yet valid', ca.issue('pp-future', { uris: [spiffe(TD, 'default', 'productpage')], startDate: opensslDate(new Date(Date.now() + day)), endDate: opensslDate(new Date(Date.now() + 2 * day)) }), 'ssl.fail_verify_error'],
      ['self-signed', ca.selfSigned('pp-self', [spiffe(TD, 'default', 'productpage')]), 'ssl.fail_verify_error'],
      ['another trust domain\'s CA', other.issue('pp-other', { uris: [spiffe('other.domain', 'default', 'productpage')] }), 'ssl.fail_verify_error'],
      ['a foreign SPIFFE ID from our CA', ca.issue('pp-foreign', { uris: ['spiffe://other.domain/ns/default/sa/productpage'] }), 'ssl.fail_verify_san'],
    ];
    const prefix = `listener.127.0.0.1_${inboundPort}.`;
    const appRequests = app.seen.length;
    for (const [what, pem, counter] of bad) {
      const before = await stat(prefix + counter);
      await assert.rejects(mtlsGet(inboundPort, pem, ca.root.cert, `/bad-${encodeURIComponent(what)}`), /socket hang up|ECONNRESET/, `${what} must be refused`);
      const ssl = (await get(admin, '/stats')).body.split('\n').filter((l) => l.startsWith(`${prefix}ssl.`)).join('; ');
      assert.equal(await stat(prefix + counter), before + 1, `${what} counted in ${counter} (${ssl})`);
    }
    assert.equal(app.seen.length, appRequests, 'no refused request reached the app');
    // The good certificate still works after all that.
    assert.equal((await mtlsGet(inboundPort, productpage, ca.root.cert, '/after')).status, 200);
  });

  test('ISTIO_MUTUAL upstream: SNI, ALPN, the proxy\'s `default` certificate presented, the server\'s SPIFFE SAN verified', async () => {
    const r = await get(`127.0.0.1:${outboundPort}`, '/good');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ratings');
    const seen = ratings.seen.at(-1)!;
    assert.equal(seen.peerSans, `URI:${spiffe(TD, 'default', 'reviews')}`, 'the upstream saw the proxy\'s workload certificate');
    assert.equal(seen.sni, 'outbound_.9080_._.ratings.default.svc.cluster.local');
  });

  test('ISTIO_MUTUAL upstream whose SAN is not the expected identity: 503 UF, nothing reaches it', async () => {
    const before = ratings.seen.length;
    const r = await get(`127.0.0.1:${outboundPort}`, '/wrong-san');
    assert.equal(r.status, 503);
    assert.match(r.body, /upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
    assert.equal(ratings.seen.length, before);
    assert.ok((await stat('cluster.outbound|9080||ratings-wrong-identity.upstream_cx_connect_fail')) >= 1);
  });

  test('STRICT: plaintext to a port with only the mTLS chain finds no filter chain and is closed', async () => {
    const before = await stat(`listener.127.0.0.1_${strictPort}.no_filter_chain_match`);
    const r = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: strictPort, path: '/x', agent: false }, (res) => resolve(String(res.statusCode)));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      req.end();
    });
    assert.match(r, /ECONNRESET|socket hang up/);
    assert.equal(await stat(`listener.127.0.0.1_${strictPort}.no_filter_chain_match`), before + 1);
  });
});
