// The envelope every Istio resource shares (apiVersion, kind, metadata, spec) and where it was read from.

/** The Istio kinds Trellis accepts, with their API group. */
export const KIND_GROUPS = {
  VirtualService: 'networking.istio.io',
  DestinationRule: 'networking.istio.io',
  Gateway: 'networking.istio.io',
  ServiceEntry: 'networking.istio.io',
  WorkloadEntry: 'networking.istio.io',
  Sidecar: 'networking.istio.io',
  PeerAuthentication: 'security.istio.io',
  RequestAuthentication: 'security.istio.io',
  AuthorizationPolicy: 'security.istio.io',
  Telemetry: 'telemetry.istio.io',
} as const;

export type Kind = keyof typeof KIND_GROUPS;

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Set by the config store: changes whenever the stored resource changes. */
  resourceVersion?: string;
}

/** Where a resource came from, so every error can name the file. */
export interface ResourceOrigin {
  /** File path (file store), `kube` (Kubernetes), or `memory`. */
  source: string;
  /** Index of the YAML document within the file, from 0. */
  document?: number;
}

export interface IstioResource<K extends Kind = Kind, S = unknown> {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  origin?: ResourceOrigin;
}

/** `VirtualService default/reviews`, the way messages name a resource. */
export function resourceRef(resource: Pick<IstioResource, 'kind' | 'metadata'>): string {
  return `${resource.kind} ${resource.metadata.namespace}/${resource.metadata.name}`;
}

/** A key unique within a config store: kind, namespace, name. */
export function resourceKey(resource: Pick<IstioResource, 'kind' | 'metadata'>): string {
  return `${resource.kind}/${resource.metadata.namespace}/${resource.metadata.name}`;
}
