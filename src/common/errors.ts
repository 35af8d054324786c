// The one registry of Trellis's coded errors: every error a user can see has a stable code here.

/** Stable error codes, documented in docs/errors.md (a test keeps the two in sync). */
export const ERROR_CODES = {
  TRELLIS_CODEC_UNKNOWN_TYPE: 'a protobuf message or Any type URL that Trellis has no codec for',
  TRELLIS_CODEC_MALFORMED: 'bytes that do not decode as the expected protobuf message',
  TRELLIS_XDS_UNKNOWN_TYPE_URL: 'an xDS request for a resource type the server does not serve',
  TRELLIS_XDS_NACK: 'an xDS update refused by the client, with the reason it gave',
  TRELLIS_XDS_INVALID_RESOURCE: 'an xDS resource that failed validation on the client',
  TRELLIS_XDS_STREAM_CLOSED: 'an xDS stream that ended before the operation completed',
  TRELLIS_XDS_INVALID_SUBSCRIPTION: 'an xDS client subscription that cannot be expressed (a type URL with no registered resource type, or "*" given as a resource name)',
  TRELLIS_XDS_INVALID_SNAPSHOT: 'resources given to the xDS server cache that cannot be served (empty or duplicate name, Any of another type)',
  TRELLIS_CONFIG_INVALID: 'configuration that failed validation (file, resource and field path in the message)',
  TRELLIS_CONFIG_PARSE: 'a configuration file that could not be read or a YAML document that does not parse (file, document and line:column in the message)',
  TRELLIS_CONFIG_UNSUPPORTED: 'a configuration document whose kind or apiVersion Trellis does not accept',
  TRELLIS_CONFIG_CONFLICT: 'two definitions of the same resource (kind, namespace, name) in one config store; the first by file path is served',
  TRELLIS_MANIFEST_INVALID: 'a local mesh manifest (mesh.yaml) that cannot be used at all: unreadable, invalid YAML, or no usable workload or gateway (file and field path in the message)',
  TRELLIS_AGENT_CERTIFICATE: 'the workload certificate could not be obtained or used (CA unreachable or refusing, an unusable cert_chain, an expired certificate while the CA stays down); the agent retries with backoff and keeps serving the previous certificate',
  TRELLIS_CA_MATERIAL_INVALID: 'CA certificate or key files (cacerts plug-in or the self-signed CA directory) that cannot be used: unreadable, key not matching the certificate, not a CA, a chain that does not verify to the root, expired (file and reason in the message)',
  TRELLIS_CA_CSR_INVALID: 'a certificate signing request the CA cannot sign: not a PEM PKCS#10 request, a bad signature, an unsupported key (gRPC INVALID_ARGUMENT)',
  TRELLIS_CA_IDENTITY_MISMATCH: 'a certificate signing request for another identity than the authenticated caller\'s (gRPC PERMISSION_DENIED)',
  TRELLIS_CA_UNAUTHENTICATED: 'a CA call without an `authorization: Bearer <token>` header, or with a token the CA does not know (gRPC UNAUTHENTICATED)',
  TRELLIS_CA_TOKEN_FILE_INVALID: 'a CA token file (--ca-token-file) that cannot be read or has a line other than `token namespace serviceaccount` (file:line in the message)',
  TRELLIS_TLS_PEER_REJECTED: 'a TLS peer certificate the proxy refused (not signed by a trusted CA, expired, not yet valid, self-signed, no SAN matching the validation context, or missing when required); logged with the reason and counted in ssl.fail_verify_*',
  TRELLIS_AUTHZ_RULE_DEGRADED: 'an AuthorizationPolicy rule the control plane could not generate as written for a proxy (HTTP-only fields on a TCP chain: ALLOW rule dropped, DENY rule widened; a CUSTOM provider that cannot be used: its rules become deny rules; a dry-run CUSTOM policy left out); reported with the RBAC policy name and the reason',
  TRELLIS_CAPTURE_FAILED: 'traffic capture rules that could not be applied or removed (`trellis iptables`): iptables-save/iptables-restore missing or refusing the rules; the message names the command and what it printed',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class: every Trellis error carries a stable `code`. */
export class TrellisError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class CodecError extends TrellisError {}

export class XdsError extends TrellisError {}

/** A resource the xDS client refused; `details` lists every problem, joined into the NACK's error_detail. */
export class XdsValidationError extends TrellisError {
  readonly details: readonly string[];
  constructor(details: readonly string[]) {
    super('TRELLIS_XDS_INVALID_RESOURCE', details.join('; '));
    this.details = details;
  }
}

export class ConfigError extends TrellisError {}

/** A resource that failed validation; `details` lists every problem as `file: Kind ns/name: field.path: what was expected`. */
export class ConfigValidationError extends ConfigError {
  readonly details: readonly string[];
  constructor(details: readonly string[]) {
    super('TRELLIS_CONFIG_INVALID', details.join('; '));
    this.details = details;
  }
}

/** A readable message for anything thrown, including non-Error values. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
