// Envoy's MetadataMatcher / ValueMatcher / FilterStateMatcher over the team's dynamic metadata (plain objects in filterState), compiled once.
import type { envoy } from '../../../xds/generated/types.js';
import { ConfigProblems, fieldPath, rejectUnsupportedFields } from '../../router/config-problems.js';
import { compileStringMatcher, type StringPredicate } from '../../router/string-matcher.js';

type ValueMatcher = envoy.type.matcher.v3.ValueMatcher;
type MetadataMatcher = envoy.type.matcher.v3.MetadataMatcher;
type FilterStateMatcher = envoy.type.matcher.v3.FilterStateMatcher;

/** A predicate over one JSON value; `undefined` is protobuf's unset Value (KIND_NOT_SET). */
export type ValuePredicate = (value: unknown) => boolean;

const VALUE_KINDS = ['null_match', 'double_match', 'string_match', 'bool_match', 'present_match', 'list_match', 'or_match'] as const;

function isStruct(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Compiles a ValueMatcher with Envoy's semantics: a matcher only matches a value of its own kind. */
export function compileValueMatcher(m: ValueMatcher | undefined, path: string, problems: ConfigProblems): ValuePredicate {
  if (!m) {
    problems.add(path, 'a value matcher is required');
    return () => false;
  }
  const kinds = VALUE_KINDS.filter((k) => m[k] !== undefined);
  if (kinds.length !== 1) {
    problems.add(path, kinds.length === 0 ? `one of ${VALUE_KINDS.join(', ')} is required` : `only one of ${VALUE_KINDS.join(', ')} may be set (got ${kinds.join(', ')})`);
    return () => false;
  }
  const kind = kinds[0]!;
  const p = fieldPath(path, kind);
  switch (kind) {
    case 'null_match':
      return (v) => v === null;
    case 'bool_match': {
      const expected = m.bool_match === true;
      return (v) => typeof v === 'boolean' && v === expected;
    }
    case 'present_match': {
      const expected = m.present_match === true;
      return (v) => (v !== undefined) === expected;
    }
    case 'string_match': {
      const f = compileStringMatcher(m.string_match, p, problems);
      return f ? (v) => typeof v === 'string' && f(v) : () => false;
    }
    case 'double_match': {
      const d = m.double_match!;
      if (d.exact !== undefined) {
        const exact = Number(d.exact);
        return (v) => typeof v === 'number' && v === exact;
      }
      if (d.range) {
        const start = Number(d.range.start ?? 0);
        const end = Number(d.range.end ?? 0);
        // DoubleRange is [start, end).
        return (v) => typeof v === 'number' && v >= start && v < end;
      }
      problems.add(p, 'one of range or exact is required');
      return () => false;
    }
    case 'list_match': {
      const one = compileValueMatcher(m.list_match!.one_of, fieldPath(p, 'one_of'), problems);
      return (v) => Array.isArray(v) && v.some(one);
    }
    case 'or_match': {
      const all = (m.or_match!.value_matchers ?? []).map((x, i) => compileValueMatcher(x, `${fieldPath(p, 'value_matchers')}[${i}]`, problems));
      if (all.length < 2) problems.add(fieldPath(p, 'value_matchers'), 'at least two value matchers are required');
      return (v) => all.some((f) => f(v));
    }
  }
}

/**
 * MetadataMatcher: `filter` names the filterState entry, `path[].key` walks into it; a missing key or a non-object on
 * the way is an unset value (which only present_match: false matches). `invert` negates the result.
 */
export function compileMetadataMatcher(m: MetadataMatcher, path: string, problems: ConfigProblems): (filterState: ReadonlyMap<string, unknown>) => boolean {
  rejectUnsupportedFields(m, new Set(['filter', 'path', 'value', 'invert']), path, problems);
  const filter = m.filter ?? '';
  if (!filter) problems.add(fieldPath(path, 'filter'), 'a filter name is required');
  const keys = (m.path ?? []).map((s, i) => {
    if (!s.key) problems.add(`${fieldPath(path, 'path')}[${i}].key`, 'a key is required');
    return s.key ?? '';
  });
  if (keys.length === 0) problems.add(fieldPath(path, 'path'), 'at least one path segment is required');
  const value = compileValueMatcher(m.value, fieldPath(path, 'value'), problems);
  const invert = m.invert === true;
  return (filterState) => {
    let v: unknown = filterState.get(filter);
    for (const key of keys) {
      if (!isStruct(v) || !Object.prototype.hasOwnProperty.call(v, key)) {
        v = undefined;
        break;
      }
      v = v[key];
    }
    return value(v) !== invert;
  };
}

/** FilterStateMatcher: the object stored under `key`, as a string (Envoy's serializeAsString()), against a StringMatcher. */
export function compileFilterStateMatcher(m: FilterStateMatcher, path: string, problems: ConfigProblems): (filterState: ReadonlyMap<string, unknown>) => boolean {
  rejectUnsupportedFields(m, new Set(['key', 'string_match']), path, problems);
  const key = m.key ?? '';
  if (!key) problems.add(fieldPath(path, 'key'), 'a key is required');
  const f: StringPredicate | undefined = compileStringMatcher(m.string_match, fieldPath(path, 'string_match'), problems);
  return (filterState) => {
    const v = filterState.get(key);
    if (typeof v === 'string') return f !== undefined && f(v);
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return f !== undefined && f(String(v));
    return false;
  };
}
