// envoy.filters.http.router: routes, picks cluster and host, streams the request upstream with timeouts, retries
// (back-off, jitter, previous-hosts avoidance), mirrors and header mutations, and maps failures to Envoy's replies and flags.
import { connect as netConnect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import type { HttpFilter, HttpFilterContext, HttpFilterFactory, HttpTerminalStream } from '../http/filter.js';
import { headerValue, type HttpHeaders } from '../http/headers.js';
import type { ResponseFlag } from '../http/response-flags.js';
import type {
  ClusterRouteAction,
  ClusterTarget,
  CompiledRetryPolicy,
  HeaderFormatterContext,
  RouteEntry,
} from '../router/route-table.js';
import { generateHashCookie } from '../router/hash-policy.js';
import { NO_HEADER_MUTATION } from '../router/header-mutation.js';
import type {
  ClusterManager,
  LoadBalancerContext,
  UpstreamCluster,
  UpstreamFailure,
  UpstreamHost,
  UpstreamRequest,
  UpstreamResponseHandler,
} from '../upstream/types.js';
import type { UpstreamTlsIdentity } from '../upstream/pool/connect.js';
import { scheduleDeadline, type Deadline } from '../../common/deadline-list.js';

type RouterConfig = envoy.extensions.filters.http.router.v3.Router;

export const ROUTER_FILTER_NAME = 'envoy.filters.http.router';
export const ROUTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

const HOSTNAME = hostname();
const RETRY_DEFAULTS = { numRetries: 1, backOffBaseMs: 25, backOffMaxMs: 250 };

/** Envoy's reset reasons, as they appear in local reply bodies and response code details. */
const RESET_REASON: Record<UpstreamFailure, string> = {
  overflow: 'overflow',
  connect_failure: 'connection failure',
  connect_timeout: 'connection timeout',
  remote_reset: 'connection termination',
  refused_stream: 'remote refused stream reset',
  protocol_error: 'protocol error',
  local_reset: 'local reset',
};
const FAILURE_FLAG: Record<UpstreamFailure, ResponseFlag> = {
  overflow: 'UO',
  connect_failure: 'UF',
  connect_timeout: 'UF',
  remote_reset: 'UC',
  refused_stream: 'UR',
  protocol_error: 'UPE',
  local_reset: 'LR',
};
/** Router-control request headers consumed by the router and never forwarded. */
const CONSUMED_HEADERS = [
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-retriable-status-codes',
  'x-envoy-hedge-on-per-try-timeout',
];
const GRPC_RETRY_STATUS: Record<string, number> = {
  cancelled: 1,
  'deadline-exceeded': 4,
  internal: 13,
  'resource-exhausted': 8,
  unavailable: 14,
};


/** grpc-timeout (`<digits><unit>`, units H M S m u n) in milliseconds. */
function parseGrpcTimeout(value: string | undefined): number | undefined {
  const m = value ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
  return Math.ceil(n * unit[m[2]!]!);
}

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

interface EffectiveRetry {
  readonly retryOn: ReadonlySet<string>;
  readonly grpcRetryOn: ReadonlySet<number>;
  readonly numRetries: number;
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly backOffBaseMs: number;
  readonly backOffMaxMs: number;
  readonly avoidPreviousHosts: boolean;
  readonly hostSelectionRetryMaxAttempts: number;
  readonly previousPrioritiesUpdateFrequency: number | undefined;
}

/** The retry policy for one request: route (or virtual host) policy merged with the x-envoy-retry-* headers. */
function effectiveRetry(policy: CompiledRetryPolicy | undefined, headers: HttpHeaders): EffectiveRetry | undefined {
  const hdrOn = headerValue(headers, 'x-envoy-retry-on');
  const hdrGrpcOn = headerValue(headers, 'x-envoy-retry-grpc-on');
  const hdrMax = positiveInt(headerValue(headers, 'x-envoy-max-retries'));
  const hdrPerTry = positiveInt(headerValue(headers, 'x-envoy-upstream-rq-per-try-timeout-ms'));
  const hdrCodes = headerValue(headers, 'x-envoy-retriable-status-codes');
  if (!policy && !hdrOn && !hdrGrpcOn) return undefined;
  const retryOn = new Set<string>(policy?.retryOn ?? []);
  const grpcRetryOn = new Set<number>();
  for (const c of retryOn) if (GRPC_RETRY_STATUS[c] !== undefined) grpcRetryOn.add(GRPC_RETRY_STATUS[c]!);
  for (const list of [hdrOn, hdrGrpcOn]) {
    if (!list) continue;
    for (const raw of list.split(',')) {
      const c = raw.trim();
      if (!c) continue;
      retryOn.add(c);
      if (GRPC_RETRY_STATUS[c] !== undefined) grpcRetryOn.add(GRPC_RETRY_STATUS[c]!);
    }
  }
  const codes = new Set<number>(policy?.retriableStatusCodes ?? []);
  if (hdrCodes) for (const c of hdrCodes.split(',')) if (/^\d+$/.test(c.trim())) codes.add(Number(c.trim()));
  return {
    retryOn,
    grpcRetryOn,
    numRetries: hdrMax ?? policy?.numRetries ?? RETRY_DEFAULTS.numRetries,
    perTryTimeoutMs: hdrPerTry ?? policy?.perTryTimeoutMs ?? 0,
    retriableStatusCodes: codes,
    backOffBaseMs: policy?.backOffBaseMs ?? RETRY_DEFAULTS.backOffBaseMs,
    backOffMaxMs: policy?.backOffMaxMs ?? RETRY_DEFAULTS.backOffMaxMs,
    avoidPreviousHosts: policy?.avoidPreviousHosts ?? false,
    hostSelectionRetryMaxAttempts: policy?.hostSelectionRetryMaxAttempts ?? 1,
    previousPrioritiesUpdateFrequency: policy?.previousPrioritiesUpdateFrequency,
  };
}

function retriableStatus(retry: EffectiveRetry, status: number, headers: HttpHeaders): boolean {
  const on = retry.retryOn;
  if (status >= 500 && on.has('5xx')) return true;
  if ((status === 502 || status === 503 || status === 504) && on.has('gateway-error')) return true;
  if (status === 409 && on.has('retriable-4xx')) return true;
  // envoy-ratelimited: the upstream (another Envoy's rate limit filter) says so in x-envoy-ratelimited, whatever the status.
  if (on.has('envoy-ratelimited') && headers['x-envoy-ratelimited'] !== undefined) return true;
  if (on.has('retriable-status-codes') && retry.retriableStatusCodes.has(status)) return true;
  if (retry.grpcRetryOn.size > 0) {
    const grpc = headerValue(headers, 'grpc-status');
    if (grpc !== undefined && retry.grpcRetryOn.has(Number(grpc))) return true;
  }
  return false;
}

/**
 * Envoy's wouldRetryFromReset: `reset`, `5xx` and `gateway-error` retry every reset but an overflow; `refused-stream`
 * an HTTP/2 REFUSED_STREAM; `connect-failure` a failed connection; `reset-before-request` a reset before the request
 * reached the upstream (here: the connection never came up).
 */
function retriableFailure(retry: EffectiveRetry, failure: UpstreamFailure | 'per_try_timeout'): boolean {
  const on = retry.retryOn;
  switch (failure) {
    case 'connect_failure':
    case 'connect_timeout':
      return on.has('connect-failure') || on.has('reset-before-request') || on.has('5xx') || on.has('gateway-error') || on.has('reset');
    case 'refused_stream':
      return on.has('refused-stream') || on.has('reset') || on.has('5xx') || on.has('gateway-error');
    case 'remote_reset':
      return on.has('reset') || on.has('5xx') || on.has('gateway-error');
    case 'protocol_error':
      return on.has('5xx') || on.has('reset');
    case 'per_try_timeout':
      return on.has('5xx') || on.has('gateway-error') || on.has('reset');
    default:
      return false;
  }
}

/** `foo:8080` → `foo-shadow:8080` (Envoy's mirror host suffix). */
export function shadowAuthority(authority: string): string {
  const m = /^(\[[^\]]+\]|[^:]+)(:\d+)?$/.exec(authority);
  if (!m) return `${authority}-shadow`;
  return `${m[1]}-shadow${m[2] ?? ''}`;
}

