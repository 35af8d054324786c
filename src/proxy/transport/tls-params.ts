// Envoy's TlsParameters in node:tls terms: protocol versions and cipher lists (BoringSSL's [A|B] equal-preference groups flattened).

export type NodeTlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

const VERSIONS: Record<string, NodeTlsVersion | undefined> = { TLSv1_0: 'TLSv1', TLSv1_1: 'TLSv1.1', TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3', TLS_AUTO: undefined };

/** The node:tls version for an Envoy TlsProtocol name; unset and TLS_AUTO give Envoy's default for that side. */
export function tlsVersion(value: unknown, envoyDefault: NodeTlsVersion): NodeTlsVersion {
  return value === undefined ? envoyDefault : VERSIONS[String(value)] ?? envoyDefault;
}

/**
 * An OpenSSL cipher string from Envoy's cipher_suites. Envoy (BoringSSL) accepts `[A|B]` groups of equal preference;
 * OpenSSL has no such groups, so their members keep their listed order.
 */
export function cipherList(suites: readonly string[] | undefined): string | undefined {
  if (!suites || suites.length === 0) return undefined;
  return suites.flatMap((s) => s.replace(/^\[|\]$/g, '').split('|')).map((s) => s.trim()).filter(Boolean).join(':');
}
