// SDS: envoy.extensions.transport_sockets.tls.v3.Secret, which must carry exactly one kind of secret.
import type { envoy } from '../../generated/types.js';
import { SECRET } from '../../type-urls.js';
import { EnvoyResourceType, type Problems } from '../envoy-resource-type.js';

export type Secret = envoy.extensions.transport_sockets.tls.v3.Secret;

const KINDS = ['tls_certificate', 'session_ticket_keys', 'validation_context', 'generic_secret'] as const;

export class SecretResourceType extends EnvoyResourceType<Secret> {
  readonly typeUrl = SECRET;
  readonly allResourcesRequiredInSotW = false;

  protected validate(secret: Secret, problems: Problems): void {
    if (!KINDS.some((kind) => secret[kind] !== undefined)) problems.add('', `one of ${KINDS.join(', ')} is required`);
    const certificate = secret.tls_certificate;
    if (certificate && !certificate.certificate_chain && !certificate.private_key_provider) {
      problems.add('tls_certificate.certificate_chain', 'is required');
    }
  }
}