const IGNORE_MIRROR_RESPONSE = {
  onHeaders: () => {},
  onData: () => {},
  onEnd: () => {},
  onFailure: () => {},
};

/** The shared empty list for a request without mirrors or retry buffer (never pushed to: replaced on first use). */
const NONE: never[] = [];

/**
 * The response handler of one attempt: one object per attempt whose methods pass the attempt's sequence number and
 * host back to its routing (five closures per attempt before; allocation per request is what young-generation GC
 * scales with). Callbacks of an attempt that a retry, timeout or reset superseded are ignored by the routing.
 */
class AttemptHandler implements UpstreamResponseHandler {
  constructor(
    private readonly routing: UpstreamRouting,
    private readonly seq: number,
    private readonly host: UpstreamHost,
  ) {}
  onHeaders(status: number, headers: HttpHeaders, endStream?: boolean): void {
    this.routing.onUpstreamHeaders(this.seq, this.host, status, headers, endStream === true);
  }
  onUpstreamTls(identity: UpstreamTlsIdentity): void {
    this.routing.onUpstreamTls(this.seq, identity);
  }
  onData(chunk: Buffer): void {
    this.routing.onUpstreamData(this.seq, chunk);
  }
  onTrailers(trailers: HttpHeaders): void {
    this.routing.onUpstreamTrailers(this.seq, trailers);
  }
  onEnd(): void {
    this.routing.onUpstreamEnd(this.seq, this.host);
  }
  onFailure(failure: UpstreamFailure, detail: string): void {
    this.routing.onUpstreamFailure(this.seq, this.host, failure, detail);
  }
}

