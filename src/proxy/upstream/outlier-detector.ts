// Envoy's outlier detection (Cluster.outlier_detection): passive health from real requests — consecutive 5xx, gateway
// and local-origin failures ejected inline, success rate and failure percentage ejected at each interval, ejection time
// growing with the ejection count and un-ejection on the interval timer.
import type { envoy } from '../../xds/generated/types.js';
import { durationMs } from '../../common/duration.js';
import { rejectUnsupported, wrapped } from './config-values.js';
import type { HostImpl } from './host.js';
import type { UpstreamFailure } from './types.js';

type OutlierDetectionProto = envoy.config.cluster.v3.OutlierDetection;

export interface OutlierDetectionConfig {
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionTimeJitterMs: number;
  readonly maxEjectionPercent: number;
  readonly alwaysEjectOneHost: boolean;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly consecutiveLocalOriginFailure: number;
  readonly enforcingConsecutive5xx: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly enforcingSuccessRate: number;
  readonly enforcingLocalOriginSuccessRate: number;
  readonly enforcingFailurePercentage: number;
  readonly enforcingFailurePercentageLocalOrigin: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  /** success_rate_stdev_factor / 1000 (Envoy's default 1900 → 1.9). */
  readonly successRateStdevFactor: number;
  readonly failurePercentageThreshold: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
  readonly successfulActiveHealthCheckUnejectHost: boolean;
}

const SUPPORTED = [
  'consecutive_5xx', 'interval', 'base_ejection_time', 'max_ejection_percent', 'enforcing_consecutive_5xx', 'enforcing_success_rate',
  'success_rate_minimum_hosts', 'success_rate_request_volume', 'success_rate_stdev_factor', 'consecutive_gateway_failure',
  'enforcing_consecutive_gateway_failure', 'split_external_local_origin_errors', 'consecutive_local_origin_failure',
  'enforcing_consecutive_local_origin_failure', 'enforcing_local_origin_success_rate', 'failure_percentage_threshold',
  'enforcing_failure_percentage', 'enforcing_failure_percentage_local_origin', 'failure_percentage_minimum_hosts',
  'failure_percentage_request_volume', 'max_ejection_time', 'max_ejection_time_jitter', 'successful_active_health_check_uneject_host',
  'always_eject_one_host',
];

/** Validates Cluster.outlier_detection with Envoy's defaults; problems are pushed with their field paths. */
export function compileOutlierDetection(od: OutlierDetectionProto, path: string, problems: string[]): OutlierDetectionConfig {
  rejectUnsupported(od, SUPPORTED, path, problems, 'is not supported (outlier detection extensions are not)');
  const percent = (field: keyof OutlierDetectionProto, fallback: number): number => {
    const v = wrapped(od[field] as { value?: number } | undefined, fallback);
    if (v > 100) problems.push(`${path}.${field}: must be at most 100, got ${v}`);
    return v;
  };
  const positiveMs = (field: 'interval' | 'base_ejection_time', fallback: number): number => {
    const v = durationMs(od[field], fallback);
    if (v <= 0) problems.push(`${path}.${field}: must be greater than 0`);
    return v;
  };
  const intervalMs = positiveMs('interval', 10_000);
  const baseEjectionTimeMs = positiveMs('base_ejection_time', 30_000);
  // Unset, it is 300 s or base_ejection_time when that is longer; set, it may not be shorter than base_ejection_time.
  const maxEjectionTimeMs = durationMs(od.max_ejection_time, Math.max(300_000, baseEjectionTimeMs));
  if (maxEjectionTimeMs < baseEjectionTimeMs) problems.push(`${path}.max_ejection_time: cannot be smaller than base_ejection_time (${maxEjectionTimeMs} ms < ${baseEjectionTimeMs} ms)`);
  return {
    intervalMs,
    baseEjectionTimeMs,
    maxEjectionTimeMs,
    maxEjectionTimeJitterMs: durationMs(od.max_ejection_time_jitter, 0),
    maxEjectionPercent: percent('max_ejection_percent', 10),
    alwaysEjectOneHost: wrapped(od.always_eject_one_host, false),
    splitExternalLocalOriginErrors: od.split_external_local_origin_errors === true,
    consecutive5xx: wrapped(od.consecutive_5xx, 5),
    consecutiveGatewayFailure: wrapped(od.consecutive_gateway_failure, 5),
    consecutiveLocalOriginFailure: wrapped(od.consecutive_local_origin_failure, 5),
    enforcingConsecutive5xx: percent('enforcing_consecutive_5xx', 100),
    enforcingConsecutiveGatewayFailure: percent('enforcing_consecutive_gateway_failure', 0),
    enforcingConsecutiveLocalOriginFailure: percent('enforcing_consecutive_local_origin_failure', 100),
    enforcingSuccessRate: percent('enforcing_success_rate', 100),
    enforcingLocalOriginSuccessRate: percent('enforcing_local_origin_success_rate', 100),
    enforcingFailurePercentage: percent('enforcing_failure_percentage', 0),
    enforcingFailurePercentageLocalOrigin: percent('enforcing_failure_percentage_local_origin', 0),
    successRateMinimumHosts: wrapped(od.success_rate_minimum_hosts, 5),
    successRateRequestVolume: wrapped(od.success_rate_request_volume, 100),
    successRateStdevFactor: wrapped(od.success_rate_stdev_factor, 1900) / 1000,
    failurePercentageThreshold: percent('failure_percentage_threshold', 85),
    failurePercentageMinimumHosts: wrapped(od.failure_percentage_minimum_hosts, 5),
    failurePercentageRequestVolume: wrapped(od.failure_percentage_request_volume, 50),
    successfulActiveHealthCheckUnejectHost: wrapped(od.successful_active_health_check_uneject_host, true),
  };
}

