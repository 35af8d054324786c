// Envoy's active health checker: one session per host running its probe on the configured intervals, moving the host
// between healthy and FAILED_ACTIVE_HC by the thresholds, with Envoy's first-check, edge, unhealthy and no-traffic intervals.
import type { HostImpl } from '../host.js';
import type { HealthCheckConfig } from './health-check-config.js';
import { GrpcProbe } from './grpc-probe.js';
import { HttpProbe } from './http-probe.js';
import type { HealthProbe, ProbeConnect, ProbeOutcome } from './health-probe.js';
import { TcpProbe } from './tcp-probe.js';

export interface HealthCheckerOptions {
  /** Opens a check connection to a host (the cluster's transport socket, alt_port applied). */
  readonly connect: (host: HostImpl) => ProbeConnect;
  /** True once the cluster has carried traffic (upstream_cx_total > 0): until then checks run every no_traffic_interval. */
  readonly hasTraffic: () => boolean;
  /** A host's health flags changed: the cluster rebuilds its load balancer. */
  readonly onChange: () => void;
  /** Every completed check (the outlier detector un-ejects hosts that pass one). */
  readonly onCheckComplete?: (host: HostImpl, healthy: boolean) => void;
  /** Failure logging (first failure of a host, every one with always_log_health_check_failures). */
  readonly log?: (message: string) => void;
  readonly random?: () => number;
}

type Transition = 'unchanged' | 'changed' | 'pending';

class Session {
  private numHealthy = 0;
  private numUnhealthy = 0;
  private firstCheck = true;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private stopped = false;
  readonly probe: HealthProbe;
  /** Resolves after this host's first check (pass or fail): cluster warming waits for it. */
  readonly checked: Promise<void>;
  private markChecked!: () => void;

  constructor(
    private readonly checker: HealthChecker,
    readonly host: HostImpl,
    probe: HealthProbe,
  ) {
    this.probe = probe;
    this.checked = new Promise((resolve) => (this.markChecked = resolve));
  }

  /** The first check runs on a timer (after initial_jitter, else at once): a cluster only compiled to validate it and destroyed in the same tick never connects. */
  start(): void {
    const jitter = this.checker.config.initialJitterMs;
    this.schedule(jitter > 0 ? Math.floor(this.checker.random() * jitter) : 0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.run(), ms);
    this.timer.unref();
  }

  private run(): void {
    if (this.stopped) return;
    const seq = ++this.seq;
    this.checker.stats.attempt++;
    const timeout = setTimeout(() => {
      if (seq !== this.seq || this.stopped) return;
      this.seq++;
      this.probe.reset();
      this.onOutcome({ healthy: false, type: 'NETWORK', retriable: true, detail: `timeout after ${this.checker.config.timeoutMs} ms` }, true);
    }, this.checker.config.timeoutMs);
    timeout.unref();
    void this.probe.check().then((outcome) => {
      if (seq !== this.seq || this.stopped) return;
      clearTimeout(timeout);
      this.onOutcome(outcome, false);
    });
  }

  private onOutcome(outcome: ProbeOutcome, timedOut: boolean): void {
    const transition = outcome.healthy ? this.handleSuccess(outcome.degraded) : this.handleFailure(outcome, timedOut);
    this.markChecked();
    this.checker.onChecked(this.host, outcome.healthy);
    // Like Envoy, the interval follows this check's result (not the host's state) and whether it changed the host.
    this.schedule(this.checker.nextInterval(outcome.healthy, transition));
  }

  /** Envoy's handleSuccess: the first check passes a host at once, later ones after healthy_threshold in a row. */
  private handleSuccess(degraded: boolean): Transition {
    const flags = this.host.healthFlags;
    const stats = this.checker.stats;
    this.numUnhealthy = 0;
    let transition: Transition = 'unchanged';
    let changed = false;
    if (flags.failedActiveHc) {
      if (this.firstCheck || ++this.numHealthy >= this.checker.config.healthyThreshold) {
        flags.failedActiveHc = false;
        flags.activeHcTimeout = false;
        stats.healthy++;
        transition = 'changed';
        changed = true;
      } else {
        transition = 'pending';
      }
    }
    if (flags.pendingActiveHc) {
      flags.pendingActiveHc = false;
      changed = true;
    }
    if (degraded !== flags.degradedActiveHc) {
      flags.degradedActiveHc = degraded;
      stats.degraded += degraded ? 1 : -1;
      changed = true;
    }
    stats.success++;
    this.firstCheck = false;
    if (changed) this.checker.changed();
    return transition;
  }

