// The CA's default lifetimes (Istio's environment defaults), apart from the CA itself so the CLI can show them without loading X.509 code.

/** Istio's DEFAULT_WORKLOAD_CERT_TTL (24 h). */
export const DEFAULT_WORKLOAD_CERT_TTL_MS = 24 * 3600 * 1000;
/** Istio's MAX_WORKLOAD_CERT_TTL (90 days). */
export const DEFAULT_MAX_WORKLOAD_CERT_TTL_MS = 90 * 24 * 3600 * 1000;
/**
 * How long a replaced root stays trusted: two default workload lifetimes. Agents renew at half life, so within
 * 12 h every workload holds a certificate of the new root, and the last ones of the old root expire within 24 h.
 */
export const DEFAULT_ROOT_ROTATION_OVERLAP_MS = 2 * DEFAULT_WORKLOAD_CERT_TTL_MS;
/** Istio's CITADEL_SELF_SIGNED_CA_CERT_TTL: ten years. */
export const DEFAULT_ROOT_CERT_TTL_MS = 3650 * 24 * 3600 * 1000;
