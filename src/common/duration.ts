// google.protobuf.Duration as the milliseconds the proxy's timers take (structural, so common imports nothing of ours).

/** A decoded google.protobuf.Duration (the codec turns 64-bit seconds into numbers). */
export interface ProtoDuration {
  readonly seconds?: number;
  readonly nanos?: number;
}

/** Whole milliseconds of `d` (nanoseconds below a millisecond are dropped, as Envoy's DurationUtil::durationToMilliseconds), or `fallback` when unset. */
export function durationMs(d: ProtoDuration | undefined, fallback: number): number {
  if (!d) return fallback;
  return Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
}