/** One routed request: attempts, timers, the retry buffer and mirrors. */
class UpstreamRouting {
  private attempt: UpstreamRequest | undefined;
  private attemptSeq = 0;
  private retriesUsed = 0;
  private bodyEnded = false;
  private requestTrailers: HttpHeaders | undefined;
  private buffer: Buffer[] = NONE;
  private bufferedBytes = 0;
  private canRetryBody = true;
  /** The route timeout: one list per duration shared by all requests (src/common/deadline-list.ts), not a Node timer each. */
  private globalTimer: Deadline | undefined;
  private perTryTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private responseStarted = false;
  private done = false;
  /** Hosts already tried, kept only for retries (retry_host_predicate previous_hosts); `lastHost` for the rest. */
  private previousHosts: Set<UpstreamHost> | undefined;
  private lastHost: UpstreamHost | undefined;
  /** The priority of each attempt's host, in order, kept only for retry_priority previous_priorities. */
  private attemptedPriorities: number[] | undefined;
  private mirrors: UpstreamRequest[] = NONE;
  private attemptStart = 0;
  private setCookie: string | undefined;
  private readonly lbContextBase: LoadBalancerContext;
  /** Whether the route or its weighted cluster mutates response headers (decided at config apply: NO_HEADER_MUTATION). */
  private readonly mutatesResponse: boolean;
  private retryBudgetHeld = false;
  private responsePaused = false;
  /** Request bytes a retry may replay: the route's (or virtual host's) per_request_buffer_limit_bytes, else the listener's. */
  private readonly bufferLimit: number;

  constructor(
    private readonly ctx: HttpFilterContext,
    private readonly stream: HttpTerminalStream,
    private readonly route: RouteEntry,
    private readonly action: ClusterRouteAction,
    private readonly target: ClusterTarget,
    private readonly cluster: UpstreamCluster,
    private readonly clusters: ClusterManager,
    private readonly upstreamHeaders: HttpHeaders,
    private readonly timeoutMs: number,
    private readonly retry: EffectiveRetry | undefined,
    private readonly config: { suppressEnvoyHeaders: boolean },
  ) {
    const info = ctx.info;
    this.mutatesResponse = route.responseHeaders !== NO_HEADER_MUTATION || (target.responseHeaders !== undefined && target.responseHeaders !== NO_HEADER_MUTATION);
    // ORIGINAL_DST clusters pick the connection's (restored) local address, or with use_http_header a request header.
    const local = info.downstreamLocalAddress.includes(':') ? `[${info.downstreamLocalAddress}]` : info.downstreamLocalAddress;
    const originalDestination = `${local}:${info.downstreamLocalPort}`;
    // Without hash policies (most routes) no hash object to spread.
    this.lbContextBase = action.hashPolicies.length === 0
      ? { originalDestination, requestHeaders: ctx.requestHeaders }
      : { ...this.computeHash(), originalDestination, requestHeaders: ctx.requestHeaders };
    this.bufferLimit = route.perRequestBufferLimitBytes ?? route.virtualHost.perRequestBufferLimitBytes ?? stream.bufferLimitBytes;
  }

  private computeHash(): { hashKey?: bigint } {
    let key: bigint | undefined;
    const headers = this.ctx.requestHeaders;
    for (const policy of this.action.hashPolicies) {
      let h = policy.hash(headers, this.ctx.info.downstreamRemoteAddress);
      if (h === undefined && policy.cookie && policy.cookie.ttlSeconds > 0) {
        // Envoy generates the cookie when it is absent and a TTL is set, and hashes the generated value.
        const info = this.ctx.info;
        const generated = generateHashCookie(policy.cookie, `${info.downstreamRemoteAddress}:${info.downstreamRemotePort}`, `${info.downstreamLocalAddress}:${info.downstreamLocalPort}`);
        h = generated.hash;
        this.setCookie = generated.setCookie;
      }
      if (h === undefined) continue;
      key = key === undefined ? h : (((key << 1n) | (key >> 63n)) & 0xffffffffffffffffn) ^ h;
      if (policy.terminal) break;
    }
    return key === undefined ? {} : { hashKey: key };
  }

  start(): void {
    this.stream.onDownstreamReset(() => this.onDownstreamReset());
    this.startMirrors();
    // The attempt first: a codec may hand over body bytes it already holds from inside setBodySink.
    this.startAttempt();
    if (this.done) return;
    // This routing is the request body's sink (onData/onEnd): no wrapper object and closures per request.
    this.stream.setBodySink(this);
  }

  /** RequestBodySink: a request body chunk from the downstream. */
  onData(chunk: Buffer): void {
    this.onRequestData(chunk);
  }

  /** RequestBodySink: the request ended (with its trailers, if any). */
  onEnd(trailers?: HttpHeaders): void {
    this.onRequestEnd(trailers);
  }

