// Reading decoded protobuf values (wrappers, set fields) the way Envoy defaults them, for the upstream config compilers.

/** The value of a wrapper (UInt32Value, BoolValue…), or `fallback` when the wrapper or its value is unset. */
export function wrapped<T>(w: { value?: T } | undefined, fallback: T): T {
  return w === undefined || w.value === undefined ? fallback : w.value;
}

/** Field names of `obj` that are set (not undefined, not an empty array/map, not false/0/'' defaults). */
export function setFields(obj: object | undefined): string[] {
  if (!obj) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null || v === false || v === 0 || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && Object.keys(v).length === 0 && k !== 'locality_weighted_lb_config') {
      // An empty message is "set" in proto3 only for oneof/presence fields; the few where presence matters are checked by name.
      continue;
    }
    out.push(k);
  }
  return out;
}

/** Pushes `path.field: <message>` for every set field of `obj` not in `supported`. */
export function rejectUnsupported(obj: object | undefined, supported: readonly string[], path: string, problems: string[], what = 'is not supported'): void {
  for (const field of setFields(obj)) {
    if (!supported.includes(field)) problems.push(`${path}.${field}: ${what}`);
  }
}