export type EjectionType =
  | 'consecutive_5xx'
  | 'consecutive_gateway_failure'
  | 'consecutive_local_origin_failure'
  | 'success_rate'
  | 'local_origin_success_rate'
  | 'failure_percentage'
  | 'local_origin_failure_percentage';

const EJECTION_TYPES: readonly EjectionType[] = [
  'consecutive_5xx', 'consecutive_gateway_failure', 'consecutive_local_origin_failure', 'success_rate', 'local_origin_success_rate',
  'failure_percentage', 'local_origin_failure_percentage',
];

/**
 * Envoy's Outlier::Result: what a filter saw of one attempt, before it is mapped onto counters. `connect_success` is
 * LOCAL_ORIGIN_CONNECT_SUCCESS (a protocol still runs on top: no verdict without the split), `connect_success_final`
 * LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL (the TCP proxy: connecting was the whole job, a success either way). A number is
 * an HTTP status (kept a bare number: this runs for every attempt).
 */
export type OutlierResult = 'connect_failed' | 'timeout' | 'connect_success' | 'connect_success_final' | number;

/** A filter's report (a status, an UpstreamFailure, a TCP connect) as Envoy's result; undefined for what outlier detection ignores. */
export function outlierResultOf(result: number | UpstreamFailure | 'tcp_connected'): OutlierResult | undefined {
  if (typeof result === 'number') return result;
  switch (result) {
    case 'tcp_connected':
      return 'connect_success_final';
    case 'overflow':
      return undefined; // a circuit-breaker overflow says nothing about the host (Envoy ignores Overflow resets)
    case 'local_reset':
      return 'timeout'; // the router reports local_reset for its per-try timeout
    default:
      return 'connect_failed'; // every other reset, like Envoy's router (LOCAL_ORIGIN_CONNECT_FAILED)
  }
}

/** A success-rate window: Envoy swaps two buckets each interval and judges the one that just closed. */
class SuccessRateBuckets {
  private total = 0;
  private success = 0;
  closedTotal = 0;
  closedSuccess = 0;
  add(success: boolean): void {
    this.total++;
    if (success) this.success++;
  }
  rotate(): void {
    this.closedTotal = this.total;
    this.closedSuccess = this.success;
    this.total = 0;
    this.success = 0;
  }
  /** [success rate in percent, volume] of the closed interval, undefined when it had no requests. */
  closed(): [number, number] | undefined {
    return this.closedTotal === 0 ? undefined : [(this.closedSuccess * 100) / this.closedTotal, this.closedTotal];
  }
}

