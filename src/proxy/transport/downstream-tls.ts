// Compiles a DownstreamTlsContext (certificates from files, inline or SDS; validation context with SAN matchers; ALPN; TLS params) into node:tls options that follow SDS rotation.
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import type { SecretProvider, TlsSecret } from './secret-provider.js';
import { readDataSource } from './data-source.js';
import { compileSanMatchers, type SanMatcher } from './san-matcher.js';
import { cipherList, tlsVersion } from './tls-params.js';

type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
type TlsCertificate = envoy.extensions.transport_sockets.tls.v3.TlsCertificate;
type CertificateValidationContext = envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;

export const DOWNSTREAM_TLS_CONTEXT_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const RAW_BUFFER_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

export interface CompiledDownstreamTls {
  /** The context as compiled (secrets as they were then); connections use `currentContextOptions()`. */
  readonly secureContext: SecureContext;
  /** What secureContext was built from, for node:tls servers (which build their own context from options). */
  readonly contextOptions: SecureContextOptions;
  /** ALPN offered to clients, in preference order (Envoy's alpn_protocols; empty → no ALPN). */
  readonly alpnProtocols: readonly string[];
  readonly requireClientCertificate: boolean;
  readonly requireSni: boolean;
  /** A trusted CA is configured: client certificates are requested and verified when presented. */
  readonly verifiesPeer: boolean;
  /** The SAN matchers of the validation context (static and SDS); empty → any SAN. */
  readonly sanMatchers: () => readonly SanMatcher[];
  /**
   * Options for new connections: the same object while SDS returns the same Secret objects, a new one after a
   * rotation. A rotated secret that does not compile keeps the previous options (and reports through `onProblem`).
   */
  currentContextOptions(onProblem?: (problem: string) => void): SecureContextOptions;
}

const VALIDATION_FIELDS = new Set(['trusted_ca', 'match_subject_alt_names', 'match_typed_subject_alt_names']);
const UNSUPPORTED_COMMON = ['tls_certificate_provider_instance', 'tls_certificate_certificate_provider', 'tls_certificate_certificate_provider_instance', 'validation_context_certificate_provider', 'validation_context_certificate_provider_instance', 'custom_handshaker', 'key_log'] as const;

function refuseUnknownValidationFields(v: CertificateValidationContext | undefined, path: string, problems: string[]): void {
  for (const [k, val] of Object.entries(v ?? {})) {
    if (val === undefined || (Array.isArray(val) && val.length === 0) || VALIDATION_FIELDS.has(k)) continue;
    // Hash/SPKI pinning, CRLs, accepting expired or untrusted chains: refused rather than silently not enforced.
    problems.push(`${path}.${k}: not supported (trusted_ca, match_subject_alt_names and match_typed_subject_alt_names are)`);
  }
}

interface Built {
  readonly options: SecureContextOptions;
  readonly matchers: readonly SanMatcher[];
  readonly hasCa: boolean;
}