  private startMirrors(): void {
    for (const policy of this.action.mirrorPolicies) {
      if (policy.fraction < 1 && Math.random() >= policy.fraction) continue;
      const cluster = this.clusters.get(policy.cluster);
      if (!cluster) continue;
      const host = cluster.chooseHost(this.lbContextBase);
      if (!host) continue;
      const headers: HttpHeaders = Object.assign({}, this.upstreamHeaders);
      if (!policy.disableShadowHostSuffixAppend) headers[':authority'] = shadowAuthority(headerValue(headers, ':authority') ?? '');
      try {
        const mirror = cluster.request(host, headers, IGNORE_MIRROR_RESPONSE);
        if (this.mirrors === NONE) this.mirrors = [];
        this.mirrors.push(mirror);
      } catch {
        // a mirror never affects the main request
      }
    }
  }

  private onRequestData(chunk: Buffer): void {
    for (const m of this.mirrors) m.write(chunk);
    if (this.canRetryBody && this.retry) {
      if (this.buffer === NONE) this.buffer = [];
      this.buffer.push(chunk);
      this.bufferedBytes += chunk.length;
      if (this.bufferedBytes > this.bufferLimit) {
        // Past the buffer limit the request can no longer be replayed: no retries from here on (Envoy's
        // retry_or_shadow_abandoned).
        this.canRetryBody = false;
        this.buffer = NONE;
        this.cluster.stats.retry_or_shadow_abandoned++;
        if (!this.attempt) {
          // Between attempts (back-off): the bytes before this chunk are gone with the buffer, so no attempt can carry
          // the whole body. Envoy answers 507 here.
          this.finishWithLocalReply(507, 'exceeded request buffer limit while retrying upstream', undefined, 'request_payload_exceeded_retry_buffer_limit');
          return;
        }
      }
    }
    const attempt = this.attempt;
    if (attempt && !attempt.write(chunk)) {
      this.stream.pauseBody();
      attempt.onDrain(() => this.stream.resumeBody());
    }
  }

  private onRequestEnd(trailers?: HttpHeaders): void {
    this.bodyEnded = true;
    this.requestTrailers = trailers;
    for (const m of this.mirrors) m.end(trailers);
    if (this.timeoutMs > 0 && !this.done) this.globalTimer = scheduleDeadline(this.timeoutMs, () => this.onGlobalTimeout());
    if (this.attempt) {
      this.attempt.end(trailers);
      this.armPerTry();
    }
  }