class HostMonitor {
  consecutive5xx = 0;
  consecutiveGatewayFailure = 0;
  consecutiveLocalOriginFailure = 0;
  numEjections = 0;
  /** Envoy's eject_time_backoff: grows with each ejection, shrinks by one per interval spent healthy. */
  ejectTimeBackoff = 0;
  lastEjectionTime = 0;
  lastUnejectionTime: number | undefined;
  jitterMs = 0;
  readonly external = new SuccessRateBuckets();
  readonly localOrigin = new SuccessRateBuckets();
}

export interface OutlierDetectorOptions {
  /** Monotonic milliseconds (tests pass a fake clock). */
  readonly now?: () => number;
  readonly random?: () => number;
  /** Arms the interval timer (default true); tests drive runInterval() themselves. */
  readonly timers?: boolean;
  /** Called after a host was ejected or returned, so the cluster can rebuild its load balancer. */
  readonly onChange: () => void;
}

export class OutlierDetector {
  private readonly monitors = new Map<HostImpl, HostMonitor>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;
  private readonly random: () => number;
  /** Counters under cluster.<name>.outlier_detection.*, with Envoy's names. */
  readonly stats: Record<string, number> = { ejections_active: 0, ejections_overflow: 0, ejections_enforced_total: 0, ejections_total: 0, ejections_consecutive_5xx: 0, ejections_success_rate: 0 };

  constructor(
    readonly config: OutlierDetectionConfig,
    private readonly options: OutlierDetectorOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    for (const t of EJECTION_TYPES) {
      this.stats[`ejections_detected_${t}`] = 0;
      this.stats[`ejections_enforced_${t}`] = 0;
    }
    if (options.timers !== false) this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.runInterval();
      this.arm();
    }, this.config.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The cluster's hosts after an update: new ones get a monitor, removed ones lose theirs (and their ejection). */
  setHosts(hosts: readonly HostImpl[]): void {
    const keep = new Set(hosts);
    for (const host of this.monitors.keys()) {
      if (keep.has(host)) continue;
      if (host.healthFlags.failedOutlierCheck) {
        this.stats.ejections_active!--;
        host.healthFlags.failedOutlierCheck = false;
      }
      this.monitors.delete(host);
    }
    for (const host of hosts) if (!this.monitors.has(host)) this.monitors.set(host, new HostMonitor());
  }

  /** One attempt's outcome on `host` (Envoy's putResult / putHttpResponseCode). */
  putResult(host: HostImpl, result: OutlierResult): void {
    const m = this.monitors.get(host);
    if (!m) return; // a host removed while its request was in flight
    if (this.config.splitExternalLocalOriginErrors) {
      if (result === 'connect_success' || result === 'connect_success_final') return this.localOriginSuccess(m);
      if (result === 'connect_failed' || result === 'timeout') return this.localOriginFailure(host, m);
      // A response means the connection worked: local origin is fine, the status is the upstream's own verdict.
      this.localOriginSuccess(m);
      return this.httpStatus(host, m, result);
    }
    // Without the split, local-origin events count as the codes Envoy's router would have answered with.
    if (result === 'connect_success') return;
    const status = result === 'connect_failed' ? 503 : result === 'timeout' ? 504 : result === 'connect_success_final' ? 200 : result;
    this.httpStatus(host, m, status);
  }

  private httpStatus(host: HostImpl, m: HostMonitor, status: number): void {
    m.external.add(status < 500);
    if (status >= 500 && status < 600) {
      if (status === 502 || status === 503 || status === 504) {
        if (++m.consecutiveGatewayFailure === this.config.consecutiveGatewayFailure) this.consecutiveError(host, m, 'consecutive_gateway_failure');
      } else {
        m.consecutiveGatewayFailure = 0;
      }
      if (++m.consecutive5xx === this.config.consecutive5xx) this.consecutiveError(host, m, 'consecutive_5xx');
    } else {
      m.consecutive5xx = 0;
      m.consecutiveGatewayFailure = 0;
    }
  }

