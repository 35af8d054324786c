// DownstreamTlsContext validation: what is refused (with its field path) instead of accepted and not enforced, and how SDS and static validation merge.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { XdsValidationError } from '../../../src/common/errors.js';
import { compileDownstreamTls } from '../../../src/proxy/transport/downstream-tls.js';
import type { envoy } from '../../../src/xds/generated/types.js';
import { hasOpenssl, spiffe, TestCa, type Pem } from './pki.js';
import { caSecret, certSecret, istioDownstreamContext, MutableSecrets } from './support.js';

type Ctx = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
const PATH = 'Listener inbound: filter_chains[0].transport_socket.typed_config';
const skip = hasOpenssl() ? false : 'openssl CLI is missing: cannot make test certificates';

function problems(ctx: Ctx, secrets: MutableSecrets): readonly string[] {
  try {
    compileDownstreamTls(ctx, PATH, secrets);
    return [];
  } catch (err) {
    assert.ok(err instanceof XdsValidationError, String(err));
    return err.details;
  }
}

describe('DownstreamTlsContext validation', { skip }, () => {
  let ca: TestCa;
  let server: Pem;
  let secrets: MutableSecrets;
  before(() => {
    ca = new TestCa('cluster.local');
    server = ca.issue('server', { uris: [spiffe('cluster.local', 'default', 'server')] });
    secrets = new MutableSecrets([certSecret('default', server), caSecret('ROOTCA', ca.root.cert)]);
  });

  test('Istio\'s inbound context compiles: SDS default + ROOTCA, a client certificate asked for and required', () => {
    const tls = compileDownstreamTls(istioDownstreamContext({ sanPrefix: 'spiffe://cluster.local/' }), PATH, secrets);
    assert.equal(tls.verifiesPeer, true);
    assert.equal(tls.requireClientCertificate, true);
    assert.deepEqual(tls.alpnProtocols, ['h2', 'http/1.1']);
    assert.deepEqual(tls.sanMatchers().map((m) => m.text), ['URI prefix spiffe://cluster.local/']);
  });

  test('SAN matchers of the SDS validation context add to the static ones (Envoy merges the two)', () => {
    const withSanSecret = new MutableSecrets([certSecret('default', server), { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca.root.cert }, match_subject_alt_names: [{ suffix: '.svc' }] } }]);
    const tls = compileDownstreamTls(istioDownstreamContext({ sanPrefix: 'spiffe://cluster.local/' }), PATH, withSanSecret);
    assert.deepEqual(tls.sanMatchers().map((m) => m.text), ['URI prefix spiffe://cluster.local/', 'any SAN suffix .svc']);
  });

  test('a secret SDS has not delivered is named', () => {
    assert.deepEqual(problems(istioDownstreamContext(), new MutableSecrets([caSecret('ROOTCA', ca.root.cert)])), [
      `${PATH}.common_tls_context.tls_certificate_sds_secret_configs[0].name: no SDS secret "default" with a tls_certificate`,
    ]);
    assert.deepEqual(problems(istioDownstreamContext(), new MutableSecrets([certSecret('default', server)])), [
      `${PATH}.common_tls_context.validation_context_sds_secret_config.name: no SDS secret "ROOTCA" with a validation_context`,
    ]);
  });

  test('checks that would not be enforced are refused: hash/SPKI pinning, CRLs, untrusted chains, session ticket keys, OTHER_NAME SANs', () => {
    const ctx = istioDownstreamContext();
    ctx.common_tls_context!.combined_validation_context!.default_validation_context = {
      verify_certificate_hash: ['ab'],
      verify_certificate_spki: ['cd'],
      crl: { inline_string: 'x' },
      trust_chain_verification: 'ACCEPT_UNTRUSTED' as never,
      match_typed_subject_alt_names: [{ san_type: 'OTHER_NAME' as never, oid: '1.2.3', matcher: { exact: 'x' } }],
    };
    ctx.session_ticket_keys = { keys: [{ inline_bytes: new Uint8Array(80) }] };
    const p = problems(ctx, secrets).join('\n');
    const dvc = `${PATH}.common_tls_context.combined_validation_context.default_validation_context`;
    for (const field of ['verify_certificate_hash', 'verify_certificate_spki', 'crl', 'trust_chain_verification']) assert.match(p, new RegExp(`${dvc.replace(/[.[\]]/g, '\\$&')}\\.${field}: not supported`));
    assert.match(p, /match_typed_subject_alt_names\[0\]\.san_type: expected DNS, URI, IP_ADDRESS or EMAIL, got OTHER_NAME/);
    assert.match(p, /session_ticket_keys: not supported/);
  });

  test('require_client_certificate without any trusted CA, no certificate at all, a bad regex: refused', () => {
    const p = problems({ require_client_certificate: { value: true }, common_tls_context: { tls_certificates: [{ certificate_chain: { inline_string: server.cert }, private_key: { inline_string: server.key } }] } }, secrets);
    assert.deepEqual(p, [`${PATH}.require_client_certificate: needs a validation_context with trusted_ca`]);
    assert.deepEqual(problems({ common_tls_context: {} }, secrets), [`${PATH}.common_tls_context: expected tls_certificates or tls_certificate_sds_secret_configs`]);
    const ctx = istioDownstreamContext();
    ctx.common_tls_context!.combined_validation_context!.default_validation_context = { match_typed_subject_alt_names: [{ san_type: 'URI' as never, matcher: { safe_regex: { regex: '(' } } }] };
    assert.match(problems(ctx, secrets).join('\n'), /match_typed_subject_alt_names\[0\]\.matcher\.safe_regex\.regex: /);
  });

  test('a certificate that does not parse is refused at compile time', () => {
    const bad = new MutableSecrets([{ name: 'default', tls_certificate: { certificate_chain: { inline_string: 'nope' }, private_key: { inline_string: server.key } } }, caSecret('ROOTCA', ca.root.cert)]);
    assert.match(problems(istioDownstreamContext(), bad).join('\n'), /common_tls_context\.tls_certificates: /);
  });
});
