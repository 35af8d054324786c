// Envoy v3 resource type URLs, and the protobuf message name behind each.

export const TYPE_URL_PREFIX = 'type.googleapis.com/';

export const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_CONFIGURATION = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const CLUSTER_LOAD_ASSIGNMENT = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
/** Istio's NDS: the name table the agent's DNS proxy answers from (not an Envoy type; only agents ask for it). */
export const NAME_TABLE = 'type.googleapis.com/istio.networking.nds.v1.NameTable';

/** The five resource types of ADS, in the order Envoy asks for them (CDS before EDS, LDS before RDS). */
export const RESOURCE_TYPE_URLS = [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET] as const;
export type ResourceTypeUrl = (typeof RESOURCE_TYPE_URLS)[number];

/**
 * Types whose empty subscription means "everything" (wildcard). For the others an empty
 * `resource_names` is an unsubscribe (xDS protocol: "How the client specifies what resources to return").
 */
export const WILDCARD_CAPABLE: ReadonlySet<string> = new Set([LISTENER, CLUSTER, NAME_TABLE]);

/** Short names used in logs, metrics and the CLI (Envoy's and Istio's: LDS, RDS, CDS, EDS, SDS). */
export const SHORT_NAMES: Readonly<Record<ResourceTypeUrl, string>> = {
  [LISTENER]: 'LDS',
  [ROUTE_CONFIGURATION]: 'RDS',
  [CLUSTER]: 'CDS',
  [CLUSTER_LOAD_ASSIGNMENT]: 'EDS',
  [SECRET]: 'SDS',
};

export function isResourceTypeUrl(url: string): url is ResourceTypeUrl {
  return (RESOURCE_TYPE_URLS as readonly string[]).includes(url);
}

export function shortName(typeUrl: string): string {
  if (typeUrl === NAME_TABLE) return 'NDS';
  return isResourceTypeUrl(typeUrl) ? SHORT_NAMES[typeUrl] : typeUrl;
}

/** `type.googleapis.com/a.b.C` → `a.b.C`. */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

export function typeUrlOf(messageName: string): string {
  return TYPE_URL_PREFIX + messageName;
}
