// Istio durations and percentages as Envoy protobuf values (google.protobuf.Duration, envoy.type.v3.FractionalPercent).
import { parseDurationNanos } from '../../../api/duration.js';
import type { envoy, google } from '../../../xds/generated/types.js';

export type Duration = google.protobuf.Duration;
export type FractionalPercent = envoy.type.v3.FractionalPercent;

/** A Duration from nanoseconds; `{ seconds: 0 }` is Envoy's "disabled" for route timeouts (Istio's Notimeout). */
export function durationFromNanos(nanos: number): Duration {
  const whole = Math.round(nanos);
  const seconds = Math.trunc(whole / 1e9);
  const rest = whole - seconds * 1e9;
  return rest === 0 ? { seconds } : { seconds, nanos: rest };
}

export function durationFromMs(ms: number): Duration {
  return durationFromNanos(ms * 1e6);
}

/** A zero Duration: Istio's `Notimeout`. A fresh object every call, so callers may not share one by accident. */
export function noTimeout(): Duration {
  return { seconds: 0 };
}

/** An Istio duration string (`7s`, `1.5s`, `100ms`) as a Duration, or undefined when absent or unparsable (validation rejects those). */
export function durationFromIstio(text: string | undefined): Duration | undefined {
  if (text === undefined) return undefined;
  const nanos = parseDurationNanos(text);
  return nanos === undefined ? undefined : durationFromNanos(nanos);
}

/** True for a zero (or absent) Duration. */
export function isZeroDuration(duration: Duration | undefined): boolean {
  return !duration || ((duration.seconds ?? 0) === 0 && (duration.nanos ?? 0) === 0);
}

/**
 * Istio's translatePercentToFractionalPercent: a percentage with decimals (`Percent.value`, 0–100) as parts per million.
 * Rounded rather than truncated, so 0.1 % is 1000 and not 999 after floating-point error.
 */
export function percentToFractional(value: number): FractionalPercent {
  return { numerator: Math.round(value * 10_000), denominator: 'MILLION' };
}

/** Istio's translateIntegerToFractionalPercent: the deprecated integer percentages, per hundred. */
export function integerPercentToFractional(value: number): FractionalPercent {
  return { numerator: Math.trunc(value), denominator: 'HUNDRED' };
}
