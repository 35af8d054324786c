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

test('panic is per priority only when all priorities together cannot take the traffic; total panic spreads by host count', async () => {
  const { computePriorityLoad } = await import('../../../src/proxy/upstream/lb/priority-load-balancer.js');
  const h = (ip: string, priority: number, health: HostHealth = 'HEALTHY'): HostImpl => new HostImpl(ip, 80, { priority, health });
  // P0 has 1 of 3 healthy (below 50 %), but P1 absorbs the rest: no panic, P0's share goes to its healthy host only.
  const spill = [h('10.0.0.1', 0), h('10.0.0.2', 0, 'UNHEALTHY'), h('10.0.0.3', 0, 'UNHEALTHY'), h('10.0.1.1', 1), h('10.0.1.2', 1)];
  const load = computePriorityLoad(buildPrioritySet(spill, new Map()), 50);
  assert.deepEqual(load, { healthyLoad: [46, 54], degradedLoad: [0, 0], panic: [false, false] });
  for (const policy of POLICIES) {
    const m = picks(balancer(policy, spill), 2000);
    assert.equal((m.get('10.0.0.2') ?? 0) + (m.get('10.0.0.3') ?? 0), 0, `${policy}: unhealthy P0 hosts unused`);
    assert.ok(Math.abs(m.get('10.0.0.1')! / 2000 - 0.46) < 0.05, `${policy}: P0 share ${m.get('10.0.0.1')}`);
  }
  // Both priorities at 1 of 4: total availability 70 % < 100 %, both in panic → total panic, load by host count.
  const both = [h('10.0.0.1', 0), ...['2', '3', '4'].map((i) => h(`10.0.0.${i}`, 0, 'UNHEALTHY')), h('10.0.1.1', 1), ...['2', '3', '4'].map((i) => h(`10.0.1.${i}`, 1, 'UNHEALTHY'))];
  assert.deepEqual(computePriorityLoad(buildPrioritySet(both, new Map()), 50), { healthyLoad: [50, 50], degradedLoad: [0, 0], panic: [true, true] });
  assert.equal(picks(balancer('ROUND_ROBIN', both), 800).size, 8, 'total panic: every host');
  // Everything down across three priorities of 1, 1 and 2 hosts: 25/25/50.
  const down = [h('10.0.0.1', 0, 'UNHEALTHY'), h('10.0.1.1', 1, 'UNHEALTHY'), h('10.0.2.1', 2, 'UNHEALTHY'), h('10.0.2.2', 2, 'UNHEALTHY')];
  assert.deepEqual(computePriorityLoad(buildPrioritySet(down, new Map()), 50).healthyLoad, [25, 25, 50]);
  // Panic disabled: nothing found.
  assert.deepEqual(computePriorityLoad(buildPrioritySet(down, new Map()), 0), { healthyLoad: [100, 0, 0], degradedLoad: [0, 0, 0], panic: [false, false, false] });
});

test('/clusters health_flags: Envoy order and names, `healthy` when none', async () => {
  const { healthFlagsText } = await import('../../../src/proxy/upstream/host.js');
  const h = new HostImpl('10.0.0.1', 80);
  assert.equal(healthFlagsText(h), 'healthy');
  Object.assign(h.healthFlags, { failedActiveHc: true, failedOutlierCheck: true, degradedActiveHc: true, pendingDynamicRemoval: true, pendingActiveHc: true, activeHcTimeout: true });
  assert.equal(healthFlagsText(h), '/failed_active_hc/failed_outlier_check/degraded_active_hc/pending_dynamic_removal/pending_active_hc/active_hc_timeout');
  for (const [health, text] of [['UNHEALTHY', '/failed_eds_health'], ['TIMEOUT', '/failed_eds_health'], ['DEGRADED', '/degraded_eds_health'], ['DRAINING', '/eds_status_draining'], ['UNKNOWN', 'healthy']] as const) {
    assert.equal(healthFlagsText(new HostImpl('10.0.0.2', 80, { health })), text);
  }
});
