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

/** The API versions at which Istio serves each kind (`group/version` is what `apiVersion` holds). */
export const KIND_VERSIONS: { readonly [K in Kind]: readonly string[] } = {
  VirtualService: ['v1', 'v1beta1', 'v1alpha3'],
  DestinationRule: ['v1', 'v1beta1', 'v1alpha3'],
  Gateway: ['v1', 'v1beta1', 'v1alpha3'],
  ServiceEntry: ['v1', 'v1beta1', 'v1alpha3'],
  WorkloadEntry: ['v1', 'v1beta1', 'v1alpha3'],
  Sidecar: ['v1', 'v1beta1', 'v1alpha3'],
  PeerAuthentication: ['v1', 'v1beta1'],
  RequestAuthentication: ['v1', 'v1beta1'],
  AuthorizationPolicy: ['v1', 'v1beta1'],
  Telemetry: ['v1', 'v1alpha1'],
};

/** True when `kind` is one of the Istio kinds Trellis accepts. */
export function isKind(kind: unknown): kind is Kind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(KIND_GROUPS, kind);
}

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
