// Outlier detection with a fake clock: each ejection type, enforcement, un-ejection and backoff, max_ejection_percent,
// success rate and failure percentage, and how ejected hosts leave (and in panic rejoin) load balancing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XdsValidationError } from '../../../src/common/errors.js';
import { compileCluster } from '../../../src/proxy/upstream/cluster.js';
import { HostImpl } from '../../../src/proxy/upstream/host.js';
import { OutlierDetector, compileOutlierDetection, outlierResultOf, type OutlierResult } from '../../../src/proxy/upstream/outlier-detector.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type OutlierDetection = envoy.config.cluster.v3.OutlierDetection;
type Cluster = envoy.config.cluster.v3.Cluster;

const u = (value: number): { value: number } => ({ value });
const ms = (n: number): { seconds: number; nanos: number } => ({ seconds: Math.floor(n / 1000), nanos: (n % 1000) * 1e6 });

function detector(od: OutlierDetection, hostCount: number): { d: OutlierDetector; hosts: HostImpl[]; clock: { now: number }; changes: () => number } {
  const problems: string[] = [];
  const config = compileOutlierDetection(od, 'od', problems);
  assert.deepEqual(problems, []);
  const clock = { now: 0 };
  let changes = 0;
  const d = new OutlierDetector(config, { now: () => clock.now, random: () => 0, timers: false, onChange: () => changes++ });
  const hosts = Array.from({ length: hostCount }, (_, i) => new HostImpl(`10.0.0.${i + 1}`, 80));
  d.setHosts(hosts);
  return { d, hosts, clock, changes: () => changes };
}

function put(d: OutlierDetector, host: HostImpl, result: OutlierResult, times = 1): void {
  for (let i = 0; i < times; i++) d.putResult(host, result);
}

const s500 = 500;
const s503 = 503;
const s200 = 200;

test('consecutive_5xx: the 5th 5xx in a row ejects (default 5, enforcing 100); any non-5xx resets the count', () => {
  const { d, hosts, changes } = detector({}, 10);
  const h = hosts[0]!;
  put(d, h, s500, 4);
  put(d, h, s200);
  put(d, h, s500, 4);
  assert.equal(h.healthFlags.failedOutlierCheck, false);
  put(d, h, s500);
  assert.equal(h.healthFlags.failedOutlierCheck, true);
  assert.equal(changes(), 1);
  assert.equal(d.stats.ejections_active, 1);
  assert.equal(d.stats.ejections_detected_consecutive_5xx, 1);
  assert.equal(d.stats.ejections_enforced_consecutive_5xx, 1);
  assert.equal(d.stats.ejections_enforced_total, 1);
  assert.equal(d.stats.ejections_total, 1);
  // Already ejected: further errors detect nothing new.
  put(d, h, s500, 10);
  assert.equal(d.stats.ejections_detected_consecutive_5xx, 1);
});

test('consecutive_gateway_failure: detected but not enforced by default (enforcing 0); enforced at 100; 500 is not a gateway error', () => {
  const a = detector({ consecutive_5xx: u(100) }, 10);
  put(a.d, a.hosts[0]!, s503, 5);
  assert.equal(a.d.stats.ejections_detected_consecutive_gateway_failure, 1);
  assert.equal(a.d.stats.ejections_enforced_consecutive_gateway_failure, 0);
  assert.equal(a.hosts[0]!.healthFlags.failedOutlierCheck, false);

  const b = detector({ consecutive_5xx: u(100), consecutive_gateway_failure: u(3), enforcing_consecutive_gateway_failure: u(100) }, 10);
  const h = b.hosts[0]!;
  put(b.d, h, 502, 2);
  put(b.d, h, s500); // a 5xx that is not a gateway error breaks the gateway run
  put(b.d, h, 504, 2);
  assert.equal(h.healthFlags.failedOutlierCheck, false);
  put(b.d, h, s503);
  assert.equal(h.healthFlags.failedOutlierCheck, true);
  assert.equal(b.d.stats.ejections_enforced_consecutive_gateway_failure, 1);
  assert.equal(b.d.stats.ejections_total, 0, 'ejections_total (deprecated) counts only consecutive_5xx and success_rate');
});

