// google.protobuf.Struct ↔ plain JSON, for both planes: the control plane writes Istio's Struct-typed configs and metadata, the proxy reads them.
import type { google } from './generated/types.js';

/** google.protobuf.Struct → plain JSON (a Value with no kind set reads as null). */
export function structToJson(s: google.protobuf.Struct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: google.protobuf.Value): unknown {
  if (v.struct_value !== undefined) return structToJson(v.struct_value);
  if (v.list_value !== undefined) return (v.list_value.values ?? []).map(valueToJson);
  if (v.string_value !== undefined) return v.string_value;
  if (v.number_value !== undefined) return v.number_value;
  if (v.bool_value !== undefined) return v.bool_value;
  return null;
}

/** A protobuf Value from plain JSON-like data (strings, numbers, booleans, arrays, objects). */
export function toValue(value: unknown): google.protobuf.Value {
  if (value === null || value === undefined) return { null_value: 'NULL_VALUE' };
  if (typeof value === 'string') return { string_value: value };
  if (typeof value === 'number') return { number_value: value };
  if (typeof value === 'boolean') return { bool_value: value };
  if (Array.isArray(value)) return { list_value: { values: value.map(toValue) } };
  return { struct_value: toStruct(value as Record<string, unknown>) };
}

/** A protobuf Struct from a plain object; keys are sorted so equal inputs encode to equal bytes. */
export function toStruct(fields: Readonly<Record<string, unknown>>): google.protobuf.Struct {
  const out: Record<string, google.protobuf.Value> = {};
  for (const key of Object.keys(fields).sort()) out[key] = toValue(fields[key]);
  return { fields: out };
}
