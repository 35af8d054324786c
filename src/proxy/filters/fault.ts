// envoy.filters.http.fault: delays and aborts with percentages, header-controlled faults, max_active_faults and per-route overrides.
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import type { HttpFilter, HttpFilterContext, HttpFilterFactory, FilterStatus } from '../http/filter.js';
import { headerValue, type HttpHeaders } from '../http/headers.js';
import { compileHeaderMatcher, denominatorOf } from './string-matcher.js';

type HTTPFault = envoy.extensions.filters.http.fault.v3.HTTPFault;
type FractionalPercent = envoy.type.v3.FractionalPercent;

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';
export const FAULT_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

const ABORT_HEADER = 'x-envoy-fault-abort-request';
const ABORT_GRPC_HEADER = 'x-envoy-fault-abort-grpc-request';
const ABORT_PERCENT_HEADER = 'x-envoy-fault-abort-request-percentage';
const DELAY_HEADER = 'x-envoy-fault-delay-request';
const DELAY_PERCENT_HEADER = 'x-envoy-fault-delay-request-percentage';

/** A percentage: the configured one, or (for header faults) the header's numerator capped by it, as Envoy does. */
interface CompiledPercent {
  readonly numerator: number;
  readonly denominator: number;
}

export interface CompiledFault {
  readonly delay?: { readonly fixedMs?: number; readonly fromHeader: boolean; readonly percent: CompiledPercent };
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: number; readonly fromHeader: boolean; readonly percent: CompiledPercent };
  readonly upstreamCluster?: string;
  readonly headers: readonly ((h: HttpHeaders) => boolean)[];
  readonly downstreamNodes?: ReadonlySet<string>;
  readonly maxActiveFaults?: number;
}

function percentOf(p: FractionalPercent | undefined): CompiledPercent {
  // Envoy: an absent percentage is 100% for FaultDelay/FaultAbort created by Istio; the proto default numerator is 0.
  return { numerator: p?.numerator ?? 0, denominator: denominatorOf(p) };
}

