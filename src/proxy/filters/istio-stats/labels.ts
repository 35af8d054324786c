// Istio's standard metric labels for one finished request, from this node's metadata, the exchanged peer's and the StreamInfo.
import { headerValue } from '../../http/headers.js';
import { formatResponseFlags } from '../../http/response-flags.js';
import type { StreamInfo } from '../../http/stream-info.js';
import type { PeerMetadata } from '../metadata-exchange/peer-metadata.js';
import type { IstioLabels } from './metrics.js';
import type { TcpLabels } from './tcp-metrics.js';

export const UNKNOWN = 'unknown';

export type Reporter = 'source' | 'destination';

/** One side's workload labels, as Istio derives them from node metadata. */
export interface WorkloadLabels {
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
}

export const UNKNOWN_WORKLOAD: WorkloadLabels = {
  workload: UNKNOWN,
  namespace: UNKNOWN,
  app: UNKNOWN,
  version: UNKNOWN,
  canonicalService: UNKNOWN,
  canonicalRevision: UNKNOWN,
  cluster: UNKNOWN,
};

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Longest label value kept; longer ones are cut, so a peer cannot blow up series by sending huge values. */
export const MAX_LABEL_VALUE_LENGTH = 256;

function bounded(v: string): string {
  return v.length > MAX_LABEL_VALUE_LENGTH ? v.slice(0, MAX_LABEL_VALUE_LENGTH) : v;
}

/** Labels already derived per metadata object (the peer-metadata cache hands out the same object per peer). */
const derived = new WeakMap<object, WorkloadLabels>();

/** Istio's workload labels from (exchanged or own) node metadata: WORKLOAD_NAME, NAMESPACE, LABELS, CLUSTER_ID. */
export function workloadLabels(metadata: Readonly<Record<string, unknown>> | undefined): WorkloadLabels {
  if (!metadata) return UNKNOWN_WORKLOAD;
  let labels = derived.get(metadata);
  if (!labels) derived.set(metadata, (labels = deriveWorkloadLabels(metadata)));
  return labels;
}