  /** Envoy's setUnhealthy: a non-retriable answer fails the host at once, anything else after unhealthy_threshold in a row. */
  private handleFailure(outcome: Extract<ProbeOutcome, { healthy: false }>, timedOut: boolean): Transition {
    const flags = this.host.healthFlags;
    const stats = this.checker.stats;
    this.numHealthy = 0;
    let transition: Transition = 'unchanged';
    let changed = false;
    if (!flags.failedActiveHc) {
      if ((outcome.type === 'ACTIVE' && !outcome.retriable) || ++this.numUnhealthy >= this.checker.config.unhealthyThreshold) {
        flags.failedActiveHc = true;
        stats.healthy--;
        transition = 'changed';
        changed = true;
      } else {
        transition = 'pending';
      }
    }
    if (flags.activeHcTimeout !== timedOut) {
      flags.activeHcTimeout = timedOut;
      changed = true;
    }
    if (flags.pendingActiveHc) {
      flags.pendingActiveHc = false;
      changed = true;
    }
    if (this.firstCheck || this.checker.config.alwaysLogFailures) this.checker.log(`health check of ${this.host.addressText} failed: ${outcome.detail}`);
    stats.failure++;
    if (outcome.type === 'NETWORK') stats.network_failure++;
    this.firstCheck = false;
    if (changed) this.checker.changed();
    return transition;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.probe.reset();
    this.markChecked();
  }
}

/** Counters and gauges under cluster.<name>.health_check.*, with Envoy's names. */
export interface HealthCheckStats {
  attempt: number;
  success: number;
  failure: number;
  passive_failure: number;
  network_failure: number;
  verify_cluster: number;
  healthy: number;
  degraded: number;
}

export class HealthChecker {
  private readonly sessions = new Map<HostImpl, Session>();
  readonly stats: HealthCheckStats = { attempt: 0, success: 0, failure: 0, passive_failure: 0, network_failure: 0, verify_cluster: 0, healthy: 0, degraded: 0 };
  readonly random: () => number;

  constructor(
    readonly config: HealthCheckConfig,
    private readonly options: HealthCheckerOptions,
  ) {
    this.random = options.random ?? Math.random;
  }

  private probeFor(host: HostImpl): HealthProbe {
    const connect = this.options.connect(host);
    const p = this.config.probe;
    switch (p.kind) {
      case 'http':
        return new HttpProbe(p, connect, this.config.reuseConnection);
      case 'grpc':
        return new GrpcProbe(p, connect, this.config.reuseConnection);
      case 'tcp':
        return new TcpProbe(p, connect);
    }
  }

  /**
   * The cluster's hosts after an update. New hosts start FAILED_ACTIVE_HC and PENDING_ACTIVE_HC (Envoy: a host is not
   * sent traffic before its first check passes) and are checked at once; removed hosts stop being checked.
   */
  setHosts(hosts: readonly HostImpl[]): void {
    const keep = new Set(hosts);
    for (const [host, session] of this.sessions) {
      if (keep.has(host)) continue;
      session.stop();
      this.sessions.delete(host);
      if (!host.healthFlags.failedActiveHc) this.stats.healthy--;
      if (host.healthFlags.degradedActiveHc) this.stats.degraded--;
    }
    for (const host of hosts) {
      if (this.sessions.has(host)) continue;
      host.healthFlags.failedActiveHc = true;
      host.healthFlags.pendingActiveHc = true;
      const session = new Session(this, host, this.probeFor(host));
      this.sessions.set(host, session);
      session.start();
    }
  }

  /** Resolves once every current host has had its first check (Envoy's cluster initialisation waits for this). */
  firstRound(): Promise<void> {
    return Promise.all([...this.sessions.values()].map((s) => s.checked)).then(() => undefined);
  }

  /** Envoy's HealthCheckerImplBase::interval: no-traffic, edge or steady interval by check result, plus the configured jitter. */
  nextInterval(healthy: boolean, transition: Transition): number {
    const c = this.config;
    let base: number;
    if (!this.options.hasTraffic()) base = healthy ? c.noTrafficHealthyIntervalMs : c.noTrafficIntervalMs;
    else if (!healthy) base = transition === 'pending' ? c.unhealthyEdgeIntervalMs : c.unhealthyIntervalMs;
    else base = transition === 'pending' ? c.healthyEdgeIntervalMs : c.intervalMs;
    const percentJitter = Math.floor((c.intervalJitterPercent * base) / 100);
    if (percentJitter > 0) base += Math.floor(this.random() * percentJitter);
    if (c.intervalJitterMs > 0) base += Math.floor(this.random() * c.intervalJitterMs);
    return base;
  }

  onChecked(host: HostImpl, healthy: boolean): void {
    this.options.onCheckComplete?.(host, healthy);
  }

  changed(): void {
    this.options.onChange();
  }

  log(message: string): void {
    this.options.log?.(message);
  }

  stop(): void {
    for (const s of this.sessions.values()) s.stop();
    this.sessions.clear();
  }
}
