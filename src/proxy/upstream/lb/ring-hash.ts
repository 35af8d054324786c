// RING_HASH: Envoy's ketama-style ring of xxHash64(`ip:port_i`) entries, sized from minimum_ring_size/maximum_ring_size.
import { xxHash64 } from '../../../common/xxhash64.js';
import { registerLoadBalancerPolicy, type HostPicker, type LbEnvironment } from './load-balancer-policy.js';
import { rejectUnsupported, wrapped } from '../config-values.js';
import type { HostImpl } from '../host.js';
import type { LoadBalancerContext } from '../types.js';

export interface RingHashConfig {
  readonly minimumRingSize: number;
  readonly maximumRingSize: number;
}

const MAX_RING_SIZE = 8 * 1024 * 1024;

/** A random 64-bit value for requests without a hash (Envoy then picks a random ring entry). */
export function random64(env: LbEnvironment): bigint {
  return (BigInt(Math.floor(env.random() * 0x100000000)) << 32n) | BigInt(Math.floor(env.random() * 0x100000000));
}

export class RingHashPicker implements HostPicker {
  readonly ringHashes: BigUint64Array;
  readonly ringHosts: HostImpl[];

  constructor(hosts: readonly HostImpl[], weights: readonly number[], config: RingHashConfig, private readonly env: LbEnvironment) {
    const entries: { hash: bigint; host: HostImpl }[] = [];
    let total = 0;
    for (const w of weights) total += w;
    if (total > 0) {
      let minNorm = 1;
      for (const w of weights) if (w > 0) minNorm = Math.min(minNorm, w / total);
      // Scale so the least-weighted host gets a whole number of entries, within the maximum (Envoy's RingHashLoadBalancer::Ring).
      const scale = Math.min(Math.ceil(minNorm * config.minimumRingSize) / minNorm, config.maximumRingSize);
      let current = 0;
      let target = 0;
      for (let i = 0; i < hosts.length; i++) {
        const w = weights[i]!;
        if (w <= 0) continue;
        const host = hosts[i]!;
        const prefix = `${host.addressText}_`;
        target += (scale * w) / total;
        for (let j = 0; current < target; j++, current++) entries.push({ hash: xxHash64(prefix + j), host });
      }
    }
    entries.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
    this.ringHashes = new BigUint64Array(entries.length);
    this.ringHosts = new Array<HostImpl>(entries.length);
    entries.forEach((e, i) => {
      this.ringHashes[i] = e.hash;
      this.ringHosts[i] = e.host;
    });
  }

  pick(context: LoadBalancerContext, attempt: number): HostImpl | undefined {
    const n = this.ringHashes.length;
    if (n === 0) return undefined;
    const h = context.hashKey ?? random64(this.env);
    // First entry whose hash is >= h, wrapping to the start.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ringHashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    // A retry that must avoid the previous host behaves as if that entry were not on the ring.
    return this.ringHosts[(lo + attempt) % n];
  }
}

registerLoadBalancerPolicy<RingHashConfig>({
  name: 'RING_HASH',
  configField: 'ring_hash_lb_config',
  kind: 'hash',
  compile(cluster, path, problems) {
    const c = cluster.ring_hash_lb_config;
    const p = `${path}.ring_hash_lb_config`;
    rejectUnsupported(c, ['minimum_ring_size', 'maximum_ring_size', 'hash_function'], p, problems);
    if (c?.hash_function !== undefined && c.hash_function !== 'XX_HASH' && c.hash_function !== 0) {
      problems.push(`${p}.hash_function: only XX_HASH is supported, got ${String(c.hash_function)}`);
    }
    const minimumRingSize = wrapped(c?.minimum_ring_size, 1024);
    const maximumRingSize = wrapped(c?.maximum_ring_size, MAX_RING_SIZE);
    if (minimumRingSize < 1) problems.push(`${p}.minimum_ring_size: must be at least 1`);
    if (maximumRingSize > MAX_RING_SIZE) problems.push(`${p}.maximum_ring_size: must be at most ${MAX_RING_SIZE}, got ${maximumRingSize}`);
    if (minimumRingSize > maximumRingSize) problems.push(`${p}.minimum_ring_size: ${minimumRingSize} is larger than maximum_ring_size ${maximumRingSize}`);
    return { minimumRingSize, maximumRingSize };
  },
  createPicker: (hosts, weights, config, env) => new RingHashPicker(hosts, weights, config, env),
});
