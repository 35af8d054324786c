// MAGLEV: Envoy's Maglev lookup table (table_size prime, default 65537), filled by weighted permutations of xxHash64(`ip:port`).
import { xxHash64 } from '../../../common/xxhash64.js';
import { registerLoadBalancerPolicy, type HostPicker, type LbEnvironment } from './load-balancer-policy.js';
import { random64 } from './ring-hash.js';
import { rejectUnsupported, wrapped } from '../config-values.js';
import type { HostImpl } from '../host.js';
import type { LoadBalancerContext } from '../types.js';

export interface MaglevConfig {
  readonly tableSize: number;
}

const MAX_TABLE_SIZE = 5000011;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export class MaglevPicker implements HostPicker {
  readonly table: HostImpl[];
  private readonly size: bigint;

  constructor(hosts: readonly HostImpl[], weights: readonly number[], config: MaglevConfig, private readonly env: LbEnvironment) {
    const m = config.tableSize;
    this.size = BigInt(m);
    this.table = [];
    let total = 0;
    for (const w of weights) total += w;
    // Sorted by key so the table depends on the set of hosts, not on the order EDS listed them in.
    const entries = hosts
      .map((host, i) => ({ host, weight: total > 0 ? weights[i]! / total : 0 }))
      .filter((e) => e.weight > 0)
      .sort((a, b) => (a.host.addressText < b.host.addressText ? -1 : a.host.addressText > b.host.addressText ? 1 : 0))
      .map((e) => ({
        ...e,
        offset: Number(xxHash64(e.host.addressText) % this.size),
        skip: Number((xxHash64(e.host.addressText, 1n) % BigInt(m - 1)) + 1n),
        next: 0,
        target: 0,
      }));
    if (entries.length === 0) return;
    const maxWeight = Math.max(...entries.map((e) => e.weight));
    const table = new Array<HostImpl | undefined>(m).fill(undefined);
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < entries.length && filled < m; i++) {
        const e = entries[i]!;
        // A host of the maximum weight is placed every iteration; one of a third of it, every third iteration.
        if (iteration * e.weight < e.target) continue;
        e.target += maxWeight;
        let c = (e.offset + e.skip * e.next) % m;
        while (table[c] !== undefined) {
          e.next++;
          c = (e.offset + e.skip * e.next) % m;
        }
        table[c] = e.host;
        e.next++;
        filled++;
      }
    }
    this.table = table as HostImpl[];
  }

  pick(context: LoadBalancerContext, attempt: number): HostImpl | undefined {
    if (this.table.length === 0) return undefined;
    let h = context.hashKey ?? random64(this.env);
    // Envoy: flip most bits of the hash for each retry attempt so retries spread over other hosts.
    if (attempt > 0) h ^= (1n << 64n) - BigInt(attempt);
    return this.table[Number(h % this.size)];
  }
}

registerLoadBalancerPolicy<MaglevConfig>({
  name: 'MAGLEV',
  configField: 'maglev_lb_config',
  kind: 'hash',
  compile(cluster, path, problems) {
    const c = cluster.maglev_lb_config;
    const p = `${path}.maglev_lb_config`;
    rejectUnsupported(c, ['table_size'], p, problems);
    const tableSize = wrapped(c?.table_size, 65537);
    if (!isPrime(tableSize) || tableSize > MAX_TABLE_SIZE) problems.push(`${p}.table_size: must be a prime number no larger than ${MAX_TABLE_SIZE}, got ${tableSize}`);
    return { tableSize };
  },
  createPicker: (hosts, weights, config, env) => new MaglevPicker(hosts, weights, config, env),
});