  private localOriginSuccess(m: HostMonitor): void {
    m.localOrigin.add(true);
    m.consecutiveLocalOriginFailure = 0;
  }

  private localOriginFailure(host: HostImpl, m: HostMonitor): void {
    m.localOrigin.add(false);
    if (++m.consecutiveLocalOriginFailure === this.config.consecutiveLocalOriginFailure) this.consecutiveError(host, m, 'consecutive_local_origin_failure');
  }

  private consecutiveError(host: HostImpl, m: HostMonitor, type: EjectionType): void {
    if (host.healthFlags.failedOutlierCheck) return;
    this.stats[`ejections_detected_${type}`]!++;
    this.eject(host, m, type);
    // Reset so a new bout of errors is detected even without a success in between.
    if (type === 'consecutive_5xx') {
      this.stats.ejections_consecutive_5xx!++; // deprecated, kept like Envoy
      m.consecutive5xx = 0;
    } else if (type === 'consecutive_gateway_failure') m.consecutiveGatewayFailure = 0;
    else m.consecutiveLocalOriginFailure = 0;
  }

  private enforcing(type: EjectionType): number {
    const c = this.config;
    switch (type) {
      case 'consecutive_5xx':
        return c.enforcingConsecutive5xx;
      case 'consecutive_gateway_failure':
        return c.enforcingConsecutiveGatewayFailure;
      case 'consecutive_local_origin_failure':
        return c.enforcingConsecutiveLocalOriginFailure;
      case 'success_rate':
        return c.enforcingSuccessRate;
      case 'local_origin_success_rate':
        return c.enforcingLocalOriginSuccessRate;
      case 'failure_percentage':
        return c.enforcingFailurePercentage;
      case 'local_origin_failure_percentage':
        return c.enforcingFailurePercentageLocalOrigin;
    }
  }

  /**
   * Envoy's ejectHost: refused (ejections_overflow) when it would take the ejected share of all hosts above
   * max_ejection_percent — unless always_eject_one_host and nothing is ejected yet; then enforced with probability
   * enforcing_<type> percent.
   */
  private eject(host: HostImpl, m: HostMonitor, type: EjectionType): void {
    const active = this.stats.ejections_active!;
    const ejectedPercent = (100 * (active + 1)) / this.monitors.size;
    const allowed = ejectedPercent <= this.config.maxEjectionPercent || (this.config.alwaysEjectOneHost && active === 0);
    if (!allowed) {
      this.stats.ejections_overflow!++;
      return;
    }
    if (type === 'consecutive_5xx' || type === 'success_rate') this.stats.ejections_total!++; // deprecated, kept like Envoy
    if (!(Math.floor(this.random() * 100) < this.enforcing(type))) return;
    this.stats.ejections_active!++;
    this.stats.ejections_enforced_total!++;
    this.stats[`ejections_enforced_${type}`]!++;
    host.healthFlags.failedOutlierCheck = true;
    m.numEjections++;
    m.lastEjectionTime = this.now();
    m.jitterMs = Math.floor(this.random() * (this.config.maxEjectionTimeJitterMs + 1));
    if (m.ejectTimeBackoff * this.config.baseEjectionTimeMs < this.config.maxEjectionTimeMs + this.config.baseEjectionTimeMs) m.ejectTimeBackoff++;
    this.options.onChange();
  }

  private uneject(host: HostImpl, m: HostMonitor): void {
    this.stats.ejections_active!--;
    host.healthFlags.failedOutlierCheck = false;
    m.consecutive5xx = 0;
    m.consecutiveGatewayFailure = 0;
    m.consecutiveLocalOriginFailure = 0;
    m.lastUnejectionTime = this.now();
    this.options.onChange();
  }

  /** successful_active_health_check_uneject_host: a passing active check returns an ejected host at once. */
  onActiveHealthCheckSuccess(host: HostImpl): void {
    const m = this.monitors.get(host);
    if (!m || !this.config.successfulActiveHealthCheckUnejectHost) return;
    if (host.healthFlags.failedOutlierCheck && !host.healthFlags.failedActiveHc) this.uneject(host, m);
  }

