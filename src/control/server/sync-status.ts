// istiod's syncz: per connected proxy and xDS type, what was sent and acked, and whether the proxy is in sync.
import type { StreamStatus, TypeStatus } from '../../xds/server/index.js';
import { RESOURCE_TYPE_URLS, shortName } from '../../xds/type-urls.js';

/** istioctl proxy-status words. */
export type SyncState = 'SYNCED' | 'STALE' | 'NOT SENT' | 'NACKED' | 'IGNORED';

export interface TypeSyncStatus {
  readonly typeUrl: string;
  readonly state: SyncState;
  readonly sentVersion: string;
  readonly sentNonce: string;
  readonly ackedVersion: string;
  readonly sentCount: number;
  readonly nack?: { readonly version: string; readonly nonce: string; readonly message: string; readonly at: string };
}

export interface ProxySyncStatus {
  readonly proxy: string;
  readonly clusterId: string;
  readonly streamId: string;
  readonly mode: string;
  readonly peer: string;
  readonly connectedAt: string;
  readonly controlPlaneVersion: string;
  /** The control plane instance (istiod's pod name; here the host name). */
  readonly controlPlane: string;
  /** The proxy's ISTIO_VERSION metadata, when it sent one. */
  readonly proxyVersion: string;
  /** By short name: CDS, LDS, EDS, RDS, SDS. */
  readonly types: Readonly<Record<string, TypeSyncStatus>>;
}

/**
 * The state of one type on one stream. A NACK of the latest response wins; an ACK of the latest sent version is
 * SYNCED; anything sent but not (yet) acknowledged is STALE; a type the proxy never subscribed to is IGNORED.
 */
export function syncState(status: TypeStatus | undefined): SyncState {
  if (!status) return 'IGNORED';
  // A reconnecting proxy that presented the current version of a wildcard type gets no response (sotw-stream.ts): it
  // runs exactly what would be sent, which the stream records as sent and acknowledged. That proxy is in sync.
  if (status.sentCount === 0) return status.lastSentVersion !== '' && status.lastAckedVersion === status.lastSentVersion ? 'SYNCED' : 'NOT SENT';
  if (status.lastNack && status.lastNack.nonce === status.lastSentNonce) return 'NACKED';
  return status.lastAckedVersion === status.lastSentVersion ? 'SYNCED' : 'STALE';
}

export function proxySyncStatus(stream: StreamStatus, controlPlaneVersion: string, controlPlane: string): ProxySyncStatus {
  const types: Record<string, TypeSyncStatus> = {};
  for (const typeUrl of RESOURCE_TYPE_URLS) {
    const status = stream.types[typeUrl];
    types[shortName(typeUrl)] = {
      typeUrl,
      state: syncState(status),
      sentVersion: status?.lastSentVersion ?? '',
      sentNonce: status?.lastSentNonce ?? '',
      ackedVersion: status?.lastAckedVersion ?? '',
      sentCount: status?.sentCount ?? 0,
      ...(status?.lastNack
        ? { nack: { version: status.lastNack.version, nonce: status.lastNack.nonce, message: status.lastNack.message, at: status.lastNack.at.toISOString() } }
        : {}),
    };
  }
  return {
    proxy: stream.node.id,
    // Istio's CLUSTER_ID metadata (multi-cluster); a single cluster is `Kubernetes` in istiod too.
    clusterId: typeof stream.node.metadata['CLUSTER_ID'] === 'string' ? stream.node.metadata['CLUSTER_ID'] : 'Kubernetes',
    streamId: stream.id,
    mode: stream.mode,
    peer: stream.peer,
    connectedAt: stream.connectedAt.toISOString(),
    controlPlaneVersion,
    controlPlane,
    proxyVersion: typeof stream.node.metadata['ISTIO_VERSION'] === 'string' ? stream.node.metadata['ISTIO_VERSION'] : '',
    types,
  };
}
