// Load balancers, priorities, panic, localities, avoidHosts, cluster validation, EDS, DNS and ORIGINAL_DST — no traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xxHash64 } from '../../../src/common/xxhash64.js';
import { XdsValidationError } from '../../../src/common/errors.js';
import { compileCluster } from '../../../src/proxy/upstream/cluster.js';
import { ClusterManagerImpl } from '../../../src/proxy/upstream/cluster-manager.js';
import { HostImpl } from '../../../src/proxy/upstream/host.js';
import { loadBalancerPolicy } from '../../../src/proxy/upstream/lb/index.js';
import { PriorityLoadBalancer, computePriorityLoad } from '../../../src/proxy/upstream/lb/priority-load-balancer.js';
import { buildPrioritySet, localityWeightKey } from '../../../src/proxy/upstream/priority-set.js';
import type { HostHealth, HostLocality, UpstreamHost } from '../../../src/proxy/upstream/types.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type Cluster = envoy.config.cluster.v3.Cluster;
type Cla = envoy.config.endpoint.v3.ClusterLoadAssignment;

/** Deterministic PRNG (mulberry32). */
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

function host(ip: string, opts: { weight?: number; priority?: number; health?: HostHealth; locality?: HostLocality } = {}): HostImpl {
  return new HostImpl(ip, 80, opts);
}

function balancer(policyName: string, hosts: HostImpl[], opts: { random?: () => number; panic?: number; localityWeighted?: boolean; localityWeights?: Map<string, number>; config?: Cluster } = {}): PriorityLoadBalancer {
  const policy = loadBalancerPolicy(policyName)!;
  const problems: string[] = [];
  const config = policy.compile(opts.config ?? {}, 'c', problems);
  assert.deepEqual(problems, []);
  const set = buildPrioritySet(hosts, opts.localityWeights ?? new Map());
  return new PriorityLoadBalancer(set, policy, config, { random: opts.random ?? seeded(1) }, { panicThreshold: opts.panic ?? 50, localityWeighted: opts.localityWeighted ?? false });
}

function counts(lb: PriorityLoadBalancer, n: number, context: Parameters<PriorityLoadBalancer['chooseHost']>[0] = {}): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = lb.chooseHost(context);
    const k = h?.address ?? 'none';
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

test('xxHash64 matches the reference vectors (short and long inputs)', () => {
  assert.equal(xxHash64(''), 0xef46db3751d8e999n);
  assert.equal(xxHash64('a'), 0xd24ec4f1a98c6e5bn);
  assert.equal(xxHash64('abc'), 0x44bc2cf5ad770999n);
  assert.equal(xxHash64('Nobody inspects the spammish repetition'), 0xfbcea83c8a378bf1n);
});

