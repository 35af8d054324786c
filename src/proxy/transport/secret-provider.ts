// The lookup TLS contexts use for SDS secrets by name (the SDS subscriber in main.ts implements it).
import type { envoy } from '../../xds/generated/types.js';

export type TlsSecret = envoy.extensions.transport_sockets.tls.v3.Secret;

export interface SecretProvider {
  /** The current Secret named `name` (as delivered by SDS), or undefined while it is unknown. */
  get(name: string): TlsSecret | undefined;
}

/** A provider that knows no secrets: SDS references then fail validation with the secret's name. */
export const NO_SECRETS: SecretProvider = { get: () => undefined };

/** A fixed set of secrets, for static bootstraps and tests. */
export function staticSecrets(secrets: readonly TlsSecret[]): SecretProvider {
  const byName = new Map(secrets.map((s) => [s.name ?? '', s]));
  return { get: (name) => byName.get(name) };
}