/** Validates and compiles; throws XdsValidationError listing every problem with its field path. */
export function compileDownstreamTls(ctx: DownstreamTlsContext, path: string, secrets: SecretProvider): CompiledDownstreamTls {
  const problems: string[] = [];
  const common = ctx.common_tls_context ?? {};
  const cp = `${path}.common_tls_context`;
  for (const f of UNSUPPORTED_COMMON) if (common[f] !== undefined) problems.push(`${cp}.${f}: not supported`);
  for (const f of ['session_ticket_keys', 'session_ticket_keys_sds_secret_config'] as const) if (ctx[f] !== undefined) problems.push(`${path}.${f}: not supported`);
  const certSecretNames = (common.tls_certificate_sds_secret_configs ?? []).map((s, i) => {
    if (!s.name) problems.push(`${cp}.tls_certificate_sds_secret_configs[${i}].name: required`);
    return s.name ?? '';
  });
  if ((common.tls_certificates ?? []).length + certSecretNames.length === 0) problems.push(`${cp}: expected tls_certificates or tls_certificate_sds_secret_configs`);
  const staticValidation = common.validation_context ?? common.combined_validation_context?.default_validation_context;
  const staticValidationPath = common.validation_context ? `${cp}.validation_context` : `${cp}.combined_validation_context.default_validation_context`;
  refuseUnknownValidationFields(staticValidation, staticValidationPath, problems);
  const sdsValidation = common.validation_context_sds_secret_config ?? common.combined_validation_context?.validation_context_sds_secret_config;
  const validationSecretName = sdsValidation ? sdsValidation.name ?? '' : undefined;
  const requireClient = ctx.require_client_certificate?.value === true;
  const params = common.tls_params;
  // Envoy's server defaults: TLS 1.2 minimum, TLS 1.3 maximum.
  const minVersion = tlsVersion(params?.tls_minimum_protocol_version, 'TLSv1.2');
  const maxVersion = tlsVersion(params?.tls_maximum_protocol_version, 'TLSv1.3');
  const ciphers = cipherList(params?.cipher_suites);
  if (params?.signature_algorithms?.length) problems.push(`${cp}.tls_params.signature_algorithms: not supported`);

  /** Builds options from the given secrets; pushes problems (field paths for static data, secret names for SDS). */
  const build = (certSecrets: readonly (TlsSecret | undefined)[], validationSecret: TlsSecret | undefined, errs: string[]): Built | undefined => {
    const certs: { cert: Buffer; key: Buffer }[] = [];
    const addCert = (c: TlsCertificate, p: string): void => {
      if (c.pkcs12 || c.private_key_provider || c.watched_directory) errs.push(`${p}: only certificate_chain and private_key are supported`);
      if (!c.certificate_chain) errs.push(`${p}.certificate_chain: required`);
      if (!c.private_key) errs.push(`${p}.private_key: required`);
      const cert = readDataSource(c.certificate_chain, `${p}.certificate_chain`, errs, true);
      const key = readDataSource(c.private_key, `${p}.private_key`, errs, true);
      if (cert && key) certs.push({ cert, key });
    };
    (common.tls_certificates ?? []).forEach((c, i) => addCert(c, `${cp}.tls_certificates[${i}]`));
    certSecrets.forEach((s, i) => {
      const name = certSecretNames[i]!;
      if (!s?.tls_certificate) errs.push(`${cp}.tls_certificate_sds_secret_configs[${i}].name: no SDS secret "${name}" with a tls_certificate`);
      else addCert(s.tls_certificate, `${cp}.tls_certificate_sds_secret_configs[${i}] (secret ${name})`);
    });
    const matchers = compileSanMatchers(staticValidation, staticValidationPath, errs);
    let trustedCa = staticValidation?.trusted_ca;
    if (validationSecretName !== undefined) {
      const sv = validationSecret?.validation_context;
      if (!sv) errs.push(`${cp}.validation_context_sds_secret_config.name: no SDS secret "${validationSecretName}" with a validation_context`);
      else {
        const sp = `secret ${validationSecretName}.validation_context`;
        refuseUnknownValidationFields(sv, sp, errs);
        // Envoy merges the default context into the SDS one: the default's own trusted_ca wins, matchers add up.
        matchers.push(...compileSanMatchers(sv, sp, errs));
        trustedCa = staticValidation?.trusted_ca ?? sv.trusted_ca;
      }
    }
    const ca = readDataSource(trustedCa, `${staticValidationPath}.trusted_ca`, errs, true);
    if (requireClient && !ca && validationSecretName === undefined) errs.push(`${path}.require_client_certificate: needs a validation_context with trusted_ca`);
    if (errs.length > 0) return undefined;
    const options: SecureContextOptions = {
      cert: certs.map((c) => c.cert),
      key: certs.map((c) => c.key),
      ...(ca ? { ca } : {}),
      minVersion,
      maxVersion,
      ...(ciphers ? { ciphers } : {}),
      ...(params?.ecdh_curves?.length ? { ecdhCurve: params.ecdh_curves.join(':') } : {}),
    };
    return { options, matchers, hasCa: ca !== undefined };
  };

  const snapshot = (): { certs: (TlsSecret | undefined)[]; validation: TlsSecret | undefined } => ({
    certs: certSecretNames.map((n) => secrets.get(n)),
    validation: validationSecretName !== undefined ? secrets.get(validationSecretName) : undefined,
  });
  const first = snapshot();
  // Built even after earlier problems, so the NACK lists every one of them.
  const built = build(first.certs, first.validation, problems);
  if (problems.length > 0 || !built) throw new XdsValidationError(problems);
  let secureContext: SecureContext;
  try {
    secureContext = createSecureContext(built.options);
  } catch (err) {
    throw new XdsValidationError([`${cp}.tls_certificates: ${(err as Error).message}`]);
  }

  let current = { built, certs: first.certs, validation: first.validation };
  const currentContextOptions = (onProblem?: (problem: string) => void): SecureContextOptions => {
    const now = snapshot();
    if (now.validation === current.validation && now.certs.every((s, i) => s === current.certs[i])) return current.built.options;
    const errs: string[] = [];
    const next = build(now.certs, now.validation, errs);
    if (next) {
      try {
        createSecureContext(next.options); // a bad rotated key/cert must not replace a working one
        current = { built: next, certs: now.certs, validation: now.validation };
        return next.options;
      } catch (err) {
        errs.push(`${cp}: rotated secret: ${(err as Error).message}`);
      }
    }
    // Remember the failing snapshot so the problem is reported once, not per connection.
    current = { built: current.built, certs: now.certs, validation: now.validation };
    for (const e of errs) onProblem?.(e);
    return current.built.options;
  };

  return {
    secureContext,
    contextOptions: built.options,
    alpnProtocols: common.alpn_protocols ?? [],
    requireClientCertificate: requireClient,
    requireSni: ctx.require_sni?.value === true,
    verifiesPeer: built.hasCa,
    sanMatchers: () => current.built.matchers,
    currentContextOptions,
  };
}