test('ROUND_ROBIN: equal weights rotate; unequal weights follow Envoy EDF exactly (3:1 → a a b a)', () => {
  const [a, b, c] = [host('10.0.0.1'), host('10.0.0.2'), host('10.0.0.3')];
  const rr = balancer('ROUND_ROBIN', [a, b, c], { random: () => 0 });
  assert.deepEqual(Array.from({ length: 6 }, () => rr.chooseHost({})?.address), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.3']);
  const wa = host('10.0.1.1', { weight: 3 });
  const wb = host('10.0.1.2', { weight: 1 });
  const wrr = balancer('ROUND_ROBIN', [wa, wb], { random: () => 0 });
  const seq = Array.from({ length: 8 }, () => (wrr.chooseHost({}) === wa ? 'a' : 'b')).join('');
  // Deadlines a: 1/3, 2/3, 1, 4/3, 5/3, 2-ε (float sums, as in Envoy's EdfScheduler); b: 1, 2. Ties go to the earlier entry.
  assert.equal(seq, 'aabaaaab');
  const long = Array.from({ length: 400 }, () => wrr.chooseHost({}));
  assert.equal(long.filter((h) => h === wa).length, 300);
});

test('LEAST_REQUEST: power of two choices prefers the host with fewer active requests; weighted variant divides by active+1', () => {
  const a = host('10.0.0.1');
  const b = host('10.0.0.2');
  a.stats.rqActive = 5;
  const lr = balancer('LEAST_REQUEST', [a, b], { random: seeded(7) });
  const m = counts(lr, 1000);
  // b loses only when both samples are a: 1/4 of the time.
  assert.ok((m.get('10.0.0.2') ?? 0) > 680, `b picked ${m.get('10.0.0.2')}`);
  assert.ok((m.get('10.0.0.1') ?? 0) < 320);
  const wa = host('10.0.1.1', { weight: 2 });
  const wb = host('10.0.1.2', { weight: 1 });
  wa.stats.rqActive = 3; // effective 2/4 = 0.5 < 1/1
  const wlr = balancer('LEAST_REQUEST', [wa, wb], { random: () => 0 });
  const picks = counts(wlr, 300);
  assert.ok((picks.get('10.0.1.2') ?? 0) > (picks.get('10.0.1.1') ?? 0));
  assert.throws(() => compileCluster({ name: 'c', lb_policy: 'LEAST_REQUEST', least_request_lb_config: { choice_count: { value: 1 } } }), /choice_count: must be at least 2/);
});

test('RANDOM spreads uniformly', () => {
  const hosts = [host('10.0.0.1'), host('10.0.0.2'), host('10.0.0.3'), host('10.0.0.4')];
  const m = counts(balancer('RANDOM', hosts), 4000);
  for (const h of hosts) assert.ok((m.get(h.address) ?? 0) > 850 && (m.get(h.address) ?? 0) < 1150);
});

function keys(n: number): bigint[] {
  return Array.from({ length: n }, (_, i) => xxHash64(`key-${i}`));
}

for (const policy of ['RING_HASH', 'MAGLEV']) {
  test(`${policy}: stable mapping independent of host order, even spread, weights honoured, minimal disruption on removal`, () => {
    const hosts = [host('10.0.0.1'), host('10.0.0.2'), host('10.0.0.3'), host('10.0.0.4')];
    const ks = keys(4000);
    const lb1 = balancer(policy, hosts);
    const lb2 = balancer(policy, [...hosts].reverse().map((h) => host(h.address)));
    const map1 = ks.map((k) => lb1.chooseHost({ hashKey: k })!.address);
    const map2 = ks.map((k) => lb2.chooseHost({ hashKey: k })!.address);
    assert.deepEqual(map1, map2);
    for (const h of hosts) {
      const share = map1.filter((a) => a === h.address).length / ks.length;
      assert.ok(share > 0.15 && share < 0.35, `${h.address} got ${share}`);
    }
    const lb3 = balancer(policy, hosts.filter((h) => h.address !== '10.0.0.4').map((h) => host(h.address)));
    const map3 = ks.map((k) => lb3.chooseHost({ hashKey: k })!.address);
    let stayed = 0;
    let others = 0;
    ks.forEach((_k, i) => {
      assert.notEqual(map3[i], '10.0.0.4');
      if (map1[i] !== '10.0.0.4') {
        others++;
        if (map3[i] === map1[i]) stayed++;
      }
    });
    assert.ok(stayed / others > 0.8, `only ${stayed}/${others} keys kept their host`);
    const heavy = balancer(policy, [host('10.0.0.1', { weight: 3 }), host('10.0.0.2', { weight: 1 })]);
    const heavyShare = ks.filter((k) => heavy.chooseHost({ hashKey: k })!.address === '10.0.0.1').length / ks.length;
    assert.ok(heavyShare > 0.65 && heavyShare < 0.85, `weight 3 host got ${heavyShare}`);
  });
}

test('RING_HASH and MAGLEV options are validated', () => {
  assert.throws(() => compileCluster({ name: 'c', lb_policy: 'MAGLEV', maglev_lb_config: { table_size: { value: 65536 } } }), /table_size: must be a prime/);
  assert.throws(() => compileCluster({ name: 'c', lb_policy: 'RING_HASH', ring_hash_lb_config: { maximum_ring_size: { value: 9_000_000 } } }), /maximum_ring_size: must be at most 8388608/);
  assert.throws(() => compileCluster({ name: 'c', lb_policy: 'RING_HASH', ring_hash_lb_config: { hash_function: 'MURMUR_HASH_2' } }), /hash_function: only XX_HASH/);
  assert.throws(() => compileCluster({ name: 'c', lb_policy: 'ROUND_ROBIN', ring_hash_lb_config: {} as never, maglev_lb_config: { table_size: { value: 7 } } }), /maglev_lb_config: only applies to lb_policy MAGLEV/);
});

test('priorities: overprovisioning 1.4 spills load to P1 only when P0 is below 100/1.4 healthy', () => {
  const p0 = [host('10.0.0.1'), host('10.0.0.2', { health: 'UNHEALTHY' })];
  const p1 = [host('10.0.1.1', { priority: 1 }), host('10.0.1.2', { priority: 1 })];
  const load = computePriorityLoad(buildPrioritySet([...p0, ...p1], new Map()), 50);
  assert.deepEqual(load.healthyLoad, [70, 30]);
  const m = counts(balancer('ROUND_ROBIN', [...p0, ...p1]), 2000);
  assert.equal(m.get('10.0.0.2'), undefined, 'unhealthy host excluded');
  const p0share = (m.get('10.0.0.1') ?? 0) / 2000;
  assert.ok(p0share > 0.65 && p0share < 0.75, `P0 got ${p0share}`);
  // All healthy: everything stays in P0.
  const all = counts(balancer('ROUND_ROBIN', [host('10.0.0.1'), host('10.0.0.2'), ...p1]), 500);
  assert.equal((all.get('10.0.0.1') ?? 0) + (all.get('10.0.0.2') ?? 0), 500);
  // Degraded hosts take what healthy ones cannot.
  const dl = computePriorityLoad(buildPrioritySet([host('10.0.0.1'), host('10.0.0.2', { health: 'DEGRADED' })], new Map()), 50);
  assert.deepEqual([dl.healthyLoad, dl.degradedLoad], [[70], [30]]);
});

test('unhealthy, draining and timed-out hosts are excluded; below the 50% panic threshold every host is used', () => {
  const hosts = [host('10.0.0.1'), host('10.0.0.2'), host('10.0.0.3', { health: 'UNHEALTHY' }), host('10.0.0.4', { health: 'DRAINING' })];
  const m = counts(balancer('ROUND_ROBIN', hosts), 400);
  assert.deepEqual([...m.keys()].sort(), ['10.0.0.1', '10.0.0.2']);
  const panicHosts = [host('10.0.0.1'), host('10.0.0.2', { health: 'UNHEALTHY' }), host('10.0.0.3', { health: 'TIMEOUT' }), host('10.0.0.4', { health: 'DRAINING' })];
  const lb = balancer('ROUND_ROBIN', panicHosts);
  assert.equal(lb.isPanic(0), true);
  assert.equal(counts(lb, 400).size, 4, 'panic routes to all hosts');
  const noPanic = balancer('ROUND_ROBIN', panicHosts, { panic: 0 });
  assert.deepEqual([...counts(noPanic, 100).keys()], ['10.0.0.1']);
  const none = balancer('ROUND_ROBIN', [host('10.0.0.1', { health: 'UNHEALTHY' })], { panic: 0 });
  assert.equal(none.chooseHost({}), undefined);
});

test('locality weights (locality_weighted_lb_config) split traffic by weight × availability', () => {
  const z1: HostLocality = { region: 'r', zone: 'z1', subZone: '' };
  const z2: HostLocality = { region: 'r', zone: 'z2', subZone: '' };
  const hosts = [host('10.0.0.1', { locality: z1 }), host('10.0.1.1', { locality: z2 }), host('10.0.1.2', { locality: z2 })];
  const weights = new Map([
    [localityWeightKey(0, z1), 1],
    [localityWeightKey(0, z2), 3],
  ]);
  const m = counts(balancer('ROUND_ROBIN', hosts, { localityWeighted: true, localityWeights: weights }), 1000);
  assert.equal(m.get('10.0.0.1'), 250);
  assert.equal((m.get('10.0.1.1') ?? 0) + (m.get('10.0.1.2') ?? 0), 750);
});

test('avoidHosts re-picks up to hostSelectionRetryMaxAttempts, then keeps the last pick', () => {
  const hosts = [host('10.0.0.1'), host('10.0.0.2'), host('10.0.0.3')];
  const ring = balancer('RING_HASH', hosts);
  const key = xxHash64('user-42');
  const first = ring.chooseHost({ hashKey: key })!;
  const avoid = new Set<UpstreamHost>([first]);
  const second = ring.chooseHost({ hashKey: key, avoidHosts: avoid });
  assert.notEqual(second, first);
  assert.equal(ring.chooseHost({ hashKey: key, avoidHosts: avoid, hostSelectionRetryMaxAttempts: 0 }), first);
  const mag = balancer('MAGLEV', hosts);
  const m1 = mag.chooseHost({ hashKey: key })!;
  assert.notEqual(mag.chooseHost({ hashKey: key, avoidHosts: new Set([m1]), hostSelectionRetryMaxAttempts: 5 }), m1);
  const rr = balancer('ROUND_ROBIN', hosts, { random: () => 0 });
  assert.equal(rr.chooseHost({ avoidHosts: new Set([hosts[0]!]) }), hosts[1]);
});

function staticCluster(extra: Partial<Cluster> = {}): Cluster {
  return {
    name: 'svc',
    type: 'STATIC',
    connect_timeout: { seconds: 1 },
    load_assignment: { cluster_name: 'svc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 8080 } } } }] }] },
    ...extra,
  };
}

test('compileCluster refuses every unsupported field with its path, all at once', () => {
  try {
    compileCluster(
      staticCluster({
        health_checks: [{}],
        outlier_detection: { consecutive_5xx: { value: 3 }, max_ejection_percent: { value: 150 }, monitors: [{ name: 'x' }] },
        lb_subset_config: { fallback_policy: 'ANY_ENDPOINT' },
        common_lb_config: { zone_aware_lb_config: { min_cluster_size: { value: 3 } } },
        circuit_breakers: { thresholds: [{ max_connections: { value: 1 }, retry_budget: {} as never }] },
        load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'example.com', port_value: 0 } } } }] }] },
      }),
    );
    assert.fail('expected a validation error');
  } catch (err) {
    assert.ok(err instanceof XdsValidationError);
    const text = err.details.join('\n');
    for (const expected of [
      'Cluster svc.health_checks[0].timeout: required',
      'Cluster svc.health_checks[0].unhealthy_threshold: required',
      'Cluster svc.health_checks[0]: exactly one of http_health_check, tcp_health_check, grpc_health_check is required',
      'Cluster svc.outlier_detection.max_ejection_percent: must be at most 100, got 150',
      'Cluster svc.outlier_detection.monitors: is not supported',
      'Cluster svc.lb_subset_config: is not supported',
      'Cluster svc.common_lb_config.zone_aware_lb_config: is not supported',
      'Cluster svc.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "example.com" is not an IP address',
      'Cluster svc.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: must be 1-65535',
    ]) {
      assert.ok(text.includes(expected), `missing: ${expected}\n${text}`);
    }
  }
  assert.throws(() => compileCluster({ name: 'o', type: 'ORIGINAL_DST', lb_policy: 'ROUND_ROBIN' }), /ORIGINAL_DST clusters require CLUSTER_PROVIDED/);
  assert.throws(() => compileCluster({ name: 'x', lb_policy: 'CLUSTER_PROVIDED' }), /lb_policy: expected one of/);
  assert.throws(() => compileCluster(staticCluster({ http2_protocol_options: { allow_connect: true } })), /http2_protocol_options.allow_connect: is not supported/);
});

