// Collects problems while walking untrusted YAML: type checks, unknown fields, enums and durations, each at its field path.
import { parseDurationNanos } from '../duration.js';
import { type Problem, indexPath, keyPath } from '../problem.js';

export type Obj = Record<string, unknown>;

/** Gathers every problem found in one resource; validators never stop at the first. */
export class Checker {
  readonly problems: Problem[] = [];
  report(path: string, message: string): void {
    this.problems.push({ path, message });
  }
}

/** `a string ("fifty")`, `a list`, `an object`: what the user wrote, for "expected X, got Y". */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
    case 'number':
      return `a number (${value})`;
    case 'boolean':
      return `a boolean (${value})`;
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** YAML `key:` with nothing after it is null; like protobuf JSON, null means "not set". */
export function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest known name, for "did you mean" hints on typos such as `weigth`. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 4)) + 1;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** An object whose fields must all be in `known` (Istio's decoder rejects unknown fields too). */
export function asObject(c: Checker, path: string, value: unknown, known?: readonly string[]): Obj | undefined {
  if (!isSet(value)) return undefined;
  if (!isObject(value)) {
    c.report(path, `expected an object, got ${describeValue(value)}`);
    return undefined;
  }
  if (known) {
    for (const key of Object.keys(value)) {
      if (known.includes(key)) continue;
      const hint = closest(key, known);
      c.report(keyPath(path, key), `unknown field${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
  }
  return value;
}

export function asList(c: Checker, path: string, value: unknown): unknown[] | undefined {
  if (!isSet(value)) return undefined;
  if (!Array.isArray(value)) {
    c.report(path, `expected a list, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

/** Calls `each` for every entry of a list that is an object with only `known` fields. */
export function eachObject(
  c: Checker,
  path: string,
  value: unknown,
  known: readonly string[],
  each: (item: Obj, itemPath: string, index: number) => void,
): Obj[] {
  const list = asList(c, path, value) ?? [];
  const out: Obj[] = [];
  list.forEach((item, index) => {
    const itemPath = indexPath(path, index);
    if (!isSet(item)) {
      c.report(itemPath, 'expected an object, got null');
      return;
    }
    const obj = asObject(c, itemPath, item, known);
    if (obj) {
      out.push(obj);
      each(obj, itemPath, index);
    }
  });
  return out;
}

export function asString(c: Checker, path: string, value: unknown): string | undefined {
  if (!isSet(value)) return undefined;
  if (typeof value !== 'string') {
    c.report(path, `expected a string, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

export function asBoolean(c: Checker, path: string, value: unknown): boolean | undefined {
  if (!isSet(value)) return undefined;
  if (typeof value !== 'boolean') {
    c.report(path, `expected true or false, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

export function asNumber(c: Checker, path: string, value: unknown): number | undefined {
  if (!isSet(value)) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    c.report(path, `expected a number, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

/** An integer, optionally within [min, max]; the message names the range. */
export function asInteger(c: Checker, path: string, value: unknown, min?: number, max?: number): number | undefined {
  if (!isSet(value)) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    c.report(path, `expected an integer, got ${describeValue(value)}`);
    return undefined;
  }
  if (min !== undefined && max !== undefined && (value < min || value > max)) {
    c.report(path, `must be in the range ${min}..${max} (got ${value})`);
  } else if (min !== undefined && value < min) {
    c.report(path, `must be ${min === 0 ? 'non-negative' : `at least ${min}`} (got ${value})`);
  } else if (max !== undefined && value > max) {
    c.report(path, `must be at most ${max} (got ${value})`);
  }
  return value;
}

export function asEnum<T extends string>(c: Checker, path: string, value: unknown, values: readonly T[]): T | undefined {
  const s = asString(c, path, value);
  if (s === undefined) return undefined;
  if (!(values as readonly string[]).includes(s)) {
    c.report(path, `unknown value ${JSON.stringify(s)}, expected one of ${values.join(', ')}`);
    return undefined;
  }
  return s as T;
}

/** A list of strings; each non-string entry is reported at its index. */
export function asStringList(c: Checker, path: string, value: unknown, allowEmptyEntries = true): string[] | undefined {
  const list = asList(c, path, value);
  if (!list) return undefined;
  const out: string[] = [];
  list.forEach((item, index) => {
    const s = asString(c, indexPath(path, index), item ?? '');
    if (s === undefined) return;
    if (!allowEmptyEntries && s === '') c.report(indexPath(path, index), 'must not be empty');
    out.push(s);
  });
  return out;
}

/** A map of string to string (labels, headers to set); numbers and booleans are reported, as Kubernetes does. */
export function asStringMap(c: Checker, path: string, value: unknown): Record<string, string> | undefined {
  const obj = asObject(c, path, value);
  if (!obj) return undefined;
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(obj)) {
    const s = asString(c, keyPath(path, key), v ?? '');
    if (s !== undefined) out[key] = s;
  }
  return out;
}

/** Reports when more than one of `keys` is set in `obj` (protobuf one-of). Returns the keys that are set. */
export function oneOf(c: Checker, path: string, obj: Obj, keys: readonly string[]): string[] {
  const set = keys.filter((k) => isSet(obj[k]));
  if (set.length > 1) c.report(path, `only one of ${keys.join(', ')} may be set (got ${set.join(' and ')})`);
  return set;
}

/**
 * A duration in Istio's syntax (`1.5s`, `100ms`, `1m`, `1h`), at least `minMs` and to millisecond precision,
 * as Istio's ValidateDuration requires. Returns milliseconds.
 */
export function asDuration(c: Checker, path: string, value: unknown, minMs = 1): number | undefined {
  const s = asString(c, path, value);
  if (s === undefined) return undefined;
  const nanos = parseDurationNanos(s);
  if (nanos === undefined) {
    c.report(path, `invalid duration ${JSON.stringify(s)}, expected a number with a unit such as 1.5s, 100ms, 1m or 1h`);
    return undefined;
  }
  if (nanos < minMs * 1e6) {
    c.report(path, `duration must be at least ${minMs}ms (got ${s})`);
    return undefined;
  }
  if (nanos % 1e6 !== 0) {
    c.report(path, `only durations to millisecond precision are supported (got ${s})`);
    return undefined;
  }
  return nanos / 1e6;
}

/** Reports a required field that is missing. */
export function required(c: Checker, path: string, value: unknown, what = 'is required'): boolean {
  if (!isSet(value) || value === '') {
    c.report(path, what);
    return false;
  }
  return true;
}