function durationMs(d: { seconds?: number; nanos?: number }): number {
  return (d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
}

const UNSUPPORTED = [
  'response_rate_limit', 'delay_percent_runtime', 'abort_percent_runtime', 'delay_duration_runtime', 'abort_http_status_runtime',
  'max_active_faults_runtime', 'response_rate_limit_percent_runtime', 'abort_grpc_status_runtime', 'filter_metadata',
] as const;

export function compileFault(config: HTTPFault, path = ''): CompiledFault {
  const problems: string[] = [];
  const p = (f: string): string => (path ? `${path}.${f}` : f);
  for (const f of UNSUPPORTED) if (config[f] !== undefined && config[f] !== '') problems.push(`${p(f)}: not supported by Trellis`);
  let delay: CompiledFault['delay'];
  if (config.delay) {
    const d = config.delay;
    if (!d.fixed_delay && !d.header_delay) problems.push(`${p('delay')}: expected fixed_delay or header_delay`);
    delay = { ...(d.fixed_delay ? { fixedMs: durationMs(d.fixed_delay) } : {}), fromHeader: !!d.header_delay, percent: percentOf(d.percentage) };
  }
  let abort: CompiledFault['abort'];
  if (config.abort) {
    const a = config.abort;
    if (a.http_status !== undefined && (a.http_status < 200 || a.http_status >= 600)) problems.push(`${p('abort.http_status')}: expected 200..599, got ${a.http_status}`);
    if (a.http_status === undefined && a.grpc_status === undefined && !a.header_abort) problems.push(`${p('abort')}: expected http_status, grpc_status or header_abort`);
    abort = {
      ...(a.http_status !== undefined ? { httpStatus: a.http_status } : {}),
      ...(a.grpc_status !== undefined ? { grpcStatus: a.grpc_status } : {}),
      fromHeader: !!a.header_abort,
      percent: percentOf(a.percentage),
    };
  }
  const headers = (config.headers ?? []).map((m, i) => compileHeaderMatcher(m, p(`headers[${i}]`), problems));
  if (problems.length) throw new XdsValidationError(problems);
  return {
    ...(delay ? { delay } : {}),
    ...(abort ? { abort } : {}),
    ...(config.upstream_cluster ? { upstreamCluster: config.upstream_cluster } : {}),
    headers,
    ...(config.downstream_nodes?.length ? { downstreamNodes: new Set(config.downstream_nodes) } : {}),
    ...(config.max_active_faults?.value !== undefined ? { maxActiveFaults: config.max_active_faults.value } : {}),
  };
}

function chosen(percent: CompiledPercent, headers: HttpHeaders, headerName: string | undefined): boolean {
  let numerator = percent.numerator;
  if (headerName) {
    const v = headerValue(headers, headerName);
    if (v !== undefined && /^\d+$/.test(v)) numerator = Math.min(Number(v), percent.numerator);
  }
  if (numerator <= 0) return false;
  return Math.random() * percent.denominator < numerator;
}

class FaultFilter implements HttpFilter {
  readonly name = FAULT_FILTER_NAME;
  private active = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly config: CompiledFault, private readonly stats: Record<string, number>) {
    for (const s of ['fault.aborts_injected', 'fault.delays_injected', 'fault.faults_overflow', 'fault.active_faults']) stats[s] ??= 0;
  }

  onRequestHeaders(ctx: HttpFilterContext): FilterStatus {
    const fault = ctx.routeConfig<CompiledFault>(FAULT_FILTER_NAME) ?? this.config;
    const h = ctx.requestHeaders;
    if (fault.headers.some((m) => !m(h))) return 'continue';
    if (fault.downstreamNodes) {
      const node = headerValue(h, 'x-envoy-downstream-service-node');
      if (!node || !fault.downstreamNodes.has(node)) return 'continue';
    }
    if (fault.upstreamCluster) {
      const route = ctx.route();
      if (!route || route.action.kind !== 'cluster' || route.action.pickCluster(h, 0) !== fault.upstreamCluster) return 'continue';
    }
    const delayMs = this.delayFor(fault, h);
    const abort = this.abortFor(fault, h);
    if (delayMs === undefined && abort === undefined) return 'continue';
    if (fault.maxActiveFaults !== undefined && this.active >= fault.maxActiveFaults) {
      this.stats['fault.faults_overflow']!++;
      return 'continue';
    }
    if (delayMs !== undefined) {
      this.active++;
      this.stats['fault.active_faults'] = this.active;
      this.stats['fault.delays_injected']!++;
      ctx.info.responseFlags.add('DI');
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.active--;
        this.stats['fault.active_faults'] = this.active;
        if (ctx.aborted) return;
        if (abort) this.doAbort(ctx, abort);
        else ctx.continueDecoding();
      }, delayMs);
      this.timers.add(timer);
      return 'stop';
    }
    this.doAbort(ctx, abort!);
    return 'stop';
  }

  private delayFor(fault: CompiledFault, h: HttpHeaders): number | undefined {
    const d = fault.delay;
    if (!d) return undefined;
    let ms = d.fixedMs;
    if (d.fromHeader) {
      const v = headerValue(h, DELAY_HEADER);
      if (v === undefined || !/^\d+$/.test(v)) return undefined;
      ms = Number(v);
    }
    if (ms === undefined || !chosen(d.percent, h, d.fromHeader ? DELAY_PERCENT_HEADER : undefined)) return undefined;
    return ms;
  }

  private abortFor(fault: CompiledFault, h: HttpHeaders): { http?: number; grpc?: number } | undefined {
    const a = fault.abort;
    if (!a) return undefined;
    let http = a.httpStatus;
    let grpc = a.grpcStatus;
    if (a.fromHeader) {
      const hv = headerValue(h, ABORT_HEADER);
      const gv = headerValue(h, ABORT_GRPC_HEADER);
      http = hv !== undefined && /^\d+$/.test(hv) && Number(hv) >= 200 && Number(hv) < 600 ? Number(hv) : undefined;
      grpc = gv !== undefined && /^\d+$/.test(gv) ? Number(gv) : undefined;
      if (http === undefined && grpc === undefined) return undefined;
    }
    if (!chosen(a.percent, h, a.fromHeader ? ABORT_PERCENT_HEADER : undefined)) return undefined;
    return { ...(http !== undefined ? { http } : {}), ...(grpc !== undefined ? { grpc } : {}) };
  }

  private doAbort(ctx: HttpFilterContext, abort: { http?: number; grpc?: number }): void {
    this.stats['fault.aborts_injected']!++;
    const status = abort.http ?? (abort.grpc !== undefined ? 200 : 503);
    ctx.sendLocalReply(status, 'fault filter abort', {
      flag: 'FI',
      details: 'fault_filter_abort',
      ...(abort.grpc !== undefined ? { grpcStatus: abort.grpc } : {}),
    });
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

export const faultFilterFactory: HttpFilterFactory = {
  name: FAULT_FILTER_NAME,
  typeUrl: FAULT_TYPE_URL,
  create(config, context) {
    return new FaultFilter(compileFault((config ?? {}) as HTTPFault), context.stats ?? {});
  },
  createRouteConfig(config) {
    return compileFault((config ?? {}) as HTTPFault);
  },
};