test('cluster manager: EDS cluster warms until its assignment, applies updates, NACKs bad ones keeping the old hosts', async () => {
  const cm = new ClusterManagerImpl({ random: seeded(3) });
  cm.addOrUpdate([{ name: 'reviews', type: 'EDS', eds_cluster_config: { service_name: 'outbound|9080||reviews' }, lb_policy: 'ROUND_ROBIN' }]);
  assert.equal(cm.get('reviews'), undefined, 'warming clusters are not routable');
  const cla: Cla = {
    cluster_name: 'outbound|9080||reviews',
    endpoints: [
      { locality: { zone: 'a' }, lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '10.1.0.1', port_value: 9080 } } }, load_balancing_weight: { value: 2 } },
        { endpoint: { address: { socket_address: { address: '10.1.0.2', port_value: 9080 } } }, health_status: 'UNHEALTHY' },
      ] },
      { priority: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.1.1.1', port_value: 9080 } } } }] },
    ],
    policy: { overprovisioning_factor: { value: 140 } },
  };
  cm.applyLoadAssignment('outbound|9080||reviews', cla);
  await new Promise((r) => setImmediate(r));
  const c = cm.get('reviews')!;
  assert.ok(c);
  assert.deepEqual(c.hosts.map((h) => [h.addressText, h.weight, h.priority, h.health, h.locality.zone]), [
    ['10.1.0.1:9080', 2, 0, 'UNKNOWN', 'a'],
    ['10.1.0.2:9080', 1, 0, 'UNHEALTHY', 'a'],
    ['10.1.1.1:9080', 1, 1, 'UNKNOWN', ''],
  ]);
  assert.equal(c.stats.membership_total, 3);
  assert.equal(c.stats.membership_healthy, 2);
  const kept = c.hosts[0]!;
  assert.throws(
    () => cm.applyLoadAssignment('outbound|9080||reviews', { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.1.0.9', port_value: 70000 } } } }] }] }),
    /port_value: must be 1-65535/,
  );
  assert.equal(c.hosts.length, 3, 'a NACKed assignment leaves the previous hosts');
  cm.applyLoadAssignment('outbound|9080||reviews', { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.1.0.1', port_value: 9080 } } } }] }] });
  assert.equal(c.hosts.length, 1);
  assert.equal(c.hosts[0], kept, 'a host keeps its identity (pool, counters) across updates');
  assert.equal(c.chooseHost({}), kept);
  // A CDS update of the cluster replays the known assignment, so it is warm at once.
  cm.addOrUpdate([{ name: 'reviews', type: 'EDS', eds_cluster_config: { service_name: 'outbound|9080||reviews' }, lb_policy: 'LEAST_REQUEST' }]);
  assert.notEqual(cm.get('reviews'), c);
  assert.equal(cm.get('reviews')!.hosts.length, 1);
  // An invalid cluster in a batch changes nothing.
  assert.throws(() => cm.applyClusters([{ name: 'ok', type: 'STATIC' }, { name: 'bad', type: 'STATIC', lb_policy: 'BOGUS' as never }]), XdsValidationError);
  assert.ok(cm.get('reviews'));
  cm.applyClusters([]);
  assert.equal(cm.get('reviews'), undefined);
  await cm.close();
});

test('STRICT_DNS resolves localhost (V4_ONLY) into hosts; LOGICAL_DNS keeps one host', async () => {
  const strict = compileCluster({
    name: 'dns',
    type: 'STRICT_DNS',
    dns_lookup_family: 'V4_ONLY',
    dns_refresh_rate: { seconds: 60 },
    load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'localhost', port_value: 8080 } } } }] }] },
  });
  await strict.ready;
  assert.ok(strict.hosts.length >= 1);
  for (const h of strict.hosts) assert.match(h.address, /^127\./);
  assert.equal(strict.hosts[0]!.hostname, 'localhost');
  const logical = compileCluster({
    name: 'ldns',
    type: 'LOGICAL_DNS',
    dns_lookup_family: 'V4_ONLY',
    load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'localhost', port_value: 8080 } } } }] }] },
  });
  await logical.ready;
  assert.equal(logical.hosts.length, 1);
  assert.equal(logical.chooseHost({})?.port, 8080);
  // A fake resolver: a failed refresh keeps the last answer.
  let answer: { address: string; family: number }[] | Error = [{ address: '127.0.0.2', family: 4 }];
  const fake = compileCluster(
    { name: 'fake', type: 'STRICT_DNS', dns_refresh_rate: { nanos: 20_000_000 }, load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'svc.test', port_value: 80 } } } }] }] } },
    { dnsLookup: async () => { if (answer instanceof Error) throw answer; return answer; } },
  );
  await fake.ready;
  assert.deepEqual(fake.hosts.map((h) => h.address), ['127.0.0.2']);
  answer = new Error('SERVFAIL');
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(fake.hosts.map((h) => h.address), ['127.0.0.2']);
  answer = [{ address: '127.0.0.3', family: 4 }, { address: '127.0.0.4', family: 4 }];
  for (let i = 0; i < 50 && fake.hosts.length !== 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(fake.hosts.map((h) => h.address), ['127.0.0.3', '127.0.0.4']);
  await Promise.all([strict.drain(), logical.drain(), fake.drain()]);
});

test('ORIGINAL_DST takes the host from the original destination or x-envoy-original-dst-host', async () => {
  const c = compileCluster({ name: 'passthrough', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', original_dst_lb_config: { use_http_header: true } });
  assert.equal(c.chooseHost({}), undefined);
  const h = c.chooseHost({ originalDestination: '127.0.0.1:9999' })!;
  assert.equal(h.addressText, '127.0.0.1:9999');
  assert.equal(c.chooseHost({ originalDestination: '127.0.0.1:9999' }), h, 'hosts are reused');
  assert.equal(c.chooseHost({ originalDestination: '127.0.0.1:9999', requestHeaders: { 'x-envoy-original-dst-host': '127.0.0.5:81' } })?.addressText, '127.0.0.5:81');
  assert.equal(c.chooseHost({ requestHeaders: { 'x-envoy-original-dst-host': 'not-an-ip:81' } }), undefined);
  const override = compileCluster({ name: 'o2', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', original_dst_lb_config: { upstream_port_override: { value: 15006 } } });
  assert.equal(override.chooseHost({ originalDestination: '[::1]:80' })?.addressText, '[::1]:15006');
  await Promise.all([c.drain(), override.drain()]);
});
