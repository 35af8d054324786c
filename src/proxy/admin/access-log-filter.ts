// Envoy's access log filters (AccessLog.filter): status code, duration, health check, response flags, and/or, header, runtime, and the CEL extension filter.
//
// Filters compile once per config apply into predicates over a finished stream; a predicate that says false keeps
// the line out of the log. Trellis has no runtime layer, so runtime keys always take their default values, as an
// Envoy whose runtime does not set them.
import type { envoy } from '../../xds/generated/types.js';
import { unpackAny, type Any } from '../../xds/codec.js';
import { ConfigProblems, fieldPath, fractionOf } from '../router/config-problems.js';
import { compileHeaderMatcher } from '../router/header-matcher.js';
import type { StreamInfo } from '../http/stream-info.js';
import { compileCelExpression } from './access-log-cel.js';

type AccessLogFilter = envoy.config.accesslog.v3.AccessLogFilter;
type ComparisonFilter = envoy.config.accesslog.v3.ComparisonFilter;

/** True when the stream should be logged. */
export type AccessLogPredicate = (info: StreamInfo) => boolean;

export const CEL_FILTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';
/** Envoy's extension name for the CEL filter (what Istio puts in `extension_filter.name`). */
export const CEL_FILTER_NAME = 'envoy.access_loggers.extension_filters.cel';

/**
 * filterState key a health-check filter sets to `true` on the requests it answers (Envoy's StreamInfo::healthCheck()).
 * Trellis has no health_check HTTP filter yet, so not_health_check_filter passes every request until one sets it.
 */
export const HEALTH_CHECK_STATE = 'envoy.health_check';

/** Envoy's response flag short codes (envoy/config/accesslog/v3/accesslog.proto ResponseFlagFilter.flags `in` list). */
export const ENVOY_RESPONSE_FLAG_CODES: readonly string[] = [
  'LH', 'UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'NR', 'DI', 'FI', 'RL', 'UAEX', 'RLSE', 'DC', 'URX', 'SI', 'IH', 'DPE', 'UMSDR',
  'RFCF', 'NFCF', 'DT', 'UPE', 'NC', 'OM', 'DF', 'DO', 'DR',
];

const ONE_OF = [
  'status_code_filter', 'duration_filter', 'not_health_check_filter', 'traceable_filter', 'runtime_filter', 'and_filter', 'or_filter',
  'header_filter', 'response_flag_filter', 'grpc_status_filter', 'extension_filter', 'metadata_filter', 'log_type_filter',
] as const;
const UNSUPPORTED = new Set<string>(['traceable_filter', 'grpc_status_filter', 'metadata_filter', 'log_type_filter']);

/** Compiles an AccessLog.filter; every problem goes to `problems` with its field path (`access_log[0].filter.or_filter.filters[1]…`). */
export function compileAccessLogFilter(filter: AccessLogFilter, path: string, problems: ConfigProblems): AccessLogPredicate | undefined {
  const set = ONE_OF.filter((k) => filter[k] !== undefined && filter[k] !== null);
  if (set.length !== 1) {
    problems.add(path, set.length === 0 ? `exactly one filter type must be set (${ONE_OF.join(', ')})` : `only one filter type may be set (got ${set.join(', ')})`);
    return undefined;
  }
  const kind = set[0]!;
  const here = fieldPath(path, kind);
  if (UNSUPPORTED.has(kind)) {
    problems.add(here, 'not supported by Trellis (supported: status_code, duration, not_health_check, runtime, and, or, header, response_flag, extension_filter with CEL)');
    return undefined;
  }
  switch (kind) {
    case 'status_code_filter': {
      const compare = comparison(filter.status_code_filter!.comparison, fieldPath(here, 'comparison'), problems);
      // Envoy compares the response code; a stream that never got one compares as 0.
      return compare && ((info) => compare(info.responseCode ?? 0));
    }
    case 'duration_filter': {
      const compare = comparison(filter.duration_filter!.comparison, fieldPath(here, 'comparison'), problems);
      // Envoy: the request's total duration in milliseconds; an unfinished stream does not match.
      return compare && ((info) => (info.endTime === undefined ? false : compare(Math.floor(info.endTime - info.startTime))));
    }
    case 'not_health_check_filter':
      return (info) => info.filterState.get(HEALTH_CHECK_STATE) !== true;
    case 'runtime_filter':
      return runtimeFilter(filter.runtime_filter!, here, problems);
    case 'and_filter':
    case 'or_filter': {
      const list = (kind === 'and_filter' ? filter.and_filter : filter.or_filter)!.filters ?? [];
      if (list.length < 2) problems.add(fieldPath(here, 'filters'), `needs at least 2 filters (got ${list.length})`);
      const compiled = list.map((f, i) => compileAccessLogFilter(f, `${here}.filters[${i}]`, problems));
      if (compiled.some((c) => c === undefined) || list.length < 2) return undefined;
      const predicates = compiled as AccessLogPredicate[];
      return kind === 'and_filter' ? (info) => predicates.every((p) => p(info)) : (info) => predicates.some((p) => p(info));
    }
    case 'header_filter': {
      const header = filter.header_filter!.header;
      if (!header) {
        problems.add(fieldPath(here, 'header'), 'must be set');
        return undefined;
      }
      const matcher = compileHeaderMatcher(header, fieldPath(here, 'header'), problems);
      return matcher && ((info) => matcher.matches(info.requestHeaders));
    }
    case 'response_flag_filter': {
      const flags = filter.response_flag_filter!.flags ?? [];
      const bad = flags.filter((f) => !ENVOY_RESPONSE_FLAG_CODES.includes(f));
      if (bad.length > 0) {
        problems.add(fieldPath(here, 'flags'), `unknown response flag ${bad.join(', ')} (expected one of ${ENVOY_RESPONSE_FLAG_CODES.join(', ')})`);
        return undefined;
      }
      // No flags listed: any flag matches.
      if (flags.length === 0) return (info) => info.responseFlags.size > 0;
      const wanted = new Set(flags);
      return (info) => {
        for (const flag of info.responseFlags) if (wanted.has(flag)) return true;
        return false;
      };
    }
    case 'extension_filter':
      return extensionFilter(filter.extension_filter!, here, problems);
  }
  return undefined;
}