  private armPerTry(): void {
    const perTry = this.retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0 && !this.perTryTimer && !this.done) {
      const seq = this.attemptSeq;
      this.perTryTimer = setTimeout(() => this.onPerTryTimeout(seq), perTry);
    }
  }

  private startAttempt(): void {
    let lb: LoadBalancerContext = this.retry?.avoidPreviousHosts && this.previousHosts && this.previousHosts.size > 0
      ? { ...this.lbContextBase, avoidHosts: this.previousHosts, hostSelectionRetryMaxAttempts: this.retry.hostSelectionRetryMaxAttempts }
      : this.lbContextBase;
    const excluded = this.excludedPriorities();
    if (excluded) lb = { ...lb, excludedPriorities: excluded };
    const host = this.cluster.chooseHost(lb);
    if (!host) {
      this.finishWithLocalReply(503, 'no healthy upstream', 'UH', 'no_healthy_upstream');
      return;
    }
    this.lastHost = host;
    if (this.retry) (this.previousHosts ??= new Set()).add(host);
    if (this.retry?.previousPrioritiesUpdateFrequency !== undefined) (this.attemptedPriorities ??= []).push(host.priority);
    const info = this.ctx.info;
    info.upstreamHost = host.addressText;
    info.attemptCount++;
    // Pools do not modify the headers they are given, and an attempt is over (aborted or answered) before the next one
    // starts: the attempt count goes into the request's own headers, as Envoy sets it on the finalized header map.
    const headers = this.upstreamHeaders;
    if (this.route.virtualHost.includeRequestAttemptCount) headers['x-envoy-attempt-count'] = String(info.attemptCount);
    const seq = ++this.attemptSeq;
    // The first attempt starts with the stream (the router's own few µs are below the header's ms resolution).
    this.attemptStart = info.attemptCount === 1 ? info.startTime : performance.now();
    let request: UpstreamRequest;
    try {
      request = this.cluster.request(host, headers, new AttemptHandler(this, seq, host));
    } catch (err) {
      this.onUpstreamFailure(seq, host, 'connect_failure', (err as Error).message);
      return;
    }
    if (seq !== this.attemptSeq || this.done) return; // failed synchronously
    this.attempt = request;
    for (const chunk of this.buffer) request.write(chunk);
    if (this.bodyEnded) {
      request.end(this.requestTrailers);
      this.armPerTry();
    } else {
      this.stream.resumeBody();
    }
  }

  private pendingTrailers: HttpHeaders | undefined;

  /**
   * Envoy's previous_priorities: once `update_frequency` attempts are made (and again at each multiple), the priorities
   * of the hosts tried up to then are left out of the priority load; in between, the last exclusion stands.
   */
  private excludedPriorities(): ReadonlySet<number> | undefined {
    const every = this.retry?.previousPrioritiesUpdateFrequency;
    const tried = this.attemptedPriorities;
    if (every === undefined || !tried || tried.length < every) return undefined;
    return new Set(tried.slice(0, tried.length - (tried.length % every)));
  }

  onUpstreamData(seq: number, chunk: Buffer): void {
    if (seq !== this.attemptSeq || this.done) return;
    if (!this.stream.encodeData(chunk) && !this.responsePaused) {
      // The downstream is full: stop reading the upstream until it drains (one drain wait at a time).
      const r = this.attempt;
      if (r) {
        this.responsePaused = true;
        r.pauseResponse();
        this.stream.onEncoderDrain(() => {
          this.responsePaused = false;
          if (!this.done) r.resumeResponse();
        });
      }
    }
  }

  onUpstreamTls(seq: number, identity: UpstreamTlsIdentity): void {
    if (seq === this.attemptSeq) this.ctx.info.upstreamTls = identity;
  }

  onUpstreamTrailers(seq: number, trailers: HttpHeaders): void {
    if (seq === this.attemptSeq) this.pendingTrailers = trailers;
  }

  private clearAttemptTimers(): void {
    if (this.perTryTimer) clearTimeout(this.perTryTimer);
    this.perTryTimer = undefined;
  }

  onUpstreamHeaders(seq: number, host: UpstreamHost, status: number, headers: HttpHeaders, endStream: boolean): void {
    if (seq !== this.attemptSeq || this.done) return;
    if (status < 200 && status !== 101) return; // 1xx informational: Envoy swallows 100-continue
    // Outlier detection hears the final status only (Envoy reports no 1xx).
    this.cluster.reportResult?.(host, status);
    if (this.retry && retriableStatus(this.retry, status, headers)) {
      if (this.scheduleRetry()) return;
    }
    this.releaseRetry();
    this.clearAttemptTimers();
    if (this.retriesUsed > 0 && status < 500) this.cluster.stats.upstream_rq_retry_success++;
    this.responseStarted = true;
    const now = performance.now();
    this.ctx.info.upstreamResponseStart = now;
    // The pool's header object is this response's own: passed on as is. `:status` and hop-by-hop names stay in it
    // and are dropped by the downstream codec as it serialises (it skips them for every response anyway).
    const out = headers;
    if (!this.config.suppressEnvoyHeaders) {
      out['x-envoy-upstream-service-time'] = String(Math.round(now - this.attemptStart));
      if (this.route.virtualHost.includeAttemptCountInResponse) out['x-envoy-attempt-count'] = String(this.ctx.info.attemptCount);
    }
    if (this.setCookie) {
      const prev = out['set-cookie'];
      out['set-cookie'] = prev === undefined ? this.setCookie : [...(Array.isArray(prev) ? prev : [prev]), this.setCookie];
    }
    if (this.mutatesResponse) {
      const info = this.ctx.info;
      const fmt: HeaderFormatterContext = {
        downstreamRemoteAddress: info.downstreamRemoteAddress,
        downstreamLocalAddress: info.downstreamLocalAddress,
        protocol: info.protocol,
        requestId: info.requestId,
        hostname: HOSTNAME,
        // Epoch ms of the request's start (%START_TIME%), derived here rather than read per request.
        startTimeMs: Date.now() - (performance.now() - info.startTime),
        upstreamHost: host.addressText,
        requestHeaders: this.ctx.requestHeaders,
      };
      this.target.responseHeaders?.apply(out, fmt);
      this.route.responseHeaders.apply(out, fmt);
    }
    this.ctx.info.responseCodeDetails = 'via_upstream';
    if (endStream) {
      // Headers-only (gRPC trailers-only: grpc-status in the headers) must stay headers-only downstream.
      this.finish();
      this.stream.encodeHeaders(status, out, true);
      return;
    }
    this.stream.encodeHeaders(status, out, false);
  }

  onUpstreamEnd(seq: number, _host: UpstreamHost): void {
    if (seq !== this.attemptSeq || this.done) return;
    if (!this.responseStarted) {
      // A response with no headers cannot happen through the handler contract; treat as a reset.
      this.onUpstreamFailure(seq, _host, 'protocol_error', 'ended before headers');
      return;
    }
    this.finish();
    this.stream.encodeEnd(this.pendingTrailers);
  }

  onUpstreamFailure(seq: number, host: UpstreamHost, failure: UpstreamFailure, detail: string): void {
    if (seq !== this.attemptSeq || this.done) return;
    this.attempt = undefined;
    this.cluster.reportResult?.(host, failure);
    if (this.responseStarted) {
      this.ctx.info.responseFlags.add(failure === 'remote_reset' ? 'UR' : FAILURE_FLAG[failure]);
      this.ctx.info.responseCodeDetails = `upstream_reset_after_response_started{${RESET_REASON[failure]}}`;
      this.finish();
      this.stream.resetDownstream();
      return;
    }
    if (this.retry && retriableFailure(this.retry, failure) && this.scheduleRetry()) {
      this.ctx.info.responseFlags.add(FAILURE_FLAG[failure]);
      return;
    }
    const reason = RESET_REASON[failure];
    const status = failure === 'protocol_error' ? 502 : 503;
    void detail;
    this.finishWithLocalReply(
      status,
      `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`,
      FAILURE_FLAG[failure],
      // Envoy's response code details never hold spaces (StringUtil::replaceAllEmptySpace): {connection_failure}.
      `upstream_reset_before_response_started{${reason.replaceAll(' ', '_')}}`,
    );
  }

  /** Gives back the retries resource a scheduled retry held (Envoy's RetryStateImpl::resetRetry). */
  private releaseRetry(): void {
    if (this.retryBudgetHeld) {
      this.retryBudgetHeld = false;
      this.cluster.circuitBreakers.retriesActive--;
    }
  }

  /**
   * Starts a retry after back-off when the policy, the buffer and the circuit breaker allow; true if one was scheduled.
   * Otherwise the outcome is flagged as Envoy does: URX when the request's retries are used up, UO when the cluster's
   * max_retries or retry_budget is full (the response or reset at hand then goes downstream).
   */
  private scheduleRetry(): boolean {
    const retry = this.retry;
    if (!retry || this.done) return false;
    // The retried attempt's outcome is known: its hold on the retries resource ends here.
    this.releaseRetry();
    if (!this.canRetryBody) return false;
    if (this.retriesUsed >= retry.numRetries) {
      this.cluster.stats.upstream_rq_retry_limit_exceeded++;
      this.ctx.info.responseFlags.add('URX');
      return false;
    }
    const cb = this.cluster.circuitBreakers;
    if (cb.retriesActive >= (cb.retryBudget ? cb.retryBudget.limit() : cb.maxRetries)) {
      this.cluster.stats.upstream_rq_retry_overflow++;
      this.ctx.info.responseFlags.add('UO');
      return false;
    }
    cb.retriesActive++;
    this.retryBudgetHeld = true;
    this.retriesUsed++;
    this.cluster.stats.upstream_rq_retry++;
    const current = this.attempt;
    this.attempt = undefined;
    this.attemptSeq++;
    current?.abort();
    this.clearAttemptTimers();
    // Envoy's fully jittered exponential back-off: random in [0, min(base * 2^(n-1), max)).
    const interval = Math.min(retry.backOffBaseMs * 2 ** (this.retriesUsed - 1), retry.backOffMaxMs);
    const delay = Math.floor(Math.random() * interval);
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      if (!this.done) this.startAttempt();
    }, delay);
    return true;
  }

  private onPerTryTimeout(seq: number): void {
    this.perTryTimer = undefined;
    if (seq !== this.attemptSeq || this.done || this.responseStarted) return;
    this.cluster.stats.upstream_rq_timeout++;
    this.cluster.reportResult?.(this.previousHostsLast(), 'local_reset');
    if (this.retry && retriableFailure(this.retry, 'per_try_timeout') && this.scheduleRetry()) return;
    this.attempt?.abort();
    this.attempt = undefined;
    this.finishWithLocalReply(504, 'upstream request timeout', 'UT', 'upstream_per_try_timeout');
  }

  private previousHostsLast(): UpstreamHost {
    return this.lastHost!;
  }

  private onGlobalTimeout(): void {
    this.globalTimer = undefined;
    if (this.done) return;
    this.cluster.stats.upstream_rq_timeout++;
    this.attempt?.abort();
    this.attempt = undefined;
    this.attemptSeq++;
    if (this.responseStarted) {
      this.ctx.info.responseFlags.add('UT');
      this.ctx.info.responseCodeDetails = 'upstream_response_timeout';
      this.finish();
      this.stream.resetDownstream();
      return;
    }
    this.finishWithLocalReply(504, 'upstream request timeout', 'UT', 'upstream_response_timeout');
  }

  private onDownstreamReset(): void {
    if (this.done) return;
    this.attempt?.abort();
    this.attempt = undefined;
    this.attemptSeq++;
    for (const m of this.mirrors) m.abort();
    this.finish();
  }

  private finishWithLocalReply(status: number, body: string, flag: ResponseFlag | undefined, details: string): void {
    this.finish();
    this.ctx.sendLocalReply(status, body, flag === undefined ? { details } : { flag, details });
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.globalTimer?.cancel();
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.clearAttemptTimers();
    this.releaseRetry();
    this.buffer = NONE;
  }
}

