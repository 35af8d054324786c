// Where a proxy fetches a RequestAuthentication's jwksUri from: the outbound cluster `outbound|<port>||<host>`, which
// is the registry's when a ServiceEntry (or service) declares that host and port, and otherwise one Trellis generates
// for CDS here (Istio instead names the same cluster without generating it, and the fetch fails until one is declared).
import { isIP } from 'node:net';
import type { RequestAuthentication } from '../../../api/index.js';
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';

type Cluster = envoy.config.cluster.v3.Cluster;

export interface JwksUriInfo {
  readonly hostname: string;
  readonly port: number;
  readonly useSsl: boolean;
}

/** Istio's ParseJwksURI: http (port 80) or https (443) unless the URI names a port. Undefined for anything else. */
export function parseJwksUri(uri: string): JwksUriInfo | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  const useSsl = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : useSsl ? 443 : 80;
  // URL keeps the brackets of an IPv6 host; cluster names and SNI use the bare address.
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { hostname, port, useSsl };
}

export function jwksClusterName(info: JwksUriInfo): string {
  return `outbound|${info.port}||${info.hostname}`;
}

/** True when the registry already has an outbound cluster for this host and port (a service declaring it). */
export function registryHasJwksCluster(push: PushContext, info: JwksUriInfo): boolean {
  return push.services().some((s) => s.hostname === info.hostname && s.ports.some((p) => p.number === info.port));
}

/** The system trust store Istio also points Envoy at to verify public servers (VERIFY_CERTIFICATE_AT_CLIENT). */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The JWKS clusters the CDS generator adds for `proxy` (sidecar or gateway): one per jwksUri (of the
 * RequestAuthentications selecting it, without inline `jwks`) whose cluster the proxy does not already get.
 * `existing` is the names of the clusters the generator built for the proxy: a service it sees that declares the
 * host and port serves the JWKS fetch itself. Without `existing`, any registry service declaring them counts.
 */
export function buildJwksClusters(push: PushContext, proxy: Proxy, existing?: ReadonlySet<string>): Cluster[] {
  return jwksClustersFor(push, push.requestAuthentications(proxy), push.mesh.connectTimeoutMs, existing);
}

export function jwksClustersFor(push: PushContext, policies: readonly RequestAuthentication[], connectTimeoutMs: number, existing?: ReadonlySet<string>): Cluster[] {
  const out = new Map<string, Cluster>();
  for (const policy of policies) {
    for (const rule of policy.spec.jwtRules ?? []) {
      if (rule.jwks || !rule.jwksUri) continue;
      const info = parseJwksUri(rule.jwksUri);
      if (!info) continue;
      if (existing ? existing.has(jwksClusterName(info)) : registryHasJwksCluster(push, info)) continue;
      const name = jwksClusterName(info);
      if (!out.has(name)) out.set(name, jwksCluster(info, connectTimeoutMs));
    }
  }
  return [...out.values()].sort((a, b) => (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
}

/**
 * A cluster to the JWKS server itself: STATIC for an IP, LOGICAL_DNS for a name (one server, re-resolved, as Envoy
 * advises for web services); https verifies the server against the system trust store, with the host as SNI (names only) and as the SAN to check.
 */
export function jwksCluster(info: JwksUriInfo, connectTimeoutMs: number): Cluster {
  const ip = isIP(info.hostname) !== 0;
  const cluster: Cluster = {
    name: jwksClusterName(info),
    type: ip ? 'STATIC' : 'LOGICAL_DNS',
    connect_timeout: { seconds: Math.floor(connectTimeoutMs / 1000), nanos: (connectTimeoutMs % 1000) * 1e6 },
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: jwksClusterName(info),
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: info.hostname, port_value: info.port } } } }] }],
    },
  };
  if (!ip) cluster.dns_lookup_family = 'V4_ONLY';
  if (info.useSsl) {
    const tls: envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext = {
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: SYSTEM_CA_BUNDLE },
          match_typed_subject_alt_names: [{ san_type: ip ? 'IP_ADDRESS' : 'DNS', matcher: { exact: info.hostname } }],
        },
      },
      ...(ip ? {} : { sni: info.hostname }),
    };
    cluster.transport_socket = { name: 'envoy.transport_sockets.tls', typed_config: packAny('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', tls) };
  }
  return cluster;
}
