// A proxy's encoded resources of one type cached by (type, push generation, the proxy's config-relevant fields), so replicas of one workload generate once per push.
import type { Proxy } from '../model/proxy.js';
import type { EncodedResource } from './resource-interner.js';

export interface XdsCacheStats {
  hits: number;
  misses: number;
  size: number;
}

// Metadata that names one instance without changing what it is configured with (Istio bootstrap keys).
const PER_INSTANCE_METADATA = new Set(['NAME', 'POD_NAME', 'HOSTNAME', 'INSTANCE_NAME']);

/**
 * What a generator may read of a proxy, minus what only identifies it (node id, pod name): two replicas of one
 * workload (same type, IPs, namespace, labels, service account, locality, metadata) have the same key.
 */
export function proxyConfigKey(proxy: Proxy): string {
  const metadata = Object.entries(proxy.metadata)
    .filter(([key]) => !PER_INSTANCE_METADATA.has(key))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const labels = Object.entries(proxy.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    proxy.type,
    proxy.ipAddresses,
    proxy.namespace,
    proxy.domainSuffix,
    labels,
    proxy.serviceAccount,
    proxy.locality,
    proxy.workloadName,
    proxy.cluster,
    metadata,
  ]);
}

/**
 * One push generation's worth of per-proxy resource lists. A new generation (a new PushContext) empties it: entries are
 * only ever valid for the snapshot they were generated from, so there is nothing to invalidate selectively. Entries are
 * lists of shared, interned resources (see ResourceInterner), so an entry costs a list of references, not a copy of
 * the config; proxies that are not replicas are served by the generators' per-resource sharing instead.
 */
export class XdsCache {
  private generation = -1;
  private readonly entries = new Map<string, readonly EncodedResource[]>();
  private hitCount = 0;
  private missCount = 0;

  constructor(private readonly maxEntries = 1_000) {}

  /** The cached resources for (type, generation, proxy), or the generated ones, stored for the next identical proxy. */
  getOrGenerate(typeUrl: string, generation: number, proxy: Proxy, generate: () => readonly EncodedResource[]): { resources: readonly EncodedResource[]; hit: boolean } {
    if (generation !== this.generation) {
      this.entries.clear();
      this.generation = generation;
    }
    const key = `${typeUrl}\n${proxyConfigKey(proxy)}`;
    const cached = this.entries.get(key);
    if (cached) {
      this.hitCount++;
      return { resources: cached, hit: true };
    }
    this.missCount++;
    const resources = generate();
    // Oldest first out: a mesh with more distinct proxy shapes than the bound still works, just with fewer hits.
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, resources);
    return { resources, hit: false };
  }

  stats(): XdsCacheStats {
    return { hits: this.hitCount, misses: this.missCount, size: this.entries.size };
  }

  clear(): void {
    this.entries.clear();
  }
}
