// Compiles a DownstreamTlsContext (certificates from files, inline or SDS; ALPN; client certificates) into a Node SecureContext.
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import type { SecretProvider } from './secret-provider.js';
import { readDataSource } from './data-source.js';

type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
type TlsCertificate = envoy.extensions.transport_sockets.tls.v3.TlsCertificate;
type CertificateValidationContext = envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;

export const DOWNSTREAM_TLS_CONTEXT_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const RAW_BUFFER_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

export interface CompiledDownstreamTls {
  readonly secureContext: SecureContext;
  /** What secureContext was built from, for node:tls servers (which build their own context from options). */
  readonly contextOptions: SecureContextOptions;
  /** ALPN offered to clients, in preference order (Envoy's alpn_protocols; empty → no ALPN). */
  readonly alpnProtocols: readonly string[];
  readonly requireClientCertificate: boolean;
  readonly requireSni: boolean;
}

/** Validates and compiles; throws XdsValidationError listing every problem with its field path. */
export function compileDownstreamTls(ctx: DownstreamTlsContext, path: string, secrets: SecretProvider): CompiledDownstreamTls {
  const problems: string[] = [];
  const common = ctx.common_tls_context ?? {};
  const cp = `${path}.common_tls_context`;
  const certs: { cert: Buffer; key: Buffer }[] = [];
  const addCert = (c: TlsCertificate, p: string): void => {
    if (c.pkcs12 || c.private_key_provider || c.watched_directory) problems.push(`${p}: only certificate_chain and private_key are supported`);
    const cert = readDataSource(c.certificate_chain, `${p}.certificate_chain`, problems, true);
    const key = readDataSource(c.private_key, `${p}.private_key`, problems, true);
    if (!c.certificate_chain) problems.push(`${p}.certificate_chain: required`);
    if (!c.private_key) problems.push(`${p}.private_key: required`);
    if (cert && key) certs.push({ cert, key });
  };
  (common.tls_certificates ?? []).forEach((c, i) => addCert(c, `${cp}.tls_certificates[${i}]`));
  (common.tls_certificate_sds_secret_configs ?? []).forEach((s, i) => {
    const secret = secrets.get(s.name ?? '');
    if (!secret?.tls_certificate) problems.push(`${cp}.tls_certificate_sds_secret_configs[${i}].name: no SDS secret "${s.name ?? ''}" with a tls_certificate`);
    else addCert(secret.tls_certificate, `${cp}.tls_certificate_sds_secret_configs[${i}] (secret ${s.name})`);
  });
  if ((common.tls_certificates ?? []).length + (common.tls_certificate_sds_secret_configs ?? []).length === 0) {
    problems.push(`${cp}: expected tls_certificates or tls_certificate_sds_secret_configs`);
  }
  for (const f of ['tls_certificate_provider_instance', 'tls_certificate_certificate_provider', 'tls_certificate_certificate_provider_instance', 'validation_context_certificate_provider', 'validation_context_certificate_provider_instance', 'custom_handshaker', 'key_log'] as const) {
    if (common[f] !== undefined) problems.push(`${cp}.${f}: not supported`);
  }
  let validation: CertificateValidationContext | undefined = common.validation_context ?? common.combined_validation_context?.default_validation_context;
  const sdsValidation = common.validation_context_sds_secret_config ?? common.combined_validation_context?.validation_context_sds_secret_config;
  if (sdsValidation) {
    const secret = secrets.get(sdsValidation.name ?? '');
    if (!secret?.validation_context) problems.push(`${cp}.validation_context_sds_secret_config.name: no SDS secret "${sdsValidation.name ?? ''}" with a validation_context`);
    else validation = { ...secret.validation_context, ...(validation ?? {}), trusted_ca: validation?.trusted_ca ?? secret.validation_context.trusted_ca };
  }
  const ca = validation ? readDataSource(validation.trusted_ca, `${cp}.validation_context.trusted_ca`, problems, true) : undefined;
  const requireClient = ctx.require_client_certificate?.value === true;
  if (requireClient && !ca) problems.push(`${path}.require_client_certificate: needs a validation_context with trusted_ca`);
  const params = common.tls_params;
  const versions: Record<string, 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' | undefined> = { TLSv1_0: 'TLSv1', TLSv1_1: 'TLSv1.1', TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3', TLS_AUTO: undefined };
  if (problems.length > 0) throw new XdsValidationError(problems);
  let secureContext: SecureContext;
  let contextOptions: SecureContextOptions;
  try {
    const minVersion = params?.tls_minimum_protocol_version !== undefined ? versions[String(params.tls_minimum_protocol_version)] : 'TLSv1.2';
    const maxVersion = params?.tls_maximum_protocol_version !== undefined ? versions[String(params.tls_maximum_protocol_version)] : undefined;
    contextOptions = {
      cert: certs.map((c) => c.cert),
      key: certs.map((c) => c.key),
      ...(ca ? { ca } : {}),
      ...(minVersion ? { minVersion } : {}),
      ...(maxVersion ? { maxVersion } : {}),
      ...(params?.cipher_suites?.length ? { ciphers: params.cipher_suites.join(':') } : {}),
      ...(params?.ecdh_curves?.length ? { ecdhCurve: params.ecdh_curves.join(':') } : {}),
    };
    secureContext = createSecureContext(contextOptions);
  } catch (err) {
    throw new XdsValidationError([`${cp}.tls_certificates: ${(err as Error).message}`]);
  }
  return {
    secureContext,
    contextOptions,
    alpnProtocols: common.alpn_protocols ?? [],
    requireClientCertificate: requireClient,
    requireSni: ctx.require_sni?.value === true,
  };
}
