// x-forwarded-client-cert: each forward_client_cert_details mode on mTLS and plaintext connections, Envoy's element format and order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyClientCertDetails, compileClientCertDetails, currentClientCertElement } from '../../../src/proxy/http/client-cert-details.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import type { DownstreamTlsInfo } from '../../../src/proxy/http/stream-info.js';

const MTLS: DownstreamTlsInfo = {
  peerUriSans: ['spiffe://cluster.local/ns/default/sa/productpage', 'productpage.default.svc'],
  peerUris: ['spiffe://cluster.local/ns/default/sa/productpage'],
  peerDnsSans: ['productpage.default.svc'],
  peerSubject: 'CN=productpage,O=cluster.local',
  peerCertificateSha256: 'ab'.repeat(32),
  peerCertificatePem: '-----BEGIN CERTIFICATE-----\nMIIB+/x=\n-----END CERTIFICATE-----\n',
  localUriSans: ['spiffe://cluster.local/ns/default/sa/reviews'],
};
const SERVER_TLS_NO_PEER: DownstreamTlsInfo = { peerUriSans: [], localUriSans: ['spiffe://cluster.local/ns/default/sa/reviews'] };
const ISTIO = { subject: { value: true }, dns: true, uri: true };
const HASH = 'ab'.repeat(32);
const CURRENT = `By=spiffe://cluster.local/ns/default/sa/reviews;Hash=${HASH};Subject="CN=productpage,O=cluster.local";URI=spiffe://cluster.local/ns/default/sa/productpage;DNS=productpage.default.svc`;
const SPOOFED = 'By=spiffe://evil/x;Hash=00;URI=spiffe://evil/y';

function run(mode: string | undefined, tls: DownstreamTlsInfo | undefined, incoming?: string | string[]): string | string[] | undefined {
  const headers: HttpHeaders = incoming === undefined ? {} : { 'x-forwarded-client-cert': incoming };
  applyClientCertDetails(headers, tls, compileClientCertDetails({ ...(mode ? { forward_client_cert_details: mode as never } : {}), set_current_client_cert_details: ISTIO }));
  return headers['x-forwarded-client-cert'];
}

test('APPEND_FORWARD (Istio sidecars): appends this hop with a comma, or sets it when absent', () => {
  assert.equal(run('APPEND_FORWARD', MTLS), CURRENT);
  assert.equal(run('APPEND_FORWARD', MTLS, 'By=a;Hash=b'), `By=a;Hash=b,${CURRENT}`);
  assert.equal(run('APPEND_FORWARD', MTLS, ['By=a;Hash=b', 'By=c;Hash=d']), `By=a;Hash=b,By=c;Hash=d,${CURRENT}`);
});

test('SANITIZE_SET replaces whatever the client sent with this hop', () => {
  assert.equal(run('SANITIZE_SET', MTLS, SPOOFED), CURRENT);
});

test('SANITIZE (the default) removes the header even on mTLS', () => {
  assert.equal(run(undefined, MTLS, SPOOFED), undefined);
  assert.equal(run('SANITIZE', MTLS, SPOOFED), undefined);
});

test('FORWARD_ONLY keeps the header on mTLS unchanged, removes it on plaintext', () => {
  assert.equal(run('FORWARD_ONLY', MTLS, SPOOFED), SPOOFED);
  assert.equal(run('FORWARD_ONLY', undefined, SPOOFED), undefined);
});

test('ALWAYS_FORWARD_ONLY keeps the header even on plaintext', () => {
  assert.equal(run('ALWAYS_FORWARD_ONLY', undefined, SPOOFED), SPOOFED);
});

test('every mode but ALWAYS_FORWARD_ONLY strips a spoofed header from plaintext and from TLS without a client certificate', () => {
  for (const mode of ['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET']) {
    assert.equal(run(mode, undefined, SPOOFED), undefined, `${mode} plaintext`);
    assert.equal(run(mode, SERVER_TLS_NO_PEER, SPOOFED), undefined, `${mode} TLS without a client certificate`);
  }
});

test('Envoy\'s order Cert, Chain, Subject, URI, DNS after By and Hash; PEM escaped as Envoy does; empty URI key kept', () => {
  const all = compileClientCertDetails({ set_current_client_cert_details: { cert: true, chain: true, subject: { value: true }, uri: true, dns: true } });
  assert.deepEqual(all.details, ['Cert', 'Chain', 'Subject', 'URI', 'DNS']);
  const el = currentClientCertElement({ ...MTLS, peerCertificateChainPem: MTLS.peerCertificatePem! }, all.details);
  const pem = '-----BEGIN%20CERTIFICATE-----%0AMIIB%2B%2Fx%3D%0A-----END%20CERTIFICATE-----%0A';
  assert.equal(el, `By=spiffe://cluster.local/ns/default/sa/reviews;Hash=${HASH};Cert="${pem}";Chain="${pem}";Subject="CN=productpage,O=cluster.local";URI=spiffe://cluster.local/ns/default/sa/productpage;DNS=productpage.default.svc`);
  const noUri = currentClientCertElement({ ...MTLS, peerUris: [], peerDnsSans: [] }, ['URI', 'DNS']);
  assert.equal(noUri, `By=spiffe://cluster.local/ns/default/sa/reviews;Hash=${HASH};URI=`);
});

test('an unknown forward_client_cert_details value is refused', () => {
  assert.throws(() => compileClientCertDetails({ forward_client_cert_details: 'SOMETIMES' as never }), /forward_client_cert_details: unknown value SOMETIMES/);
});
