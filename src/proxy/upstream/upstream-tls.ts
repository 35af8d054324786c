// Compiles an UpstreamTlsContext (SNI, ALPN, trusted CA, SAN matchers, client certificates from files, inline or SDS) into tls.connect options.
import { createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import { rejectUnsupported } from './config-values.js';
import { readDataSource } from '../transport/data-source.js';
import { compileSanMatchers, parseSubjectAltName, sansMatch, type SanMatcher } from '../transport/san-matcher.js';
import { cipherList, tlsVersion } from '../transport/tls-params.js';
import type { envoy } from '../../xds/generated/types.js';

type TlsSecret = envoy.extensions.transport_sockets.tls.v3.Secret;
type TlsCertificate = envoy.extensions.transport_sockets.tls.v3.TlsCertificate;
type CertificateValidationContext = envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
type UpstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
type DataSource = envoy.config.core.v3.DataSource;

export const UPSTREAM_TLS_CONTEXT_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const RAW_BUFFER_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

/**
 * SDS secrets by name. Structurally the same as transport/secret-provider.ts's SecretProvider (which the SDS subscriber
 * implements), declared here so the upstream module needs only the generated types.
 */
export interface UpstreamSecretProvider {
  get(name: string): TlsSecret | undefined;
}

export const NO_UPSTREAM_SECRETS: UpstreamSecretProvider = { get: () => undefined };

/** A compiled upstream TLS context; `connectOptions()` reads SDS secrets when a connection is made, so rotation needs no recompile. */
export interface UpstreamTls {
  readonly sni: string | undefined;
  readonly alpnProtocols: readonly string[];
  /** tls.connect options for a new connection; throws an Error naming the secret when an SDS secret is not (yet) known. */
  connectOptions(): ConnectionOptions;
}

function readSource(source: DataSource | undefined, path: string, problems: string[]): Buffer | undefined {
  if (!source) return undefined;
  rejectUnsupported(source, ['filename', 'inline_bytes', 'inline_string', 'environment_variable'], path, problems);
  return readDataSource(source, path, problems, false);
}

interface ValidationParts {
  ca: Buffer[];
  matchers: SanMatcher[];
}

function compileValidation(v: CertificateValidationContext | undefined, path: string, problems: string[], into: ValidationParts): void {
  if (!v) return;
  // Hash/SPKI pinning, CRLs, accepting expired or untrusted chains: refused rather than silently not enforced.
  rejectUnsupported(v, ['trusted_ca', 'match_subject_alt_names', 'match_typed_subject_alt_names'], path, problems);
  const ca = readSource(v.trusted_ca, `${path}.trusted_ca`, problems);
  if (ca) into.ca.push(ca);
  into.matchers.push(...compileSanMatchers(v, path, problems));
}


/** Validates and compiles; pushes every problem (with its field path) to `problems`. */
export function compileUpstreamTls(ctx: UpstreamTlsContext, path: string, secrets: UpstreamSecretProvider, problems: string[]): UpstreamTls {
  rejectUnsupported(ctx, ['common_tls_context', 'sni'], path, problems);
  const common = ctx.common_tls_context ?? {};
  const cp = `${path}.common_tls_context`;
  rejectUnsupported(
    common,
    ['tls_params', 'tls_certificates', 'tls_certificate_sds_secret_configs', 'validation_context', 'validation_context_sds_secret_config', 'combined_validation_context', 'alpn_protocols'],
    cp,
    problems,
  );
  const params = common.tls_params;
  rejectUnsupported(params, ['tls_minimum_protocol_version', 'tls_maximum_protocol_version', 'cipher_suites', 'ecdh_curves'], `${cp}.tls_params`, problems);
  // Envoy's client defaults: TLS 1.2 both as minimum and as maximum (TLS_AUTO means the default).
  const minVersion = tlsVersion(params?.tls_minimum_protocol_version, 'TLSv1.2');
  const maxVersion = tlsVersion(params?.tls_maximum_protocol_version, 'TLSv1.2');
  const ciphers = cipherList(params?.cipher_suites);
  const ecdhCurve = params?.ecdh_curves?.length ? params.ecdh_curves.join(':') : undefined;

  const staticCerts: { cert: Buffer; key: Buffer }[] = [];
  const addCert = (c: TlsCertificate, p: string, out: { cert: Buffer; key: Buffer }[], errs: string[]): void => {
    rejectUnsupported(c, ['certificate_chain', 'private_key'], p, errs, 'is not supported (only certificate_chain and private_key)');
    if (!c.certificate_chain) errs.push(`${p}.certificate_chain: required`);
    if (!c.private_key) errs.push(`${p}.private_key: required`);
    const cert = readSource(c.certificate_chain, `${p}.certificate_chain`, errs);
    const key = readSource(c.private_key, `${p}.private_key`, errs);
    if (cert && key) out.push({ cert, key });
  };
  (common.tls_certificates ?? []).forEach((c, i) => addCert(c, `${cp}.tls_certificates[${i}]`, staticCerts, problems));
  const certSecretNames = (common.tls_certificate_sds_secret_configs ?? []).map((s, i) => {
    rejectUnsupported(s, ['name', 'sds_config'], `${cp}.tls_certificate_sds_secret_configs[${i}]`, problems);
    if (!s.name) problems.push(`${cp}.tls_certificate_sds_secret_configs[${i}].name: required`);
    return s.name ?? '';
  });

  const staticValidation: ValidationParts = { ca: [], matchers: [] };
  let validationSecretName: string | undefined;
  compileValidation(common.validation_context, `${cp}.validation_context`, problems, staticValidation);
  if (common.validation_context_sds_secret_config) validationSecretName = common.validation_context_sds_secret_config.name ?? '';
  const combined = common.combined_validation_context;
  if (combined) {
    const p = `${cp}.combined_validation_context`;
    rejectUnsupported(combined, ['default_validation_context', 'validation_context_sds_secret_config'], p, problems);
    compileValidation(combined.default_validation_context, `${p}.default_validation_context`, problems, staticValidation);
    validationSecretName = combined.validation_context_sds_secret_config?.name;
    if (validationSecretName === '') problems.push(`${p}.validation_context_sds_secret_config.name: required`);
  }
  const alpnProtocols = common.alpn_protocols ?? [];

  let cached: { key: unknown[]; options: ConnectionOptions } | undefined;
  const sameSecrets = (objects: readonly unknown[]): boolean => !!cached && cached.key.length === objects.length && cached.key.every((o, i) => o === objects[i]);
  const build = (): ConnectionOptions => {
    const secretObjects: unknown[] = [];
    const certs = [...staticCerts];
    const validation: ValidationParts = { ca: [...staticValidation.ca], matchers: [...staticValidation.matchers] };
    const errs: string[] = [];
    for (const name of certSecretNames) {
      const s = secrets.get(name);
      secretObjects.push(s);
      if (!s?.tls_certificate) errs.push(`SDS secret "${name}" with a tls_certificate is not available`);
      else addCert(s.tls_certificate, `secret ${name}`, certs, errs);
    }
    if (validationSecretName !== undefined) {
      const s = secrets.get(validationSecretName);
      secretObjects.push(s);
      if (!s?.validation_context) errs.push(`SDS secret "${validationSecretName}" with a validation_context is not available`);
      else compileValidation(s.validation_context, `secret ${validationSecretName}`, errs, validation);
    }
    if (sameSecrets(secretObjects)) return cached!.options;
    let secureContext: SecureContext | undefined;
    if (errs.length === 0) {
      try {
        secureContext = createSecureContext({
          cert: certs.map((c) => c.cert),
          key: certs.map((c) => c.key),
          ca: validation.ca.length > 0 ? validation.ca : undefined,
          minVersion,
          maxVersion,
          ciphers,
          ecdhCurve,
        });
      } catch (err) {
        errs.push((err as Error).message);
      }
    }
    if (!secureContext) {
      // A rotated secret that does not work keeps the context that did (Envoy rejects such an SDS update);
      // with nothing to fall back on the connection fails with the reason.
      if (cached) return cached.options;
      throw new Error(errs.join('; '));
    }
    const matchers = validation.matchers;
    // Envoy verifies the chain only when a trusted CA is configured, and names only through SAN matchers (never the SNI).
    const options: ConnectionOptions = {
      secureContext,
      rejectUnauthorized: validation.ca.length > 0,
      checkServerIdentity: (_host, cert) => {
        if (sansMatch(matchers, parseSubjectAltName(cert.subjectaltname))) return undefined;
        return Object.assign(new Error(`upstream certificate SANs [${cert.subjectaltname ?? ''}] match none of ${matchers.map((m) => m.text).join(', ')}`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      },
    };
    if (ctx.sni) options.servername = ctx.sni;
    if (alpnProtocols.length > 0) options.ALPNProtocols = [...alpnProtocols];
    cached = { key: secretObjects, options };
    return options;
  };
  // Fail at config time on static problems (bad PEM) rather than on the first connection.
  if (certSecretNames.length === 0 && validationSecretName === undefined && problems.length === 0) {
    try {
      build();
    } catch (err) {
      problems.push(`${cp}: ${(err as Error).message}`);
    }
  }
  return { sni: ctx.sni || undefined, alpnProtocols, connectOptions: build };
}