/** What %DOWNSTREAM_REMOTE_ADDRESS%-style substitutions read; built only for routes with header mutations. */
function formatterContext(info: HttpFilterContext['info']): HeaderFormatterContext {
  return {
    downstreamRemoteAddress: info.downstreamRemoteAddress,
    downstreamLocalAddress: info.downstreamLocalAddress,
    protocol: info.protocol,
    requestId: info.requestId,
    hostname: HOSTNAME,
  };
}

/** Serialises an HTTP/1.1 request head for a raw upgrade tunnel. */
function upgradeRequestHead(headers: HttpHeaders): string {
  let head = `${headerValue(headers, ':method') ?? 'GET'} ${headerValue(headers, ':path') ?? '/'} HTTP/1.1\r\nhost: ${headerValue(headers, ':authority') ?? ''}\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || name.charCodeAt(0) === 58 || name === 'connection' || name === 'host') continue;
    for (const one of Array.isArray(v) ? v : [v]) head += `${name}: ${one}\r\n`;
  }
  return `${head}connection: Upgrade\r\n\r\n`;
}

class RouterFilter implements HttpFilter {
  readonly name = ROUTER_FILTER_NAME;
  constructor(
    private readonly clusters: ClusterManager,
    private readonly stats: Record<string, number>,
    private readonly config: { suppressEnvoyHeaders: boolean; respectExpectedRqTimeout: boolean },
  ) {}


  decodeStream(ctx: HttpFilterContext, stream: HttpTerminalStream): void {
    this.stats['rq_total'] = (this.stats['rq_total'] ?? 0) + 1;
    const route = ctx.route();
    if (!route) {
      this.stats['no_route'] = (this.stats['no_route'] ?? 0) + 1;
      ctx.sendLocalReply(404, '', { flag: 'NR', details: 'route_not_found' });
      return;
    }
    const info = ctx.info;
    const headers = ctx.requestHeaders;
    const vh = route.virtualHost;
    if (vh.requireTls !== 'NONE' && headers[':scheme'] !== 'https' && (vh.requireTls === 'ALL' || headers['x-envoy-internal'] !== 'true')) {
      const location = `https://${headerValue(headers, ':authority') ?? ''}${headerValue(headers, ':path') ?? '/'}`;
      this.stats['rq_redirect'] = (this.stats['rq_redirect'] ?? 0) + 1;
      info.responseCodeDetails = 'direct_response';
      stream.encodeHeaders(301, { location, 'content-length': '0' }, true);
      return;
    }
    const action = route.action;
    if (action.kind === 'direct_response') {
      this.stats['rq_direct_response'] = (this.stats['rq_direct_response'] ?? 0) + 1;
      const body = Buffer.from(action.body);
      const out: HttpHeaders = { 'content-length': String(body.length) };
      if (body.length > 0) out['content-type'] = 'text/plain';
      route.responseHeaders.apply(out, formatterContext(info));
      info.responseCodeDetails = 'direct_response';
      stream.encodeHeaders(action.status, out, body.length === 0);
      if (body.length > 0) {
        stream.encodeData(body);
        stream.encodeEnd();
      }
      return;
    }
    if (action.kind === 'redirect') {
      this.stats['rq_redirect'] = (this.stats['rq_redirect'] ?? 0) + 1;
      const out: HttpHeaders = { location: action.location(headers), 'content-length': '0' };
      route.responseHeaders.apply(out, formatterContext(info));
      info.responseCodeDetails = 'direct_response';
      stream.encodeHeaders(action.status, out, true);
      return;
    }
    const target = action.pickTarget(headers, Math.random());
    const cluster = target !== undefined ? this.clusters.get(target.cluster) : undefined;
    if (!cluster || !target) {
      this.stats['no_cluster'] = (this.stats['no_cluster'] ?? 0) + 1;
      if (target !== undefined) info.upstreamCluster = target.cluster;
      ctx.sendLocalReply(action.clusterNotFoundStatus || 503, '', { flag: 'NC', details: 'cluster_not_found' });
      return;
    }
    info.upstreamCluster = cluster.name;
    if (stream.upgrade) {
      const kind = String(headerValue(headers, 'upgrade') ?? '').toLowerCase();
      if (action.upgrades.get(kind) === false) {
        ctx.sendLocalReply(403, '', { details: 'upgrade_failed' });
        return;
      }
    }

    // The upstream request headers: rewrites, mutations, router-consumed x-envoy headers removed — in place, as Envoy's
    // router finalizes the downstream request header map itself (so access logs see the rewritten :path, hence the
    // default format's %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%, and the x-envoy-* headers it consumed are gone). No copy
    // per request: the copy was ~1% of the proxy's CPU (docs/performance.md, step 13). Mirrors copy for themselves.
    const originalPath = headers[':path'];
    action.rewritePath(headers);
    // Envoy keeps the pre-rewrite path for the upstream (and access logs) unless suppress_envoy_headers.
    if (headers[':path'] !== originalPath && !this.config.suppressEnvoyHeaders && originalPath !== undefined) headers['x-envoy-original-path'] = originalPath;
    if (action.hostRewrite !== undefined) headers[':authority'] = action.hostRewrite;
    if (action.hostRewriteHeader) {
      const v = headerValue(headers, action.hostRewriteHeader);
      if (v) headers[':authority'] = v;
    }
    if (target.hostRewrite !== undefined) headers[':authority'] = target.hostRewrite;
    let timeoutMs = action.timeoutMs;
    const hdrTimeout = positiveInt(headerValue(headers, 'x-envoy-upstream-rq-timeout-ms'));
    if (hdrTimeout !== undefined) timeoutMs = hdrTimeout;
    if (action.maxGrpcTimeoutMs !== undefined) {
      const grpcTimeout = parseGrpcTimeout(headerValue(headers, 'grpc-timeout'));
      if (grpcTimeout !== undefined) {
        let t = Math.max(0, grpcTimeout - (action.grpcTimeoutOffsetMs ?? 0));
        if (action.maxGrpcTimeoutMs > 0) t = Math.min(t, action.maxGrpcTimeoutMs);
        timeoutMs = t;
      }
    }
    if (this.config.respectExpectedRqTimeout) {
      const expected = positiveInt(headerValue(headers, 'x-envoy-expected-rq-timeout-ms'));
      if (expected !== undefined) timeoutMs = expected;
    }
    const retry = effectiveRetry(action.retryPolicy ?? vh.retryPolicy, headers);
    for (const name of CONSUMED_HEADERS) if (headers[name] !== undefined) delete headers[name];
    // Most routes mutate nothing (NO_HEADER_MUTATION, decided at config apply): no formatter context then.
    const targetMutation = target.requestHeaders;
    if (route.requestHeaders !== NO_HEADER_MUTATION || (targetMutation !== undefined && targetMutation !== NO_HEADER_MUTATION)) {
      const fmt = formatterContext(info);
      targetMutation?.apply(headers, fmt);
      route.requestHeaders.apply(headers, fmt);
    }
    const perTry = retry?.perTryTimeoutMs ?? 0;
    const expected = perTry > 0 && (timeoutMs === 0 || perTry < timeoutMs) ? perTry : timeoutMs;
    if (!this.config.suppressEnvoyHeaders && expected > 0) headers['x-envoy-expected-rq-timeout-ms'] = String(expected);

    if (stream.upgrade) {
      this.tunnelUpgrade(ctx, stream, cluster, headers);
      return;
    }
    new UpstreamRouting(ctx, stream, route, action, target, cluster, this.clusters, headers, timeoutMs, retry, this.config).start();
  }

  /** WebSocket: open a raw connection to a host, replay the request head and splice both directions. */
  private tunnelUpgrade(ctx: HttpFilterContext, stream: HttpTerminalStream, cluster: UpstreamCluster, headers: HttpHeaders): void {
    const up = stream.upgrade!;
    const host = cluster.chooseHost({});
    if (!host) {
      ctx.sendLocalReply(503, 'no healthy upstream', { flag: 'UH', details: 'no_healthy_upstream' });
      return;
    }
    ctx.info.upstreamHost = host.addressText;
    ctx.info.attemptCount = 1;
    const upstream: Socket = netConnect({ host: host.address, port: host.port });
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      upstream.write(upgradeRequestHead(headers));
      if (up.head.length > 0) upstream.write(up.head);
      upstream.pipe(up.socket);
      up.socket.pipe(upstream);
      ctx.info.responseCode = 101;
    });
    upstream.on('error', () => {
      if (!connected) {
        ctx.sendLocalReply(503, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure', {
          flag: 'UF',
          details: 'upstream_reset_before_response_started{connection_failure}',
        });
      } else up.socket.destroy();
    });
    upstream.once('close', () => up.socket.destroy());
    up.socket.once('close', () => upstream.destroy());
    up.socket.on('error', () => upstream.destroy());
  }
}

const UNSUPPORTED_ROUTER_FIELDS = ['upstream_http_filters', 'upstream_log', 'strict_check_headers'] as const;

/** The router factory; it needs the cluster manager (a live lookup, so CDS updates apply to new requests). */
export function routerFilterFactory(clusters: ClusterManager): HttpFilterFactory {
  return {
    name: ROUTER_FILTER_NAME,
    typeUrl: ROUTER_TYPE_URL,
    create(config: unknown, context) {
      const c = (config ?? {}) as RouterConfig;
      const problems: string[] = [];
      for (const f of UNSUPPORTED_ROUTER_FIELDS) {
        const v = c[f];
        if (v !== undefined && !(Array.isArray(v) && v.length === 0)) problems.push(`${f}: not supported by Trellis`);
      }
      if (problems.length) throw new XdsValidationError(problems);
      return new RouterFilter(clusters, context.stats ?? {}, {
        suppressEnvoyHeaders: c.suppress_envoy_headers === true,
        respectExpectedRqTimeout: c.respect_expected_rq_timeout === true,
      });
    },
  };
}
