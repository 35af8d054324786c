// Upstream TLS (UpstreamTlsContext as Istio's ISTIO_MUTUAL): SDS certificate and CA, SAN matching, Envoy's client TLS defaults, rotation that keeps a working context.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { compileUpstreamTls } from '../../../src/proxy/upstream/upstream-tls.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { hasOpenssl, spiffe, TestCa, type Pem } from './pki.js';
import { caSecret, certSecret, MutableSecrets } from './support.js';

const TD = 'cluster.local';
const skip = hasOpenssl() ? false : 'openssl CLI is missing: cannot make test certificates';

function istioMutual(sans: string[], extra: Partial<envoy.extensions.transport_sockets.tls.v3.CommonTlsContext> = {}): envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext {
  return {
    sni: 'outbound_.9080_._.ratings.default.svc.cluster.local',
    common_tls_context: {
      alpn_protocols: ['istio-peer-exchange', 'istio'],
      tls_certificate_sds_secret_configs: [{ name: 'default' }],
      combined_validation_context: {
        default_validation_context: { match_subject_alt_names: sans.map((exact) => ({ exact })) },
        validation_context_sds_secret_config: { name: 'ROOTCA' },
      },
      ...extra,
    },
  };
}

interface Seen {
  readonly clientSans: string;
  readonly sni: string | false;
  readonly protocol: string | null;
}

describe('upstream TLS', { skip }, () => {
  let ca: TestCa;
  let client: Pem & { serial: string };
  let port: number;
  const seen: Seen[] = [];
  let server: ReturnType<typeof createServer>;

  before(async () => {
    ca = new TestCa(TD);
    client = ca.issue('reviews', { uris: [spiffe(TD, 'default', 'reviews')] });
    const ratings = ca.issue('ratings', { uris: [spiffe(TD, 'default', 'ratings')] });
    server = createServer({ cert: ratings.cert, key: ratings.key, ca: ca.root.cert, requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
      seen.push({ clientSans: s.getPeerCertificate().subjectaltname ?? '', sni: s.servername || false, protocol: s.getProtocol() });
      s.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const handshake = (options: ReturnType<ReturnType<typeof compileUpstreamTls>['connectOptions']>): Promise<{ ok: boolean; error?: string; data: string }> =>
    new Promise((resolve) => {
      const s = connect({ ...options, host: '127.0.0.1', port });
      let data = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (data += d));
      s.on('error', (e) => resolve({ ok: false, error: e.message, data }));
      s.on('end', () => resolve({ ok: true, data }));
    });

  test('ISTIO_MUTUAL: presents `default`, sends the SNI, verifies the server against ROOTCA and its SPIFFE SAN; TLS 1.2 as Envoy\'s client default', async () => {
    const secrets = new MutableSecrets([certSecret('default', client), caSecret('ROOTCA', ca.root.cert)]);
    const problems: string[] = [];
    const tls = compileUpstreamTls(istioMutual([spiffe(TD, 'default', 'ratings')]), 'Cluster c: transport_socket.typed_config', secrets, problems);
    assert.deepEqual(problems, []);
    const r = await handshake(tls.connectOptions());
    assert.deepEqual(r, { ok: true, data: 'ok' });
    assert.deepEqual(seen.at(-1), { clientSans: `URI:${spiffe(TD, 'default', 'reviews')}`, sni: 'outbound_.9080_._.ratings.default.svc.cluster.local', protocol: 'TLSv1.2' });
    const v13 = compileUpstreamTls(istioMutual([spiffe(TD, 'default', 'ratings')], { tls_params: { tls_maximum_protocol_version: 'TLSv1_3' as never } }), 'c', secrets, problems);
    await handshake(v13.connectOptions());
    assert.equal(seen.at(-1)!.protocol, 'TLSv1.3');
  });

  test('the server is not the expected identity: the handshake fails, naming the SANs and the matchers', async () => {
    const secrets = new MutableSecrets([certSecret('default', client), caSecret('ROOTCA', ca.root.cert)]);
    const tls = compileUpstreamTls(istioMutual([spiffe(TD, 'default', 'details')]), 'c', secrets, []);
    const r = await handshake(tls.connectOptions());
    assert.equal(r.ok, false);
    assert.match(r.error!, /SANs \[URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings\] match none of any SAN exact spiffe:\/\/cluster\.local\/ns\/default\/sa\/details/);
  });

  test('a server certificate from another CA fails verification', async () => {
    const other = new TestCa('other.domain');
    const secrets = new MutableSecrets([certSecret('default', client), caSecret('ROOTCA', other.root.cert)]);
    const tls = compileUpstreamTls(istioMutual([spiffe(TD, 'default', 'ratings')]), 'c', secrets, []);
    const r = await handshake(tls.connectOptions());
    assert.equal(r.ok, false);
    assert.match(r.error!, /unable to verify|self.signed|certificate/i);
  });

  test('rotation: same options while SDS holds the same Secret objects, new ones after; a broken rotated secret keeps the working context', async () => {
    const secrets = new MutableSecrets([certSecret('default', client), caSecret('ROOTCA', ca.root.cert)]);
    const tls = compileUpstreamTls(istioMutual([spiffe(TD, 'default', 'ratings')]), 'c', secrets, []);
    const first = tls.connectOptions();
    assert.equal(tls.connectOptions(), first);
    const rotated = ca.issue('reviews-2', { uris: [spiffe(TD, 'default', 'reviews')] });
    secrets.set(certSecret('default', rotated));
    const second = tls.connectOptions();
    assert.notEqual(second, first);
    await handshake(second);
    assert.equal(seen.at(-1)!.clientSans, `URI:${spiffe(TD, 'default', 'reviews')}`);
    secrets.set({ name: 'default', tls_certificate: { certificate_chain: { inline_string: 'garbage' }, private_key: { inline_string: rotated.key } } });
    assert.equal(tls.connectOptions(), second, 'the broken secret does not replace the working context');
    assert.deepEqual(await handshake(tls.connectOptions()), { ok: true, data: 'ok' });
  });

  test('a secret not delivered yet fails the connection with its name', () => {
    const tls = compileUpstreamTls(istioMutual([]), 'c', new MutableSecrets([caSecret('ROOTCA', ca.root.cert)]), []);
    assert.throws(() => tls.connectOptions(), /SDS secret "default" with a tls_certificate is not available/);
  });

  test('unsupported validation fields are refused with their path', () => {
    const problems: string[] = [];
    compileUpstreamTls({ common_tls_context: { validation_context: { trusted_ca: { inline_string: 'x' }, verify_certificate_spki: ['abc'] } } }, 'Cluster c: transport_socket.typed_config', new MutableSecrets(), problems);
    assert.ok(problems.some((p) => p.startsWith('Cluster c: transport_socket.typed_config.common_tls_context.validation_context.verify_certificate_spki')), problems.join('\n'));
  });
});