function comparison(config: ComparisonFilter | undefined, path: string, problems: ConfigProblems): ((value: number) => boolean) | undefined {
  if (!config) {
    problems.add(path, 'must be set');
    return undefined;
  }
  const value = Number(config.value?.default_value ?? 0);
  if (config.value?.runtime_key === undefined || config.value.runtime_key === '') {
    problems.add(fieldPath(path, 'value.runtime_key'), 'must not be empty');
    return undefined;
  }
  switch (config.op ?? 'EQ') {
    case 'EQ':
    case 0:
      return (v) => v === value;
    case 'GE':
    case 1:
      return (v) => v >= value;
    case 'LE':
    case 2:
      return (v) => v <= value;
    default:
      problems.add(fieldPath(path, 'op'), `unknown comparison ${String(config.op)} (expected EQ, GE or LE)`);
      return undefined;
  }
}

/**
 * Envoy's RuntimeFilter: log `percent_sampled` of requests. Unless use_independent_randomness, the draw is the request
 * id's (UUID's) first 8 hex digits modulo the denominator, so every proxy a request crosses makes the same choice.
 */
function runtimeFilter(config: envoy.config.accesslog.v3.RuntimeFilter, path: string, problems: ConfigProblems): AccessLogPredicate | undefined {
  if (!config.runtime_key) {
    problems.add(fieldPath(path, 'runtime_key'), 'must not be empty');
    return undefined;
  }
  const percent = config.percent_sampled ?? { numerator: 0, denominator: 'HUNDRED' };
  const fraction = fractionOf(percent, fieldPath(path, 'percent_sampled'), problems);
  const denominator = denominatorOf(percent.denominator);
  const numerator = Math.min(denominator, Math.round(fraction * denominator));
  const independent = config.use_independent_randomness === true;
  return (info) => {
    let draw: number;
    const hex = independent ? undefined : /^[0-9a-fA-F]{8}/.exec(info.requestId)?.[0];
    if (hex !== undefined) draw = parseInt(hex, 16) % denominator;
    else draw = Math.floor(Math.random() * denominator);
    return draw < numerator;
  };
}

function denominatorOf(denominator: string | number | undefined): number {
  switch (denominator) {
    case 'TEN_THOUSAND':
    case 1:
      return 10_000;
    case 'MILLION':
    case 2:
      return 1_000_000;
    default:
      return 100;
  }
}

function extensionFilter(config: envoy.config.accesslog.v3.ExtensionFilter, path: string, problems: ConfigProblems): AccessLogPredicate | undefined {
  const typed = config.typed_config as Any | undefined;
  if (!typed || typed.type_url !== CEL_FILTER_TYPE_URL) {
    problems.add(fieldPath(path, 'typed_config'), `unsupported access log extension filter ${typed?.type_url ?? '(none)'} (supported: ${CEL_FILTER_TYPE_URL})`);
    return undefined;
  }
  let expression: string;
  try {
    expression = unpackAny<envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter>(typed).expression ?? '';
  } catch (err) {
    problems.add(fieldPath(path, 'typed_config'), (err as Error).message);
    return undefined;
  }
  const compiled = compileCelExpression(expression);
  if (!compiled.ok) {
    problems.add(fieldPath(path, 'typed_config.expression'), compiled.error);
    return undefined;
  }
  return compiled.predicate;
}
