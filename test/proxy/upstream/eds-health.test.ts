// EDS health status through every load balancer: HEALTHY/UNKNOWN serve, DEGRADED only for what healthy hosts cannot
// take (Envoy's degraded priority load), DRAINING/UNHEALTHY/TIMEOUT never; the same for active-HC degraded hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostImpl } from '../../../src/proxy/upstream/host.js';
import { loadBalancerPolicy } from '../../../src/proxy/upstream/lb/index.js';
import { PriorityLoadBalancer } from '../../../src/proxy/upstream/lb/priority-load-balancer.js';
import { buildPrioritySet } from '../../../src/proxy/upstream/priority-set.js';
import type { HostHealth } from '../../../src/proxy/upstream/types.js';

const POLICIES = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as const;

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function balancer(policyName: string, hosts: HostImpl[]): PriorityLoadBalancer {
  const policy = loadBalancerPolicy(policyName)!;
  const config = policy.compile({}, 'c', []);
  return new PriorityLoadBalancer(buildPrioritySet(hosts, new Map()), policy, config, { random: seeded(3) }, { panicThreshold: 50, localityWeighted: false });
}

/** Picks with request hashes spread over the whole 64-bit space (hash policies) — per-source policies ignore them. */
function picks(lb: PriorityLoadBalancer, n: number): Map<string, number> {
  const rnd = seeded(11);
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const hashKey = (BigInt(Math.floor(rnd() * 2 ** 32)) << 32n) | BigInt(Math.floor(rnd() * 2 ** 32));
    const h = lb.chooseHost({ hashKey });
    const k = h?.address ?? 'none';
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

const statuses: [string, HostHealth][] = [
  ['10.0.0.1', 'HEALTHY'],
  ['10.0.0.2', 'UNKNOWN'],
  ['10.0.0.3', 'DEGRADED'],
  ['10.0.0.4', 'DRAINING'],
  ['10.0.0.5', 'UNHEALTHY'],
  ['10.0.0.6', 'TIMEOUT'],
];

for (const policy of POLICIES) {
  test(`${policy}: DRAINING, UNHEALTHY and TIMEOUT hosts get nothing; DEGRADED gets the degraded priority load`, () => {
    const hosts = statuses.map(([ip, health]) => new HostImpl(ip, 80, { health }));
    const lb = balancer(policy, hosts);
    // Healthy 2/6 × 1.4 = 46 %, degraded 1/6 × 1.4 = 23 %: normalised to 67 % / 33 % (rounding remainder to healthy).
    assert.deepEqual(lb.priorityLoad, { healthy: [67], degraded: [33] });
    assert.equal(lb.isPanic(0), false, '3 of 6 usable is not below 50 %');
    const m = picks(lb, 3000);
    assert.deepEqual([...m.keys()].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    const degradedShare = m.get('10.0.0.3')! / 3000;
    assert.ok(Math.abs(degradedShare - 0.33) < 0.05, `degraded share ${degradedShare}`);

    // Enough healthy hosts: the degraded one gets nothing at all.
    const many = [...['1', '2', '3', '4'].map((i) => new HostImpl(`10.0.1.${i}`, 80)), new HostImpl('10.0.1.9', 80, { health: 'DEGRADED' })];
    assert.equal(picks(balancer(policy, many), 1000).get('10.0.1.9'), undefined);

    // Active health checking's degraded flag counts the same as EDS DEGRADED.
    const hc = [new HostImpl('10.0.2.1', 80), new HostImpl('10.0.2.2', 80)];
    hc[1]!.healthFlags.degradedActiveHc = true;
    hc[0]!.healthFlags.failedActiveHc = true;
    const only = picks(balancer(policy, hc), 200);
    assert.deepEqual([...only.keys()], ['10.0.2.2'], 'the degraded host is all there is');
  });
}