  /** How long `host` stays ejected this time: base × backoff (capped at max_ejection_time) plus its jitter. */
  ejectionDurationMs(host: HostImpl): number | undefined {
    const m = this.monitors.get(host);
    if (!m || !host.healthFlags.failedOutlierCheck) return undefined;
    return Math.min(this.config.baseEjectionTimeMs * m.ejectTimeBackoff, this.config.maxEjectionTimeMs) + m.jitterMs;
  }

  /** Times `host` was ejected (Envoy's num_ejections). */
  ejectionCount(host: HostImpl): number {
    return this.monitors.get(host)?.numEjections ?? 0;
  }

  /** Envoy's onIntervalTimer: un-eject hosts whose time is up, judge success rate and failure percentage, shrink backoffs. */
  runInterval(): void {
    const now = this.now();
    for (const [host, m] of this.monitors) {
      if (host.healthFlags.failedOutlierCheck && this.ejectionDurationMs(host)! <= now - m.lastEjectionTime) this.uneject(host, m);
      m.external.rotate();
      m.localOrigin.rotate();
      host.successRate = -1;
      host.localOriginSuccessRate = -1;
    }
    this.successRateEjections('external');
    // Local-origin statistics only exist when the errors are split; without the split nothing is recorded there.
    if (this.config.splitExternalLocalOriginErrors) this.successRateEjections('local');
    for (const [host, m] of this.monitors) {
      if (host.healthFlags.failedOutlierCheck || m.lastUnejectionTime === undefined) continue;
      if (now - m.lastUnejectionTime >= this.config.intervalMs && m.ejectTimeBackoff > 0) m.ejectTimeBackoff--;
    }
  }

  private successRateEjections(origin: 'external' | 'local'): void {
    const c = this.config;
    if (this.monitors.size < c.successRateMinimumHosts && this.monitors.size < c.failurePercentageMinimumHosts) return;
    const forSr: [HostImpl, HostMonitor, number][] = [];
    const forFp: [HostImpl, HostMonitor, number][] = [];
    let sum = 0;
    for (const [host, m] of this.monitors) {
      if (host.healthFlags.failedOutlierCheck) continue;
      const closed = (origin === 'external' ? m.external : m.localOrigin).closed();
      if (!closed) continue;
      const [rate, volume] = closed;
      if (volume >= Math.min(c.successRateRequestVolume, c.failurePercentageRequestVolume)) {
        if (origin === 'external') host.successRate = rate;
        else host.localOriginSuccessRate = rate;
      }
      if (volume >= c.successRateRequestVolume) {
        forSr.push([host, m, rate]);
        sum += rate;
      }
      if (volume >= c.failurePercentageRequestVolume) forFp.push([host, m, rate]);
    }
    if (forSr.length > 0 && forSr.length >= c.successRateMinimumHosts) {
      // Hosts more than stdev_factor standard deviations below the mean success rate are outliers.
      const mean = sum / forSr.length;
      let variance = 0;
      for (const [, , rate] of forSr) variance += (rate - mean) ** 2;
      const threshold = mean - c.successRateStdevFactor * Math.sqrt(variance / forSr.length);
      const type: EjectionType = origin === 'external' ? 'success_rate' : 'local_origin_success_rate';
      for (const [host, m, rate] of forSr) {
        if (rate >= threshold || host.healthFlags.failedOutlierCheck) continue;
        this.stats.ejections_success_rate!++; // deprecated, kept like Envoy
        this.stats[`ejections_detected_${type}`]!++;
        this.eject(host, m, type);
      }
    }
    if (forFp.length > 0 && forFp.length >= c.failurePercentageMinimumHosts) {
      const type: EjectionType = origin === 'external' ? 'failure_percentage' : 'local_origin_failure_percentage';
      for (const [host, m, rate] of forFp) {
        if (100 - rate < c.failurePercentageThreshold || host.healthFlags.failedOutlierCheck) continue;
        this.stats[`ejections_detected_${type}`]!++;
        this.eject(host, m, type);
      }
    }
  }
}
