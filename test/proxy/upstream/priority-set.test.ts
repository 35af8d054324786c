// The priority set a rebuild makes (hosts by priority and locality, sorted by coarse health in one pass, with the
// membership counts) and a retry's priority load holding across avoidHosts re-picks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostImpl } from '../../../src/proxy/upstream/host.js';
import { loadBalancerPolicy } from '../../../src/proxy/upstream/lb/index.js';
import { PriorityLoadBalancer } from '../../../src/proxy/upstream/lb/priority-load-balancer.js';
import { buildPrioritySet, localityWeightKey } from '../../../src/proxy/upstream/priority-set.js';
import type { HostHealth } from '../../../src/proxy/upstream/types.js';

const ZONE_A = { region: 'r', zone: 'a', subZone: '' };
const ZONE_B = { region: 'r', zone: 'b', subZone: '' };

function host(ip: string, priority: number, zone: typeof ZONE_A, health: HostHealth = 'HEALTHY'): HostImpl {
  return new HostImpl(ip, 80, { priority, locality: zone, health });
}

const ips = (hosts: readonly HostImpl[]): string[] => hosts.map((h) => h.address);

test('priority set: hosts by priority then locality in input order; health from EDS status and health flags; membership counts', () => {
  const b1 = host('10.0.0.1', 0, ZONE_B);
  const a1 = host('10.0.0.2', 0, ZONE_A, 'DEGRADED');
  const b2 = host('10.0.0.3', 0, ZONE_B);
  const a2 = host('10.0.0.4', 0, ZONE_A);
  const p2 = host('10.0.0.5', 2, ZONE_A, 'UNHEALTHY');
  const ejected = host('10.0.0.6', 2, ZONE_A);
  ejected.healthFlags.failedOutlierCheck = true;
  const hcDegraded = host('10.0.0.7', 2, ZONE_B);
  hcDegraded.healthFlags.degradedActiveHc = true;
  const set = buildPrioritySet([b1, a1, b2, a2, p2, ejected, hcDegraded], new Map([[localityWeightKey(0, ZONE_A), 3]]));
  assert.equal(set.hostSets.length, 3, 'a priority without hosts is present and empty');
  const [p0, p1, pTwo] = set.hostSets;
  assert.deepEqual(ips(p0!.hosts), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
  assert.deepEqual(ips(p0!.healthy), ['10.0.0.1', '10.0.0.3', '10.0.0.4']);
  assert.deepEqual(ips(p0!.degraded), ['10.0.0.2']);
  assert.deepEqual(p0!.localities.map((g) => [g.locality.zone, g.weight, ips(g.hosts), ips(g.healthy), ips(g.degraded)]), [
    ['b', 0, ['10.0.0.1', '10.0.0.3'], ['10.0.0.1', '10.0.0.3'], []],
    ['a', 3, ['10.0.0.2', '10.0.0.4'], ['10.0.0.4'], ['10.0.0.2']],
  ]);
  assert.deepEqual([p1!.priority, p1!.hosts, p1!.localities], [1, [], []]);
  assert.deepEqual(ips(pTwo!.healthy), []);
  assert.deepEqual(ips(pTwo!.degraded), ['10.0.0.7']);
  assert.deepEqual([set.totalHosts, set.healthyHosts, set.degradedHosts], [7, 3, 2]);
});

test('a retry excluding P0 keeps its priority load on every avoidHosts re-pick', () => {
  const a = host('10.0.0.1', 0, ZONE_A);
  const b = host('10.0.0.2', 1, ZONE_A);
  const c = host('10.0.0.3', 1, ZONE_A);
  const policy = loadBalancerPolicy('ROUND_ROBIN')!;
  const lb = new PriorityLoadBalancer(buildPrioritySet([a, b, c], new Map()), policy, policy.compile({}, 'c', []), { random: () => 0 }, { panicThreshold: 50, localityWeighted: false });
  assert.equal(lb.chooseHost({}), a, 'without exclusion all load is on P0');
  const excludedPriorities = new Set([0]);
  assert.notEqual(lb.chooseHost({ excludedPriorities }), a);
  // Every P1 host avoided: each re-pick stays in P1 (the retry load) and the last is kept, never P0's host.
  for (let i = 0; i < 4; i++) {
    const picked = lb.chooseHost({ excludedPriorities, avoidHosts: new Set([b, c]), hostSelectionRetryMaxAttempts: 3 });
    assert.ok(picked === b || picked === c, `re-pick ${i} went to ${picked?.address}`);
  }
});
