// Protobuf well-known values as Envoy's generated types want them: Duration from Istio duration strings, UInt32Value, Struct.
import { parseDurationNanos } from '../../../api/duration.js';
import type { google } from '../../../xds/generated/types.js';

export type Duration = google.protobuf.Duration;
export type Struct = google.protobuf.Struct;
export type Value = google.protobuf.Value;

/** Largest uint32: what Istio writes for "no limit" circuit-breaker thresholds (Go's math.MaxUint32). */
export const MAX_UINT32 = 4_294_967_295;

/** A Duration from whole nanoseconds, always with both fields so tests and config dumps read alike. */
export function durationFromNanos(nanos: number): Duration {
  const total = Math.max(0, Math.round(nanos));
  return { seconds: Math.floor(total / 1e9), nanos: total % 1e9 };
}

export function durationFromMs(ms: number): Duration {
  return durationFromNanos(ms * 1e6);
}

/**
 * A Duration from an Istio duration string (`"1.5s"`, `"100ms"`); undefined for text that is not a duration.
 * Validation rejects bad durations before config reaches the generators, so undefined only guards against misuse.
 */
export function durationFromText(text: string | undefined): Duration | undefined {
  if (text === undefined) return undefined;
  const nanos = parseDurationNanos(text);
  return nanos === undefined ? undefined : durationFromNanos(nanos);
}

/** Whole seconds of an Istio duration string (Istio's `uint32(d.Seconds)`, which truncates), or undefined. */
export function secondsFromText(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const nanos = parseDurationNanos(text);
  return nanos === undefined ? undefined : Math.floor(Math.max(0, nanos) / 1e9);
}

export function uint32(value: number): google.protobuf.UInt32Value {
  return { value };
}

// Structs are built by the helper both planes share (the proxy reads what this writes).
export { toStruct } from '../../../xds/struct.js';