test('without split_external_local_origin_errors, connect failures count as 503 and timeouts as 504 (5xx and gateway)', () => {
  const { d, hosts } = detector({ consecutive_gateway_failure: u(3), enforcing_consecutive_gateway_failure: u(100), max_ejection_percent: u(100) }, 10);
  put(d, hosts[0]!, 'connect_failed', 2);
  put(d, hosts[0]!, 'timeout');
  assert.equal(hosts[0]!.healthFlags.failedOutlierCheck, true);
  assert.equal(d.stats.ejections_enforced_consecutive_gateway_failure, 1);
  // connect_success carries no verdict without the split; four connect failures and a 500 make five 5xx.
  const b = detector({ max_ejection_percent: u(100) }, 10);
  put(b.d, b.hosts[1]!, 'connect_failed', 4);
  put(b.d, b.hosts[1]!, 'connect_success');
  put(b.d, b.hosts[1]!, s500);
  assert.equal(b.d.stats.ejections_enforced_consecutive_5xx, 1);
  assert.equal(b.d.stats.ejections_detected_consecutive_gateway_failure, 0, 'the 500 broke the gateway-error run at 4');
  assert.equal(b.hosts[1]!.healthFlags.failedOutlierCheck, true);
});

test('split_external_local_origin_errors: local-origin failures count apart; responses reset them and 5xx do not count there', () => {
  const { d, hosts } = detector({ split_external_local_origin_errors: true, consecutive_local_origin_failure: u(3) }, 10);
  const [a, b] = [hosts[0]!, hosts[1]!];
  put(d, a, 'connect_failed', 2);
  put(d, a, s500); // a response: the connection worked, the local-origin run restarts
  put(d, a, 'connect_failed', 2);
  assert.equal(a.healthFlags.failedOutlierCheck, false);
  put(d, a, 'timeout');
  assert.equal(a.healthFlags.failedOutlierCheck, true);
  assert.equal(d.stats.ejections_detected_consecutive_local_origin_failure, 1);
  assert.equal(d.stats.ejections_enforced_consecutive_local_origin_failure, 1);
  // Local-origin failures never reach the 5xx counter with the split.
  put(d, b, 'connect_failed', 2);
  put(d, b, 'connect_success');
  put(d, b, 'connect_failed', 2);
  assert.equal(b.healthFlags.failedOutlierCheck, false);
  put(d, b, s500, 5);
  assert.equal(b.healthFlags.failedOutlierCheck, false, 'max_ejection_percent 10 of 10 hosts: the second ejection overflows');
  assert.equal(d.stats.ejections_overflow, 1);
});

test('router failures map onto Envoy results: overflow ignored, local_reset (per-try timeout) a timeout, resets connect failures', () => {
  assert.equal(outlierResultOf('overflow'), undefined);
  assert.equal(outlierResultOf('local_reset'), 'timeout');
  for (const f of ['connect_failure', 'connect_timeout', 'remote_reset', 'protocol_error'] as const) assert.equal(outlierResultOf(f), 'connect_failed');
  assert.deepEqual(outlierResultOf(503), 503);
  assert.equal(outlierResultOf('tcp_connected'), 'connect_success_final');
});

test('the TCP proxy\'s connect success (LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL) resets the failure run, split or not', () => {
  for (const split of [false, true]) {
    const { d, hosts } = detector({ split_external_local_origin_errors: split, consecutive_local_origin_failure: u(3), consecutive_5xx: u(3), max_ejection_percent: u(100) }, 2);
    put(d, hosts[0]!, 'connect_failed', 2);
    put(d, hosts[0]!, 'connect_success_final');
    put(d, hosts[0]!, 'connect_failed', 2);
    assert.equal(hosts[0]!.healthFlags.failedOutlierCheck, false, `split ${split}`);
    put(d, hosts[0]!, 'connect_failed');
    assert.equal(hosts[0]!.healthFlags.failedOutlierCheck, true, `split ${split}`);
  }
});

