// The agent's NDS subscription: its own ADS stream (the proxy's node identity, DNS capture metadata) feeding the DNS proxy's name table.
import { XdsClient, type XdsClientMode } from '../../xds/client/xds-client.js';
import { WILDCARD } from '../../xds/client/resource-type.js';
import { nameTableResourceType, type NameInfo } from '../../xds/client/resource-types/name-table.js';
import type { envoy } from '../../xds/generated/types.js';
import { NAME_TABLE } from '../../xds/type-urls.js';

export interface NameTableClientOptions {
  /** The control plane's ADS address (the bootstrap's xds-grpc cluster). */
  readonly server: string;
  readonly mode?: XdsClientMode;
  /** The proxy's node; DNS_CAPTURE (and DNS_AUTO_ALLOCATE) are added to its metadata. */
  readonly node: envoy.config.core.v3.Node;
  /** Ask for auto-allocated VIPs for ServiceEntries without addresses (ISTIO_META_DNS_AUTO_ALLOCATE). */
  readonly autoAllocate: boolean;
  /** Called with the whole table each time it changes. */
  readonly onTable: (table: Readonly<Record<string, NameInfo>>) => void;
}

/**
 * Istio's agent asks for NDS on the proxy's own xDS stream; Trellis's proxy runs under any control plane, so the agent
 * keeps its own stream for the one type only it uses (the control plane counts both streams under the node id).
 */
export class NameTableClient {
  private readonly client: XdsClient;
  private readonly hosts = new Map<string, NameInfo>();

  constructor(options: NameTableClientOptions) {
    const fields = { ...(options.node.metadata?.fields ?? {}) };
    fields['DNS_CAPTURE'] = { string_value: 'true' };
    if (options.autoAllocate) fields['DNS_AUTO_ALLOCATE'] = { string_value: 'true' };
    this.client = new XdsClient({
      server: options.server,
      ...(options.mode ? { mode: options.mode } : {}),
      node: { ...options.node, metadata: { fields } },
      resourceTypes: [],
    });
    this.client.register(nameTableResourceType, (update) => {
      for (const name of update.removed) this.hosts.delete(name);
      for (const [name, info] of update.changed) this.hosts.set(name, info);
      options.onTable(Object.fromEntries(this.hosts));
    });
    // An empty table is still an answer: the first ACK (even of no hosts) marks the proxy ready.
    this.client.on('ack', (event) => {
      if (event.typeUrl === NAME_TABLE && event.changed.length === 0 && event.removed.length === 0 && !this.seen) options.onTable(Object.fromEntries(this.hosts));
      this.seen = true;
    });
  }

  private seen = false;

  start(): void {
    this.client.subscribe(NAME_TABLE, WILDCARD);
  }

  get xds(): XdsClient {
    return this.client;
  }

  close(): void {
    this.client.close();
  }
}