function deriveWorkloadLabels(metadata: Readonly<Record<string, unknown>>): WorkloadLabels {
  const labels = (metadata['LABELS'] !== null && typeof metadata['LABELS'] === 'object' ? metadata['LABELS'] : {}) as Record<string, unknown>;
  const workload = str(metadata['WORKLOAD_NAME']) ?? str(metadata['NAME']);
  const app = str(labels['app']) ?? str(labels['app.kubernetes.io/name']);
  const version = str(labels['version']) ?? str(labels['app.kubernetes.io/version']);
  return {
    workload: bounded(workload ?? UNKNOWN),
    namespace: bounded(str(metadata['NAMESPACE']) ?? UNKNOWN),
    app: bounded(app ?? UNKNOWN),
    version: bounded(version ?? UNKNOWN),
    // Istio's canonical service defaults: the label, else app, else the workload name; revision: label, else version, else "latest".
    canonicalService: bounded(str(labels['service.istio.io/canonical-name']) ?? app ?? workload ?? UNKNOWN),
    canonicalRevision: bounded(str(labels['service.istio.io/canonical-revision']) ?? version ?? 'latest'),
    cluster: bounded(str(metadata['CLUSTER_ID']) ?? UNKNOWN),
  };
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` → `reviews.default.svc.cluster.local`; other names → undefined. */
export function serviceHostOfCluster(cluster: string | undefined): string | undefined {
  if (!cluster || !cluster.startsWith('outbound|')) return undefined;
  const host = cluster.split('|')[3];
  return host ? host : undefined;
}

/** Host of an authority, without the port (`reviews:9080` → `reviews`, `[::1]:80` → `::1`). */
function hostOfAuthority(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end > 0 ? authority.slice(1, end) : authority;
  }
  const colon = authority.indexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

export interface DestinationService {
  readonly service: string;
  readonly name: string;
  readonly namespace: string;
}

/**
 * destination_service*: the service host from the outbound cluster; else (inbound, or a passthrough) the request's
 * host, as Istio falls back to the Host header. `name.ns.svc.<domain>` gives name and namespace; a short host takes
 * the destination workload's namespace.
 */
export function destinationService(info: StreamInfo, destinationNamespace: string): DestinationService {
  return serviceOfHost(requestServiceHost(info), destinationNamespace, 'request');
}

function requestServiceHost(info: StreamInfo): string {
  return serviceHostOfCluster(info.upstreamCluster) ?? hostOfAuthority(headerValue(info.requestHeaders, ':authority') ?? headerValue(info.requestHeaders, 'host') ?? '');
}

function isGrpc(info: StreamInfo): boolean {
  return (headerValue(info.requestHeaders, 'content-type') ?? '').startsWith('application/grpc');
}

/** The labels HTTP and TCP metrics share: both workloads, the destination service, both principals and the security policy. */
type ConnectionLabels = Omit<IstioLabels, 'request_protocol' | 'response_flags' | 'response_code' | 'grpc_response_status'>;

/** The TLS sessions a side's principals come from (a StreamInfo and a TcpConnectionFacts both are one). */
interface TlsSides {
  /** The downstream session: the destination reporter's mTLS and both principals. */
  readonly downstreamTls?: { readonly peerUriSans: readonly string[]; readonly localUriSans?: readonly string[] } | undefined;
  /** The upstream session's URI SANs: the source reporter's principals, the server's (peer) and this proxy's (local). */
  readonly upstreamTls?: { readonly peerUriSans: readonly string[]; readonly localUriSans: readonly string[] } | undefined;
}

function principal(sans: readonly string[] | undefined): string {
  return sans?.[0] ? bounded(sans[0]) : UNKNOWN;
}

/**
 * The shared labels and the protocol's own (`tail`, in one object so a request allocates one label set);
 * `host` becomes destination_service* as a request's or a connection's (they name short hosts differently).
 */
function connectionLabels<Tail extends object>(
  reporter: Reporter,
  self: WorkloadLabels,
  peer: PeerMetadata | undefined,
  sides: TlsSides,
  host: string | undefined,
  seenBy: 'request' | 'connection',
  tail: Tail,
): ConnectionLabels & Tail {
  const other = workloadLabels(peer?.fields);
  const source = reporter === 'source' ? self : other;
  const destination = reporter === 'source' ? other : self;
  const service = serviceOfHost(host, destination.namespace, seenBy);
  const tls = sides.downstreamTls;
  const mtls = tls !== undefined && tls.peerUriSans.length > 0;
  return {
    reporter,
    source_workload: source.workload,
    source_canonical_service: source.canonicalService,
    source_canonical_revision: source.canonicalRevision,
    source_workload_namespace: source.namespace,
    // Each side knows both principals from its own TLS session: the destination from the downstream one, the source from the upstream one.
    source_principal: reporter === 'destination' ? (mtls ? principal(tls.peerUriSans) : UNKNOWN) : principal(sides.upstreamTls?.localUriSans),
    source_app: source.app,
    source_version: source.version,
    source_cluster: source.cluster,
    destination_workload: destination.workload,
    destination_workload_namespace: destination.namespace,
    destination_principal: reporter === 'destination' ? (mtls ? principal(tls.localUriSans) : UNKNOWN) : principal(sides.upstreamTls?.peerUriSans),
    destination_app: destination.app,
    destination_version: destination.version,
    destination_service: service.service,
    destination_canonical_service: destination.canonicalService,
    destination_canonical_revision: destination.canonicalRevision,
    destination_service_name: service.name,
    destination_service_namespace: service.namespace,
    destination_cluster: destination.cluster,
    connection_security_policy: reporter === 'source' ? UNKNOWN : mtls ? 'mutual_tls' : 'none',
    ...tail,
  };
}

/** All of Istio's labels for a finished request seen by `reporter`; `self` is this proxy's own workload. */
export function istioLabels(reporter: Reporter, self: WorkloadLabels, peer: PeerMetadata | undefined, info: StreamInfo): IstioLabels {
  const grpc = isGrpc(info);
  return connectionLabels(reporter, self, peer, info, requestServiceHost(info), 'request', {
    request_protocol: grpc ? 'grpc' : 'http',
    response_flags: formatResponseFlags(info.responseFlags),
    response_code: String(info.responseCode ?? 0),
    grpc_response_status: grpc ? (headerValue(info.responseHeaders ?? {}, 'grpc-status') ?? '') : '',
  });
}

/** What the TCP labels are built from: the connection's TLS sides, its cluster and Envoy's response flags. */
export interface TcpConnectionFacts {
  /** The downstream TLS session (destination reporter: the source's principal and mTLS). */
  readonly downstreamTls?: { readonly sni?: string; readonly peerUriSans: readonly string[]; readonly localUriSans?: readonly string[] };
  /** The upstream TLS session's URI SANs (source reporter): the server's (peer) and this proxy's (local). */
  readonly upstreamTls?: { readonly peerUriSans: readonly string[]; readonly localUriSans: readonly string[] };
  readonly upstreamCluster?: string;
  /** Envoy's short flags (`UF`, `UH`), `-` for none. */
  readonly responseFlags: string;
}

/** `outbound_.9080_._.reviews.default.svc.cluster.local` (Istio's mTLS SNI) → the service host. */
export function serviceHostOfSni(sni: string | undefined): string | undefined {
  if (!sni || !sni.startsWith('outbound_.')) return undefined;
  const parts = sni.split('_.');
  return parts.length >= 4 && parts[3] ? parts.slice(3).join('_.') : undefined;
}

/** Istio's TCP metric labels for one connection seen by `reporter`. */
export function istioTcpLabels(reporter: Reporter, self: WorkloadLabels, peer: PeerMetadata | undefined, facts: TcpConnectionFacts): TcpLabels {
  const host = reporter === 'source' ? serviceHostOfCluster(facts.upstreamCluster) : serviceHostOfSni(facts.downstreamTls?.sni);
  return connectionLabels(reporter, self, peer, facts, host, 'connection', { request_protocol: 'tcp', response_flags: facts.responseFlags });
}

/**
 * destination_service* of a host: `name.ns.svc.<domain>` gives name and namespace. Another host takes the destination's
 * namespace; a request's one-label host (from the Host header) is qualified in it, a connection's is named by its first label.
 */
function serviceOfHost(host: string | undefined, destinationNamespace: string, seenBy: 'request' | 'connection'): DestinationService {
  if (!host) return { service: UNKNOWN, name: UNKNOWN, namespace: destinationNamespace };
  const parts = host.split('.');
  if (parts.length >= 3 && parts[2] === 'svc') return { service: bounded(host), name: bounded(parts[0]!), namespace: bounded(parts[1]!) };
  if (seenBy === 'connection') return { service: bounded(host), name: bounded(parts[0]!), namespace: destinationNamespace };
  if (parts.length === 1 && destinationNamespace !== UNKNOWN) return { service: bounded(`${host}.${destinationNamespace}.svc.cluster.local`), name: bounded(host), namespace: destinationNamespace };
  return { service: bounded(host), name: bounded(host), namespace: destinationNamespace };
}