test('ejection lasts base_ejection_time × times ejected (capped by max_ejection_time); un-ejected on the interval; backoff shrinks while healthy', () => {
  const { d, hosts, clock } = detector({ interval: ms(1000), base_ejection_time: ms(5000), max_ejection_time: ms(12_000), max_ejection_percent: u(100) }, 2);
  const h = hosts[0]!;
  put(d, h, s500, 5);
  assert.equal(d.ejectionDurationMs(h), 5000);
  clock.now = 4999;
  d.runInterval();
  assert.equal(h.healthFlags.failedOutlierCheck, true);
  clock.now = 5000;
  d.runInterval();
  assert.equal(h.healthFlags.failedOutlierCheck, false);
  assert.equal(d.stats.ejections_active, 0);
  // Ejected again right away: twice the base.
  put(d, h, s500, 5);
  assert.equal(d.ejectionDurationMs(h), 10_000);
  clock.now = 15_000;
  d.runInterval();
  assert.equal(h.healthFlags.failedOutlierCheck, false);
  put(d, h, s500, 5);
  assert.equal(d.ejectionDurationMs(h), 12_000, 'capped by max_ejection_time');
  put(d, h, s500, 0);
  clock.now = 27_000;
  d.runInterval();
  assert.equal(h.healthFlags.failedOutlierCheck, false);
  assert.equal(d.ejectionCount(h), 3);
  // Healthy for a few intervals: the multiplier comes down one per interval (3 → 0), so the next ejection is base again.
  for (let i = 1; i <= 4; i++) {
    clock.now = 27_000 + i * 1000;
    d.runInterval();
  }
  put(d, h, s500, 5);
  assert.equal(d.ejectionDurationMs(h), 5000);
});

test('max_ejection_percent: counted over all hosts; at least one ejection only with always_eject_one_host', () => {
  const three = detector({}, 3); // 1 of 3 = 33 % > 10 %
  put(three.d, three.hosts[0]!, s500, 5);
  assert.equal(three.hosts[0]!.healthFlags.failedOutlierCheck, false);
  assert.equal(three.d.stats.ejections_overflow, 1);
  assert.equal(three.d.stats.ejections_detected_consecutive_5xx, 1);

  const always = detector({ always_eject_one_host: { value: true } }, 3);
  put(always.d, always.hosts[0]!, s500, 5);
  put(always.d, always.hosts[1]!, s500, 5);
  assert.equal(always.hosts[0]!.healthFlags.failedOutlierCheck, true);
  assert.equal(always.hosts[1]!.healthFlags.failedOutlierCheck, false);
  assert.equal(always.d.stats.ejections_overflow, 1);

  const half = detector({ max_ejection_percent: u(50) }, 4);
  for (const h of half.hosts) put(half.d, h, s500, 5);
  assert.equal(half.hosts.filter((h) => h.healthFlags.failedOutlierCheck).length, 2);
  assert.equal(half.d.stats.ejections_active, 2);
  assert.equal(half.d.stats.ejections_overflow, 2);
});

test('enforcing percentages are probabilities: 0 detects without ejecting', () => {
  const { d, hosts } = detector({ enforcing_consecutive_5xx: u(0) }, 10);
  put(d, hosts[0]!, s500, 5);
  assert.equal(d.stats.ejections_detected_consecutive_5xx, 1);
  assert.equal(d.stats.ejections_enforced_total, 0);
  assert.equal(hosts[0]!.healthFlags.failedOutlierCheck, false);
});

