// Collects every problem found while compiling a RouteConfiguration, each with its field path, for one XdsValidationError (the NACK's error_detail).
import { XdsValidationError } from '../../common/errors.js';
import type { google } from '../../xds/generated/types.js';

export class ConfigProblems {
  readonly details: string[] = [];

  add(path: string, message: string): void {
    this.details.push(path === '' ? message : `${path}: ${message}`);
  }

  /** Throws the collected problems, if any. */
  throwIfAny(): void {
    if (this.details.length > 0) throw new XdsValidationError(this.details);
  }
}

/** Joins a field path: `join('virtual_hosts[0]', 'routes')`. */
export function fieldPath(parent: string, field: string): string {
  return parent === '' ? field : `${parent}.${field}`;
}

/** True when a decoded protobuf field holds something other than its proto3 default. */
export function isSet(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === '' || value === 0) return false;
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

/**
 * Reports every set field of `message` that is not in `supported`: Trellis implements a subset of Envoy's config and
 * refuses (NACKs) the rest rather than ignoring it. Fields Envoy itself only uses for stats or tracing are listed as
 * supported by the caller where ignoring them changes no behaviour a request can observe.
 */
export function rejectUnsupportedFields(message: object, supported: ReadonlySet<string>, path: string, problems: ConfigProblems): void {
  for (const [key, value] of Object.entries(message)) {
    if (supported.has(key) || !isSet(value)) continue;
    problems.add(fieldPath(path, key), 'not supported by Trellis');
  }
}

/** Milliseconds of a google.protobuf.Duration, or undefined when unset; negative or out-of-range durations are reported. */
export function durationMs(duration: google.protobuf.Duration | undefined, path: string, problems: ConfigProblems): number | undefined {
  if (duration === undefined || duration === null) return undefined;
  const seconds = Number(duration.seconds ?? 0);
  const nanos = Number(duration.nanos ?? 0);
  if (!Number.isFinite(seconds) || !Number.isFinite(nanos) || seconds < 0 || nanos < 0 || nanos > 999_999_999) {
    problems.add(path, `must be a non-negative duration (got seconds=${String(duration.seconds)}, nanos=${String(duration.nanos)})`);
    return undefined;
  }
  return seconds * 1000 + Math.floor(nanos / 1e6);
}

/** FractionalPercent as a probability in [0, 1] (numerator over HUNDRED / TEN_THOUSAND / MILLION, capped at 1). */
export function fractionOf(
  percent: { numerator?: number; denominator?: string | number } | undefined,
  path: string,
  problems: ConfigProblems,
): number {
  if (percent === undefined) return 0;
  const numerator = Number(percent.numerator ?? 0);
  let denominator: number;
  switch (percent.denominator ?? 'HUNDRED') {
    case 'HUNDRED':
    case 0:
      denominator = 100;
      break;
    case 'TEN_THOUSAND':
    case 1:
      denominator = 10_000;
      break;
    case 'MILLION':
    case 2:
      denominator = 1_000_000;
      break;
    default:
      problems.add(fieldPath(path, 'denominator'), `unknown denominator ${String(percent.denominator)} (expected HUNDRED, TEN_THOUSAND or MILLION)`);
      return 0;
  }
  if (!Number.isInteger(numerator) || numerator < 0) {
    problems.add(fieldPath(path, 'numerator'), `must be a non-negative integer (got ${String(percent.numerator)})`);
    return 0;
  }
  return Math.min(1, numerator / denominator);
}

/** Envoy's header-name rule for config (PGV HTTP_HEADER_NAME, non-strict): non-empty, no NUL, CR or LF. */
export function isValidHeaderName(name: string): boolean {
  return name.length > 0 && !/[\0\r\n]/.test(name);
}

/** Envoy's header-value rule for config (PGV HTTP_HEADER_VALUE, non-strict): no NUL, CR or LF. */
export function isValidHeaderValue(value: string): boolean {
  return !/[\0\r\n]/.test(value);
}
