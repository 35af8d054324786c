// Envoy's names for the security filters and their config messages, as Istio's `wellknown` package spells them.

export const HTTP_RBAC_FILTER = 'envoy.filters.http.rbac';
export const HTTP_RBAC_MESSAGE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
export const NETWORK_RBAC_FILTER = 'envoy.filters.network.rbac';
export const NETWORK_RBAC_MESSAGE = 'envoy.extensions.filters.network.rbac.v3.RBAC';
export const EXT_AUTHZ_FILTER = 'envoy.filters.http.ext_authz';
export const EXT_AUTHZ_MESSAGE = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';
export const JWT_AUTHN_MESSAGE = 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

/** Istio's stat prefix of network RBAC filters (RBACTCPFilterStatPrefix). */
export const RBAC_TCP_STAT_PREFIX = 'tcp.';