test('success rate: a host more than stdev_factor deviations below the mean is ejected at the interval; too few hosts or requests: none', () => {
  const od = { interval: ms(1000), max_ejection_percent: u(100), consecutive_5xx: u(1000), success_rate_request_volume: u(10), success_rate_minimum_hosts: u(5) };
  const { d, hosts } = detector(od, 5);
  // Envoy's own example: {50, 100, 100, 100, 100} → mean 90, stdev 20, threshold 90 - 1.9 × 20 = 52.
  for (const [i, h] of hosts.entries()) {
    put(d, h, s200, i === 0 ? 5 : 10);
    put(d, h, s500, i === 0 ? 5 : 0);
  }
  d.runInterval(); // closes the window
  assert.equal(hosts[0]!.healthFlags.failedOutlierCheck, true);
  assert.equal(d.stats.ejections_detected_success_rate, 1);
  assert.equal(d.stats.ejections_enforced_success_rate, 1);
  assert.equal(hosts[1]!.successRate, 100);

  const few = detector(od, 4);
  for (const [i, h] of few.hosts.entries()) put(few.d, h, i === 0 ? s500 : s200, 20);
  few.d.runInterval();
  assert.equal(few.d.stats.ejections_detected_success_rate, 0, 'fewer than success_rate_minimum_hosts');

  const quiet = detector(od, 5);
  for (const [i, h] of quiet.hosts.entries()) put(quiet.d, h, i === 0 ? s500 : s200, 9);
  quiet.d.runInterval();
  assert.equal(quiet.d.stats.ejections_detected_success_rate, 0, 'below success_rate_request_volume');
  assert.equal(quiet.hosts[0]!.successRate, -1);
});

test('failure percentage: hosts failing at least the threshold are ejected when enforcing_failure_percentage is set', () => {
  const od = { max_ejection_percent: u(100), consecutive_5xx: u(1000), enforcing_success_rate: u(0), enforcing_failure_percentage: u(100), failure_percentage_threshold: u(50), failure_percentage_request_volume: u(10), failure_percentage_minimum_hosts: u(3) };
  const { d, hosts } = detector(od, 3);
  put(d, hosts[0]!, s503, 5);
  put(d, hosts[0]!, s200, 5); // 50 % failures: at the threshold
  put(d, hosts[1]!, s503, 4);
  put(d, hosts[1]!, s200, 6); // 40 %
  put(d, hosts[2]!, s200, 10);
  d.runInterval();
  assert.deepEqual(hosts.map((h) => h.healthFlags.failedOutlierCheck), [true, false, false]);
  assert.equal(d.stats.ejections_enforced_failure_percentage, 1);

  const local = detector({ ...od, split_external_local_origin_errors: true, consecutive_local_origin_failure: u(1000), enforcing_failure_percentage_local_origin: u(100) }, 3);
  put(local.d, local.hosts[0]!, 'connect_failed', 10);
  put(local.d, local.hosts[1]!, s200, 10);
  put(local.d, local.hosts[2]!, s200, 10);
  local.d.runInterval();
  assert.equal(local.hosts[0]!.healthFlags.failedOutlierCheck, true);
  assert.equal(local.d.stats.ejections_enforced_local_origin_failure_percentage, 1);
  assert.equal(local.hosts[0]!.localOriginSuccessRate, 0);
});

test('a passing active health check un-ejects (successful_active_health_check_uneject_host), unless turned off; removal forgets the ejection', () => {
  const a = detector({ max_ejection_percent: u(100) }, 2);
  put(a.d, a.hosts[0]!, s500, 5);
  a.d.onActiveHealthCheckSuccess(a.hosts[0]!);
  assert.equal(a.hosts[0]!.healthFlags.failedOutlierCheck, false);
  assert.equal(a.d.stats.ejections_active, 0);

  const b = detector({ max_ejection_percent: u(100), successful_active_health_check_uneject_host: { value: false } }, 2);
  put(b.d, b.hosts[0]!, s500, 5);
  b.d.onActiveHealthCheckSuccess(b.hosts[0]!);
  assert.equal(b.hosts[0]!.healthFlags.failedOutlierCheck, true);
  b.d.setHosts([b.hosts[1]!]);
  assert.equal(b.d.stats.ejections_active, 0);
  assert.equal(b.hosts[0]!.healthFlags.failedOutlierCheck, false);
  // Results for a host no longer in the cluster are dropped.
  put(b.d, b.hosts[0]!, s500, 10);
  assert.equal(b.d.stats.ejections_detected_consecutive_5xx, 1);
});

