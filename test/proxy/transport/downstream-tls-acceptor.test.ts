// Downstream TLS on real sockets: mTLS with SPIFFE certificates from SDS secrets, every bad client certificate refused with its reason and counter, peer identity, rotation.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { sClient } from './support.js';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { compileDownstreamTls } from '../../../src/proxy/transport/downstream-tls.js';
import { DownstreamTlsAcceptor } from '../../../src/proxy/transport/downstream-tls-acceptor.js';
import { tlsConnectionInfo, type TlsConnectionInfo } from '../../../src/proxy/transport/peer-certificate.js';
import { hasOpenssl, opensslDate, spiffe, TestCa, type Pem } from './pki.js';
import { caSecret, certSecret, istioDownstreamContext, MutableSecrets, tlsExchange } from './support.js';

const TD = 'cluster.local';
const skip = hasOpenssl() ? false : 'openssl CLI is missing: cannot make test certificates';

interface Harness {
  readonly port: number;
  readonly stats: Record<string, number>;
  readonly logs: string[];
  readonly infos: TlsConnectionInfo[];
  close(): Promise<void>;
}

/** A plain TCP listener handing each connection to the acceptor (as the listener manager does); secure connections get their TlsConnectionInfo back as JSON. */
async function serve(secrets: MutableSecrets, ctx = istioDownstreamContext(), clientAlpn?: readonly string[]): Promise<Harness> {
  const stats: Record<string, number> = {};
  const logs: string[] = [];
  const infos: TlsConnectionInfo[] = [];
  const tls = compileDownstreamTls(ctx, 'Listener test: filter_chains[0].transport_socket.typed_config', secrets);
  const acceptor = new DownstreamTlsAcceptor(tls, {
    stats,
    listenerName: 'test',
    log: (level, m) => logs.push(`${level} ${m}`),
    onSecure: (s, info) => {
      assert.equal(tlsConnectionInfo(s), info, 'network filters find the same info by socket');
      infos.push(info);
      // Echo each line with the info, so a connection opened before a rotation can be shown to keep working.
      s.setEncoding('utf8');
      s.on('data', () => s.write(JSON.stringify({ serial: info.peerSerial, uris: info.peerUris }) + '\n'));
      s.on('end', () => s.end());
    },
  });
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => acceptor.accept(socket, clientAlpn));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    logs,
    infos,
    close: async () => {
      acceptor.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('downstream TLS acceptor', { skip }, () => {
  let ca: TestCa;
  let other: TestCa;
  let server: Pem & { serial: string };
  let client: Pem & { serial: string };
  let secrets: MutableSecrets;
  let h: Harness;

  before(async () => {
    ca = new TestCa(TD);
    other = new TestCa('other.domain');
    server = ca.issue('server', { uris: [spiffe(TD, 'default', 'server')] });
    client = ca.issue('client', { uris: [spiffe(TD, 'default', 'client')], dns: ['client.default.svc'] });
    secrets = new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)]);
    h = await serve(secrets);
  });
  after(async () => h?.close());

  test('mTLS with a certificate from the trusted CA: accepted, peer identity exposed, ssl.handshake counted', async () => {
    const r = await tlsExchange({ port: h.port, cert: client.cert, key: client.key, ca: ca.root.cert, servername: 'outbound_.9080_._.reviews.default.svc.cluster.local', ALPNProtocols: ['h2'] });
    assert.equal(r.error, undefined);
    assert.deepEqual(JSON.parse(r.data.trim()), { serial: client.serial.toLowerCase(), uris: [spiffe(TD, 'default', 'client')] });
    assert.equal(r.serverCert?.subjectaltname, `URI:${spiffe(TD, 'default', 'server')}`);
    const info = h.infos.at(-1)!;
    assert.equal(info.sni, 'outbound_.9080_._.reviews.default.svc.cluster.local');
    assert.equal(info.alpn, 'h2');
    assert.deepEqual(info.peerDnsSans, ['client.default.svc']);
    assert.deepEqual(info.peerUriSans, [spiffe(TD, 'default', 'client'), 'client.default.svc']);
    assert.deepEqual(info.localUriSans, [spiffe(TD, 'default', 'server')]);
    assert.equal(info.peerCertificateValidated, true);
    // The same facts as openssl prints them: RFC 2253 subject (Envoy's subjectPeerCertificate) and the SHA-256 of the DER.
    const subject = execFileSync('openssl', ['x509', '-in', client.certPath, '-noout', '-subject', '-nameopt', 'RFC2253'], { encoding: 'utf8' }).trim().replace(/^subject=/, '');
    assert.equal(info.peerSubject, subject);
    const fp = execFileSync('openssl', ['x509', '-in', client.certPath, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim().split('=')[1]!;
    assert.equal(info.peerCertificateSha256, fp.replace(/:/g, '').toLowerCase());
    assert.ok(info.peerCertificateChainPem?.startsWith(client.cert.trim().split('\n')[0]!));
    assert.ok(h.stats['ssl.handshake']! >= 1);
    assert.ok(h.stats['ssl.versions.TLSv1.3']! >= 1);
  });

  test('ALPN: an Istio client offering istio-peer-exchange, istio to a chain offering h2, http/1.1 is served without ALPN (Envoy NOACK), not refused', async () => {
    const r = await tlsExchange({ port: h.port, cert: client.cert, key: client.key, ALPNProtocols: ['istio-peer-exchange', 'istio'] });
    assert.equal(r.error, undefined);
    assert.match(r.data, /sa\/client/);
    assert.equal(h.infos.at(-1)!.alpn, undefined);
    await tlsExchange({ port: h.port, cert: client.cert, key: client.key, ALPNProtocols: ['http/1.1', 'h2'] });
    assert.equal(h.infos.at(-1)!.alpn, 'h2', "the server's preference among overlapping protocols");
  });

  test('a resumed TLS session counts ssl.session_reused', async () => {
    const before = h.stats['ssl.session_reused']!;
    const { connect } = await import('node:tls');
    const session = await new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: h.port, cert: client.cert, key: client.key, rejectUnauthorized: false });
      s.once('session', (sess: Buffer) => {
        resolve(sess);
        s.end();
      });
      s.on('error', reject);
      s.resume();
    });
    const r = await tlsExchange({ port: h.port, cert: client.cert, key: client.key, session });
    assert.match(r.data, /sa\/client/);
    assert.equal(h.stats['ssl.session_reused'], before + 1);
  });

  test('ALPN already read by the listener\'s tls_inspector is used instead of a second peek', async () => {
    // Told the client offered only `istio`, the acceptor picks the server without ALPN even though this client offers h2.
    const h7 = await serve(new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)]), istioDownstreamContext(), ['istio']);
    try {
      const r = await tlsExchange({ port: h7.port, cert: client.cert, key: client.key, ALPNProtocols: ['h2'] });
      assert.match(r.data, /sa\/client/);
      assert.equal(h7.infos.at(-1)!.alpn, undefined);
    } finally {
      await h7.close();
    }
  });

  const refused = async (pem: Pem, stat: string, reason: RegExp): Promise<void> => {
    const before = h.stats[stat]!;
    const handshakes = h.stats['ssl.handshake']!;
    const r = await tlsExchange({ port: h.port, cert: pem.cert, key: pem.key });
    assert.equal(r.data, '', 'nothing is served to a refused peer');
    assert.equal(h.stats[stat], before + 1, `${stat} counted`);
    assert.equal(h.stats['ssl.handshake'], handshakes, 'not counted as a handshake');
    const line = h.logs.at(-1) ?? '';
    assert.match(line, /TRELLIS_TLS_PEER_REJECTED/);
    assert.match(line, reason);
  };

  test('expired client certificate: refused, fail_verify_error, logged "certificate has expired"', async () => {
    const day = 86_400_000;
    const expired = ca.issue('expired', { uris: [spiffe(TD, 'default', 'client')], startDate: opensslDate(new Date(Date.now() - 3 * day)), endDate: opensslDate(new Date(Date.now() - day)) });
    await refused(expired, 'ssl.fail_verify_error', /certificate has expired/);
  });

  test('not-yet-valid client certificate: refused, fail_verify_error', async () => {
    const day = 86_400_000;
    const future = ca.issue('future', { uris: [spiffe(TD, 'default', 'client')], startDate: opensslDate(new Date(Date.now() + day)), endDate: opensslDate(new Date(Date.now() + 3 * day)) });
    await refused(future, 'ssl.fail_verify_error', /not yet valid/);
  });

  test('self-signed client certificate with a valid-looking SPIFFE SAN: refused', async () => {
    await refused(ca.selfSigned('selfsigned', [spiffe(TD, 'default', 'client')]), 'ssl.fail_verify_error', /self-signed/);
  });

  test('certificate from another trust domain\'s CA: refused as untrusted', async () => {
    await refused(other.issue('foreign', { uris: [spiffe('other.domain', 'default', 'client')] }), 'ssl.fail_verify_error', /not signed by a trusted CA/);
  });

  test('no client certificate while require_client_certificate: refused, fail_verify_no_cert', async () => {
    const before = h.stats['ssl.fail_verify_no_cert']!;
    const r = await tlsExchange({ port: h.port });
    assert.equal(r.data, '');
    assert.equal(h.stats['ssl.fail_verify_no_cert'], before + 1);
    assert.match(h.logs.at(-1)!, /no client certificate/);
  });

  test('plaintext to the TLS port: ssl.connection_error', async () => {
    const before = h.stats['ssl.connection_error']!;
    const { connect } = await import('node:net');
    await new Promise<void>((resolve) => {
      const s = connect(h.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.resume();
    });
    assert.equal(h.stats['ssl.connection_error'], before + 1);
  });

  test('SAN matchers: the trusted CA signed a certificate for another trust domain → fail_verify_san; a matching prefix passes', async () => {
    const sanSecrets = new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)]);
    const h2 = await serve(sanSecrets, istioDownstreamContext({ sanPrefix: `spiffe://${TD}/` }));
    try {
      const wrongTd = ca.issue('wrong-td', { uris: ['spiffe://evil.domain/ns/default/sa/client'] });
      const r = await tlsExchange({ port: h2.port, cert: wrongTd.cert, key: wrongTd.key });
      assert.equal(r.data, '');
      assert.equal(h2.stats['ssl.fail_verify_san'], 1);
      assert.match(h2.logs.at(-1)!, /match none of URI prefix spiffe:\/\/cluster\.local\//);
      const ok = await tlsExchange({ port: h2.port, cert: client.cert, key: client.key });
      assert.match(ok.data, /ns\/default\/sa\/client/);
      assert.equal(h2.stats['ssl.fail_verify_san'], 1);
    } finally {
      await h2.close();
    }
  });

  test('rotation: a new Secret object is used for new connections while an open connection keeps working', async () => {
    const rotating = new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)]);
    const h3 = await serve(rotating);
    try {
      const { connect } = await import('node:tls');
      const old = connect({ host: '127.0.0.1', port: h3.port, cert: client.cert, key: client.key, ca: ca.root.cert, rejectUnauthorized: false });
      old.setEncoding('utf8');
      const lines: string[] = [];
      let waiter: (() => void) | undefined;
      old.on('data', (d: string) => {
        lines.push(...d.split('\n').filter(Boolean));
        waiter?.();
      });
      const nextLine = (): Promise<void> => new Promise((r) => (waiter = r));
      await new Promise<void>((r) => old.once('secureConnect', () => r()));
      const oldSerial = old.getPeerX509Certificate()!.serialNumber;
      assert.equal(oldSerial, server.serial);
      let got = nextLine();
      old.write('1\n');
      await got;

      const rotated = ca.issue('server-rotated', { uris: [spiffe(TD, 'default', 'server')] });
      rotating.set(certSecret('default', rotated));
      const fresh = await tlsExchange({ port: h3.port, cert: client.cert, key: client.key });
      assert.equal(fresh.serverCert?.serialNumber, rotated.serial, 'a new connection sees the rotated certificate');
      assert.notEqual(rotated.serial, server.serial);

      got = nextLine();
      old.write('2\n');
      await got;
      assert.equal(lines.length, 2, 'the connection opened before the rotation still answers');
      old.end();
    } finally {
      await h3.close();
    }
  });

  test('ROOTCA rotation with an overlap: a bundle holding the old and the new root accepts clients of both, then the old root alone is dropped', async () => {
    const next = new TestCa(TD);
    const newClient = next.issue('client-new-root', { uris: [spiffe(TD, 'default', 'client')] });
    const rotating = new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)]);
    const h6 = await serve(rotating);
    try {
      assert.equal((await tlsExchange({ port: h6.port, cert: newClient.cert, key: newClient.key })).data, '', 'the new root is not trusted yet');
      rotating.set(caSecret('ROOTCA', ca.root.cert + next.root.cert));
      assert.match((await tlsExchange({ port: h6.port, cert: newClient.cert, key: newClient.key })).data, /sa\/client/);
      assert.match((await tlsExchange({ port: h6.port, cert: client.cert, key: client.key })).data, /sa\/client/, 'the old root still trusted during the overlap');
      rotating.set(caSecret('ROOTCA', next.root.cert));
      assert.equal((await tlsExchange({ port: h6.port, cert: client.cert, key: client.key })).data, '', 'after the overlap the old root is gone');
      assert.match(h6.logs.at(-1)!, /not signed by a trusted CA/);
    } finally {
      await h6.close();
    }
  });

  test('a rotated secret that does not parse keeps the previous certificate and is logged', async () => {
    const rotating = new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)]);
    const h4 = await serve(rotating);
    try {
      rotating.set({ name: 'default', tls_certificate: { certificate_chain: { inline_string: 'not a pem' }, private_key: { inline_string: server.key } } });
      const r = await tlsExchange({ port: h4.port, cert: client.cert, key: client.key });
      assert.equal(r.serverCert?.serialNumber, server.serial);
      assert.match(h4.logs.join('\n'), /keeping the previous TLS context/);
    } finally {
      await h4.close();
    }
  });

  test('tls_params: maximum version and Envoy\'s [A|B] cipher groups apply; an unknown cipher is refused with its path', async () => {
    const ctx = istioDownstreamContext();
    ctx.common_tls_context!.tls_params = {
      tls_maximum_protocol_version: 'TLSv1_2' as never,
      cipher_suites: ['[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]'],
    };
    const h5 = await serve(new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)]), ctx);
    try {
      const r = await tlsExchange({ port: h5.port, cert: client.cert, key: client.key, ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384' });
      assert.match(r.data, /sa\/client/);
      assert.equal(h5.infos.at(-1)!.tlsVersion, 'TLSv1.2');
      assert.equal(h5.infos.at(-1)!.cipher, 'ECDHE-ECDSA-CHACHA20-POLY1305');
      const refused = await tlsExchange({ port: h5.port, cert: client.cert, key: client.key, ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
      assert.equal(refused.data, '', 'no shared cipher');
      assert.equal(h5.stats['ssl.connection_error'], 1);
    } finally {
      await h5.close();
    }
    ctx.common_tls_context!.tls_params = { cipher_suites: ['NOT-A-CIPHER'] };
    assert.throws(() => compileDownstreamTls(ctx, 'Listener l: filter_chains[0].transport_socket.typed_config', new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)])), /Listener l: filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context.*cipher/i);
  });

  test('openssl s_client: shows the SPIFFE SAN of the workload and gets data back with a client certificate', async () => {
    const out = await sClient(['-connect', `127.0.0.1:${h.port}`, '-cert', client.certPath, '-key', client.keyPath, '-CAfile', ca.root.certPath, '-showcerts'], /"uris"/);
    assert.match(out, /Verify return code: 0 \(ok\)/);
    assert.match(out, /"uris":\["spiffe:\/\/cluster\.local\/ns\/default\/sa\/client"\]/);
    const x509 = spawnSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: out.slice(out.indexOf('-----BEGIN CERTIFICATE-----')), encoding: 'utf8' });
    assert.match(x509.stdout, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/server/);
  });
});
