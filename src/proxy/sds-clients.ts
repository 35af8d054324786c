// One xDS client per SDS server a proxy's secrets name (api_config_source → a static cluster such as Istio's sds-grpc), speaking Envoy's SecretDiscoveryService.
//
// Envoy opens a separate gRPC stream per api_config_source and calls envoy.service.secret.v3.SecretDiscoveryService
// (StreamSecrets / DeltaSecrets), not ADS: istio-agent serves only that service. The messages are ADS's, so the
// shared XdsClient runs the stream; a call-invocation transformer points its ADS method at the SDS one.
import type * as grpc from '@grpc/grpc-js';
import type { Node } from '../xds/ads-service.js';
import { XdsClient, type ApplyHook, type XdsResourceType } from '../xds/client/index.js';
import { SECRET } from '../xds/type-urls.js';

export const SDS_SERVICE_NAME = 'envoy.service.secret.v3.SecretDiscoveryService';
const ADS_TO_SDS: Readonly<Record<string, string>> = {
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources': `/${SDS_SERVICE_NAME}/StreamSecrets`,
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources': `/${SDS_SERVICE_NAME}/DeltaSecrets`,
};

/** Channel options that make an XdsClient call the SDS service's methods instead of ADS's (grpc-js callInvocationTransformer). */
export function secretDiscoveryChannelOptions(): grpc.ChannelOptions {
  return {
    callInvocationTransformer: (properties: { methodDefinition: { path: string } }) => {
      const path = ADS_TO_SDS[properties.methodDefinition.path];
      return path ? { ...properties, methodDefinition: { ...properties.methodDefinition, path } } : properties;
    },
  };
}

export interface SdsClientsOptions<T> {
  readonly node: Node;
  /** `host:port` of a static cluster's first endpoint, or undefined when there is no such cluster. */
  resolveCluster(clusterName: string): string | undefined;
  /** Decodes (and checks) each Secret; the same type the ADS client uses. */
  readonly secretType: XdsResourceType<T>;
  readonly apply: ApplyHook<T>;
  /** Called once per new client, to attach logging and counters. */
  readonly onClient?: (client: XdsClient, clusterName: string) => void;
}

export interface SdsSubscription {
  readonly clusterName: string;
  readonly mode: 'sotw' | 'delta';
  readonly names: ReadonlySet<string>;
}

export class SdsClients<T> {
  private readonly options: SdsClientsOptions<T>;
  private readonly byCluster = new Map<string, { client: XdsClient; mode: 'sotw' | 'delta' }>();

  constructor(options: SdsClientsOptions<T>) {
    this.options = options;
  }

  /** Makes the subscriptions exactly `wanted`: new servers get a client, names no longer referenced are unsubscribed. */
  sync(wanted: readonly SdsSubscription[]): void {
    for (const { clusterName, mode, names } of wanted) {
      let entry = this.byCluster.get(clusterName);
      if (entry && entry.mode !== mode) {
        entry.client.close();
        this.byCluster.delete(clusterName);
        entry = undefined;
      }
      if (!entry) {
        const server = this.options.resolveCluster(clusterName);
        if (!server) continue; // Reported when the reference was checked.
        const client = new XdsClient({ server, node: this.options.node, mode, resourceTypes: [], channelOptions: secretDiscoveryChannelOptions() });
        client.register(this.options.secretType, this.options.apply);
        this.options.onClient?.(client, clusterName);
        entry = { client, mode };
        this.byCluster.set(clusterName, entry);
      }
      const current = new Set(entry.client.status().types.find((t) => t.typeUrl === SECRET)?.subscribedNames ?? []);
      const added = [...names].filter((n) => !current.has(n));
      const removed = [...current].filter((n) => !names.has(n));
      if (added.length > 0) entry.client.subscribe(SECRET, added);
      if (removed.length > 0) entry.client.unsubscribe(SECRET, removed);
    }
    // A server no reference names any more: its stream goes (Envoy drops an SDS subscription with its last user).
    const keep = new Set(wanted.map((w) => w.clusterName));
    for (const [clusterName, entry] of this.byCluster) {
      if (keep.has(clusterName)) continue;
      const held = entry.client.status().types.find((t) => t.typeUrl === SECRET)?.subscribedNames ?? [];
      if (held.length > 0) entry.client.unsubscribe(SECRET, held);
      entry.client.close();
      this.byCluster.delete(clusterName);
    }
  }

  /** The clients by cluster name, for stats and admin. */
  clients(): ReadonlyMap<string, XdsClient> {
    return new Map([...this.byCluster].map(([name, e]) => [name, e.client]));
  }

  close(): void {
    for (const { client } of this.byCluster.values()) client.close();
    this.byCluster.clear();
  }
}