test('outlier_detection is validated with field paths', () => {
  const problems: string[] = [];
  compileOutlierDetection({ interval: ms(0), base_ejection_time: ms(60_000), max_ejection_time: ms(1000), enforcing_success_rate: u(101), monitors: [{ name: 'ext' }] }, 'Cluster c.outlier_detection', problems);
  assert.deepEqual(problems.sort(), [
    'Cluster c.outlier_detection.enforcing_success_rate: must be at most 100, got 101',
    'Cluster c.outlier_detection.interval: must be greater than 0',
    'Cluster c.outlier_detection.max_ejection_time: cannot be smaller than base_ejection_time (1000 ms < 60000 ms)',
    'Cluster c.outlier_detection.monitors: is not supported (outlier detection extensions are not)',
  ]);
  // Defaults: max_ejection_time is 300 s, or base_ejection_time when that is longer.
  assert.equal(compileOutlierDetection({ base_ejection_time: ms(400_000) }, 'x', []).maxEjectionTimeMs, 400_000);
  assert.equal(compileOutlierDetection({}, 'x', []).maxEjectionTimeMs, 300_000);
});

function staticCluster(extra: Cluster, ports: number[] = [1, 2, 3]): Cluster {
  return {
    name: 'svc',
    type: 'STATIC',
    load_assignment: { cluster_name: 'svc', endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: { socket_address: { address: `10.0.0.${p}`, port_value: 80 } } } })) }] },
    ...extra,
  };
}

test('cluster: the router report ejects a host, every balancer then skips it; panic (< 50 % healthy) uses all hosts; threshold 0 finds none', () => {
  for (const lb_policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as const) {
    const cluster = compileCluster(staticCluster({ lb_policy, outlier_detection: { max_ejection_percent: u(100), consecutive_5xx: u(2) } }));
    try {
      const [a, b] = cluster.hosts;
      cluster.reportResult(a!, 500);
      cluster.reportResult(a!, 'connect_failure');
      assert.equal(a!.healthFlags.failedOutlierCheck, true, lb_policy);
      const seen = new Set<string>();
      for (let i = 0; i < 200; i++) seen.add(cluster.chooseHost({ hashKey: (BigInt(i) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn })!.address);
      assert.deepEqual([...seen].sort(), ['10.0.0.2', '10.0.0.3'], lb_policy);
      assert.equal(cluster.stats.membership_healthy, 2);
      assert.equal(cluster.healthStats()['outlier_detection.ejections_active'], 1);
      // Two of three ejected: 33 % healthy < 50 % → panic: all three hosts again.
      cluster.reportResult(b!, 503);
      cluster.reportResult(b!, 503);
      seen.clear();
      for (let i = 0; i < 300; i++) seen.add(cluster.chooseHost({ hashKey: (BigInt(i) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn })!.address);
      assert.deepEqual([...seen].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3'], `${lb_policy} in panic`);
      assert.equal(cluster.loadBalancer!.isPanic(0), true);
    } finally {
      cluster.destroy();
    }
  }
  const strict = compileCluster(staticCluster({ common_lb_config: { healthy_panic_threshold: { value: 0 } }, outlier_detection: { max_ejection_percent: u(100), consecutive_5xx: u(1) } }, [1]));
  try {
    strict.reportResult(strict.hosts[0]!, 500);
    assert.equal(strict.chooseHost({}), undefined, 'panic disabled: no host (503 UH)');
  } finally {
    strict.destroy();
  }
});

test('cluster: priority 0 ejected → traffic fails over to priority 1 in order; un-ejected → back to priority 0', () => {
  const cluster = compileCluster({
    name: 'svc',
    type: 'STATIC',
    outlier_detection: { max_ejection_percent: u(100), consecutive_5xx: u(1), base_ejection_time: ms(60_000) },
    load_assignment: {
      cluster_name: 'svc',
      endpoints: [0, 1, 2].map((priority) => ({
        priority,
        locality: { zone: `zone-${priority}` },
        lb_endpoints: [1, 2].map((i) => ({ endpoint: { address: { socket_address: { address: `10.${priority}.0.${i}`, port_value: 80 } } } })),
      })),
    },
  });
  try {
    const zones = (n: number): Map<string, number> => {
      const m = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const z = cluster.chooseHost({})!.locality.zone;
        m.set(z, (m.get(z) ?? 0) + 1);
      }
      return m;
    };
    assert.deepEqual([...zones(100).keys()], ['zone-0']);
    // Half of P0 ejected: P0 health 50 × 1.4 = 70 % of traffic stays, 30 % spills to P1 (not P2).
    const p0 = cluster.hosts.filter((h) => h.priority === 0);
    cluster.reportResult(p0[0]!, 500);
    const split = zones(2000);
    assert.equal(split.get('zone-2'), undefined);
    assert.ok(Math.abs(split.get('zone-0')! / 2000 - 0.7) < 0.05, `P0 share ${split.get('zone-0')}`);
    cluster.reportResult(p0[1]!, 500);
    assert.deepEqual([...zones(200).keys()], ['zone-1']);
    for (const h of cluster.hosts.filter((x) => x.priority === 1)) cluster.reportResult(h, 503);
    assert.deepEqual([...zones(200).keys()], ['zone-2']);
    assert.deepEqual(cluster.loadBalancer!.priorityLoad.healthy, [0, 0, 100]);
    // A passing active check (or the interval, after base_ejection_time) brings them back.
    cluster.outlierDetector!.onActiveHealthCheckSuccess(p0[0]!);
    cluster.outlierDetector!.onActiveHealthCheckSuccess(p0[1]!);
    assert.deepEqual([...zones(100).keys()], ['zone-0']);
  } finally {
    cluster.destroy();
  }
});

test('cluster: outlier_detection errors are a NACK with the path', () => {
  assert.throws(
    () => compileCluster(staticCluster({ outlier_detection: { consecutive_5xx: u(3), max_ejection_percent: u(101) } })),
    (err: unknown) => err instanceof XdsValidationError && err.details.includes('Cluster svc.outlier_detection.max_ejection_percent: must be at most 100, got 101'),
  );
});

test('cluster: locality weighting (locality_weighted_lb_config) scales a locality by its healthy share; ejection moves its load', () => {
  const cluster = compileCluster({
    name: 'svc',
    type: 'STATIC',
    common_lb_config: { locality_weighted_lb_config: {} },
    outlier_detection: { max_ejection_percent: u(100), consecutive_5xx: u(1) },
    load_assignment: {
      cluster_name: 'svc',
      endpoints: [
        { locality: { zone: 'a' }, load_balancing_weight: u(1), lb_endpoints: [1, 2].map((i) => ({ endpoint: { address: { socket_address: { address: `10.0.1.${i}`, port_value: 80 } } } })) },
        { locality: { zone: 'b' }, load_balancing_weight: u(1), lb_endpoints: [1, 2].map((i) => ({ endpoint: { address: { socket_address: { address: `10.0.2.${i}`, port_value: 80 } } } })) },
      ],
    },
  });
  try {
    const share = (): number => {
      let a = 0;
      for (let i = 0; i < 1000; i++) if (cluster.chooseHost({})!.locality.zone === 'a') a++;
      return a / 1000;
    };
    assert.equal(share(), 0.5);
    // One of zone a's two hosts ejected: its effective weight is 1 × min(1, 1.4 × 1/2) = 0.7 against zone b's 1.
    cluster.reportResult(cluster.hosts[0]!, 500);
    assert.ok(Math.abs(share() - 0.7 / 1.7) < 0.02, `zone a share ${share()}`);
    cluster.reportResult(cluster.hosts[1]!, 500);
    assert.equal(share(), 0);
  } finally {
    cluster.destroy();
  }
});
