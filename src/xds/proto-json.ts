// Envoy's YAML/JSON form of a message (proto3 JSON mapping) → the decoded-object shape Trellis uses everywhere else.
//
// The shape is decodeMessage()'s: .proto field names, enums by name, 64-bit integers as numbers, bytes as
// Buffers, Any as { type_url, value } bytes, Duration/Timestamp as { seconds, nanos }, wrappers as { value },
// Struct as { fields: { k: Value } }. The walk follows the protobufjs reflection types, so every Envoy message
// in the descriptor is covered, and it collects every problem with its field path instead of stopping at one.
import protobuf from 'protobufjs';
import { describeError } from '../common/errors.js';
import { hasMessageType, messageType, packAny } from './codec.js';
import { messageNameOf } from './type-urls.js';

export interface ProtoJsonResult<T> {
  readonly value: T;
  /** Each problem as `field.path: what was expected`; empty when the input converted cleanly. */
  readonly problems: readonly string[];
}

/**
 * Converts proto3 JSON (as parsed from Envoy YAML or JSON) into the decoded-object shape of `messageName`.
 * Field names may be snake_case or lowerCamelCase. `path` prefixes every problem's field path.
 */
export function fromProtoJson<T extends object>(messageName: string, json: unknown, path = ''): ProtoJsonResult<T> {
  const problems: string[] = [];
  const value = convertMessage(messageType(messageName), json, path, problems);
  return { value: (value ?? {}) as T, problems };
}

const WRAPPERS: Readonly<Record<string, string>> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

type Obj = Record<string, unknown>;

function isPlainObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function nameOf(type: protobuf.Type): string {
  return type.fullName.startsWith('.') ? type.fullName.slice(1) : type.fullName;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function problem(problems: string[], path: string, expectation: string): void {
  problems.push(path === '' ? expectation : `${path}: ${expectation}`);
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  return String(value);
}

// Per message type: every accepted spelling of each field name.
const fieldIndexes = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function fieldIndex(type: protobuf.Type): Map<string, protobuf.Field> {
  let index = fieldIndexes.get(type);
  if (index) return index;
  index = new Map();
  for (const field of type.fieldsArray) {
    field.resolve();
    index.set(field.name, field);
    index.set(lowerCamel(field.name), field);
    if (field.jsonName) index.set(field.jsonName, field);
  }
  fieldIndexes.set(type, index);
  return index;
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function convertMessage(type: protobuf.Type, json: unknown, path: string, problems: string[]): unknown {
  const name = nameOf(type);
  const special = WELL_KNOWN[name];
  if (special) return special(type, json, path, problems);
  const wrapped = WRAPPERS[name];
  if (wrapped !== undefined) {
    if (isPlainObject(json) && 'value' in json && Object.keys(json).length === 1) json = json.value;
    const value = convertScalar(wrapped, json, path, problems);
    return value === undefined ? undefined : { value };
  }
  if (!isPlainObject(json)) {
    problem(problems, path, `expected an object (${name}), got ${describeValue(json)}`);
    return undefined;
  }
  const index = fieldIndex(type);
  const out: Obj = {};
  const seen = new Map<string, string>();
  const oneofSeen = new Map<string, string>();
  for (const [key, raw] of Object.entries(json)) {
    const fieldPath = join(path, key);
    const field = index.get(key);
    if (!field) {
      problem(problems, fieldPath, `unknown field of ${name}${suggestion(key, type)}`);
      continue;
    }
    const earlier = seen.get(field.name);
    if (earlier !== undefined) {
      problem(problems, fieldPath, `the same field as "${earlier}"`);
      continue;
    }
    seen.set(field.name, key);
    // proto3 JSON: null means "not set" (google.protobuf.Value, whose null is a value, is handled below).
    if (raw === null && !(field.resolvedType instanceof protobuf.Type && nameOf(field.resolvedType) === 'google.protobuf.Value')) continue;
    if (field.partOf && field.partOf.oneof.length > 1) {
      const other = oneofSeen.get(field.partOf.name);
      if (other !== undefined) {
        problem(problems, fieldPath, `only one of ${field.partOf.oneof.join(', ')} may be set (also "${other}")`);
        continue;
      }
      oneofSeen.set(field.partOf.name, key);
    }
    const value = convertField(field, raw, fieldPath, problems);
    if (value !== undefined) out[field.name] = value;
  }
  return out;
}

function convertField(field: protobuf.Field, raw: unknown, path: string, problems: string[]): unknown {
  if (field.map) {
    if (!isPlainObject(raw)) {
      problem(problems, path, `expected an object (a map), got ${describeValue(raw)}`);
      return undefined;
    }
    const keyType = (field as unknown as protobuf.MapField).keyType;
    const out: Obj = {};
    for (const [key, value] of Object.entries(raw)) {
      const entryPath = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? join(path, key) : `${path}["${key}"]`;
      if (keyType !== 'string' && convertScalar(keyType, keyType === 'bool' ? parseBoolKey(key) : key, entryPath, problems) === undefined) continue;
      const converted = convertSingle(field, value, entryPath, problems);
      if (converted !== undefined) out[key] = converted;
    }
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(raw)) {
      problem(problems, path, `expected a list, got ${describeValue(raw)}`);
      return undefined;
    }
    const out: unknown[] = [];
    raw.forEach((item, i) => {
      const converted = convertSingle(field, item, `${path}[${i}]`, problems);
      if (converted !== undefined) out.push(converted);
    });
    return out;
  }
  return convertSingle(field, raw, path, problems);
}

function parseBoolKey(key: string): unknown {
  return key === 'true' ? true : key === 'false' ? false : key;
}

function convertSingle(field: protobuf.Field, raw: unknown, path: string, problems: string[]): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return convertMessage(resolved, raw, path, problems);
  if (resolved instanceof protobuf.Enum) return convertEnum(resolved, raw, path, problems);
  return convertScalar(field.type, raw, path, problems);
}

function convertEnum(type: protobuf.Enum, raw: unknown, path: string, problems: string[]): unknown {
  if (nameOf(type as unknown as protobuf.Type) === 'google.protobuf.NullValue') return 'NULL_VALUE';
  if (typeof raw === 'string') {
    if (raw in type.values) return raw;
    problem(problems, path, `expected one of ${Object.keys(type.values).join(', ')}, got "${raw}"`);
    return undefined;
  }
  if (typeof raw === 'number' && Number.isInteger(raw)) {
    const known = type.valuesById[raw];
    return known ?? raw;
  }
  problem(problems, path, `expected one of ${Object.keys(type.values).join(', ')} (or its number), got ${describeValue(raw)}`);
  return undefined;
}

const INT_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sint64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sfixed64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  fixed64: [0, Number.MAX_SAFE_INTEGER],
};

function convertScalar(kind: string, raw: unknown, path: string, problems: string[]): unknown {
  switch (kind) {
    case 'string':
      if (typeof raw === 'string') return raw;
      problem(problems, path, `expected a string, got ${describeValue(raw)}`);
      return undefined;
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      problem(problems, path, `expected true or false, got ${describeValue(raw)}`);
      return undefined;
    case 'double':
    case 'float': {
      if (typeof raw === 'number') return raw;
      if (raw === 'NaN') return Number.NaN;
      if (raw === 'Infinity') return Number.POSITIVE_INFINITY;
      if (raw === '-Infinity') return Number.NEGATIVE_INFINITY;
      if (typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
      problem(problems, path, `expected a number, got ${describeValue(raw)}`);
      return undefined;
    }
    case 'bytes': {
      if (typeof raw === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(raw.replace(/\s+/g, ''))) {
        return Buffer.from(raw.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      }
      problem(problems, path, `expected base64-encoded bytes, got ${describeValue(raw)}`);
      return undefined;
    }
    default: {
      const range = INT_RANGES[kind];
      if (!range) {
        problem(problems, path, `unsupported field type ${kind}`);
        return undefined;
      }
      let value: number | undefined;
      if (typeof raw === 'number') value = raw;
      else if (typeof raw === 'string' && /^-?\d+(\.0*)?$|^-?\d+(\.\d+)?[eE]\+?\d+$/.test(raw.trim())) value = Number(raw.trim());
      if (value === undefined || !Number.isInteger(value)) {
        problem(problems, path, `expected an integer, got ${describeValue(raw)}`);
        return undefined;
      }
      if (value < range[0] || value > range[1]) {
        problem(problems, path, `expected an integer from ${range[0]} to ${range[1]} (${kind}), got ${value}`);
        return undefined;
      }
      return value;
    }
  }
}

// Durations: proto3 JSON's "1.5s"; Envoy's YAML uses nothing else. Objects { seconds, nanos } are accepted too.
const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
// RFC 3339 with an optional fraction and a Z or ±hh:mm offset.
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

function secondsAndNanos(type: protobuf.Type, json: unknown, path: string, problems: string[]): unknown {
  if (isPlainObject(json)) {
    const seconds = json.seconds === undefined ? 0 : convertScalar('int64', json.seconds, join(path, 'seconds'), problems);
    const nanos = json.nanos === undefined ? 0 : convertScalar('int32', json.nanos, join(path, 'nanos'), problems);
    for (const key of Object.keys(json)) if (key !== 'seconds' && key !== 'nanos') problem(problems, join(path, key), `unknown field of ${nameOf(type)}`);
    if (typeof seconds !== 'number' || typeof nanos !== 'number') return undefined;
    return { seconds, nanos };
  }
  return undefined;
}

function convertDuration(type: protobuf.Type, json: unknown, path: string, problems: string[]): unknown {
  if (typeof json === 'string') {
    const match = DURATION.exec(json.trim());
    if (match) {
      const sign = match[1] ? -1 : 1;
      const seconds = Number(match[2]);
      const nanos = match[3] ? Number(match[3].padEnd(9, '0')) : 0;
      if (seconds <= 315_576_000_000) return { seconds: sign * seconds, nanos: sign * nanos };
    }
  } else if (isPlainObject(json)) {
    return secondsAndNanos(type, json, path, problems);
  }
  problem(problems, path, `expected a duration like "5s" or "0.25s", got ${describeValue(json)}`);
  return undefined;
}

function convertTimestamp(type: protobuf.Type, json: unknown, path: string, problems: string[]): unknown {
  if (typeof json === 'string') {
    const match = TIMESTAMP.exec(json.trim());
    if (match) {
      const [, y, mo, d, h, mi, s, frac, zone] = match;
      const millis = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
      let offsetSeconds = 0;
      if (zone && zone !== 'Z' && zone !== 'z') {
        const sign = zone.startsWith('-') ? -1 : 1;
        offsetSeconds = sign * (Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60);
      }
      if (!Number.isNaN(millis)) return { seconds: millis / 1000 - offsetSeconds, nanos: frac ? Number(frac.padEnd(9, '0')) : 0 };
    }
  } else if (isPlainObject(json)) {
    return secondsAndNanos(type, json, path, problems);
  }
  problem(problems, path, `expected an RFC 3339 timestamp like "2024-01-31T12:00:00Z", got ${describeValue(json)}`);
  return undefined;
}

function convertValue(json: unknown, path: string, problems: string[]): unknown {
  if (json === null) return { null_value: 'NULL_VALUE' };
  if (typeof json === 'number') return { number_value: json };
  if (typeof json === 'string') return { string_value: json };
  if (typeof json === 'boolean') return { bool_value: json };
  if (Array.isArray(json)) return { list_value: convertListValue(json, path, problems) };
  if (isPlainObject(json)) return { struct_value: convertStruct(json, path, problems) };
  problem(problems, path, `expected a JSON value, got ${describeValue(json)}`);
  return undefined;
}

function convertStruct(json: unknown, path: string, problems: string[]): unknown {
  if (!isPlainObject(json)) {
    problem(problems, path, `expected an object, got ${describeValue(json)}`);
    return undefined;
  }
  const fields: Obj = {};
  for (const [key, value] of Object.entries(json)) {
    const converted = convertValue(value, join(path, key), problems);
    if (converted !== undefined) fields[key] = converted;
  }
  return { fields };
}

function convertListValue(json: unknown, path: string, problems: string[]): unknown {
  if (!Array.isArray(json)) {
    problem(problems, path, `expected a list, got ${describeValue(json)}`);
    return undefined;
  }
  const values: unknown[] = [];
  json.forEach((item, i) => {
    const converted = convertValue(item, `${path}[${i}]`, problems);
    if (converted !== undefined) values.push(converted);
  });
  return { values };
}

function convertAny(_type: protobuf.Type, json: unknown, path: string, problems: string[]): unknown {
  if (!isPlainObject(json)) {
    problem(problems, path, `expected an object with "@type", got ${describeValue(json)}`);
    return undefined;
  }
  const typeUrl = json['@type'];
  if (typeof typeUrl !== 'string' || typeUrl === '') {
    problem(problems, join(path, '@type'), 'expected the type URL of the packed message, like "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"');
    return undefined;
  }
  const messageName = messageNameOf(typeUrl);
  if (!hasMessageType(messageName)) {
    problem(problems, join(path, '@type'), `unknown type "${typeUrl}" (Trellis has no codec for ${messageName})`);
    return undefined;
  }
  const inner = messageType(messageName);
  // Well-known types inside an Any carry their JSON form under "value" (proto3 JSON mapping).
  const innerJson = WELL_KNOWN[messageName] || WRAPPERS[messageName] !== undefined ? json.value : withoutTypeKey(json);
  const before = problems.length;
  const value = convertMessage(inner, innerJson ?? {}, path, problems);
  if (problems.length > before || value === undefined) return undefined;
  try {
    return packAny(messageName, value as object);
  } catch (err) {
    problem(problems, path, `cannot encode ${messageName}: ${describeError(err)}`);
    return undefined;
  }
}

function withoutTypeKey(json: Obj): Obj {
  const rest: Obj = {};
  for (const [key, value] of Object.entries(json)) if (key !== '@type') rest[key] = value;
  return rest;
}

function convertFieldMask(_type: protobuf.Type, json: unknown, path: string, problems: string[]): unknown {
  if (typeof json === 'string') return { paths: json === '' ? [] : json.split(',').map((p) => p.trim().replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)) };
  problem(problems, path, `expected a comma-separated field mask string, got ${describeValue(json)}`);
  return undefined;
}

type Converter = (type: protobuf.Type, json: unknown, path: string, problems: string[]) => unknown;

const WELL_KNOWN: Readonly<Record<string, Converter>> = {
  'google.protobuf.Duration': convertDuration,
  'google.protobuf.Timestamp': convertTimestamp,
  'google.protobuf.Struct': (_t, json, path, problems) => convertStruct(json, path, problems),
  'google.protobuf.Value': (_t, json, path, problems) => convertValue(json, path, problems),
  'google.protobuf.ListValue': (_t, json, path, problems) => convertListValue(json, path, problems),
  'google.protobuf.Any': convertAny,
  'google.protobuf.FieldMask': convertFieldMask,
};

/** ` (did you mean "x"?)` for a close field name, else ''. */
function suggestion(key: string, type: protobuf.Type): string {
  const wanted = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(wanted.length / 4)) + 1;
  for (const field of type.fieldsArray) {
    const distance = editDistance(wanted, field.name);
    if (distance < bestDistance) {
      best = field.name;
      bestDistance = distance;
    }
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 4) return 99;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The reverse: a decoded object → Envoy's JSON form (what /config_dump prints): .proto field names, Any with
 * "@type" and its fields, Duration "1.5s", Timestamp RFC 3339, wrappers and Struct as plain JSON, 64-bit
 * integers as strings, bytes as base64. Unknown Any types stay { "@type", "value": base64 }.
 */
export function toProtoJson(messageName: string, value: object): Record<string, unknown> {
  return messageToJson(messageType(messageName), value as Obj) as Record<string, unknown>;
}

function messageToJson(type: protobuf.Type, value: unknown): unknown {
  const name = nameOf(type);
  const obj = (isPlainObject(value) ? value : {}) as Obj;
  switch (name) {
    case 'google.protobuf.Duration':
      return formatDuration(Number(obj.seconds ?? 0), Number(obj.nanos ?? 0));
    case 'google.protobuf.Timestamp':
      return formatTimestamp(Number(obj.seconds ?? 0), Number(obj.nanos ?? 0));
    case 'google.protobuf.Struct':
      return structToJson(obj);
    case 'google.protobuf.Value':
      return valueToJson(obj);
    case 'google.protobuf.ListValue':
      return ((obj.values as Obj[] | undefined) ?? []).map(valueToJson);
    case 'google.protobuf.Any':
      return anyToJson(obj);
    case 'google.protobuf.FieldMask':
      return ((obj.paths as string[] | undefined) ?? []).map(lowerCamel).join(',');
  }
  const wrapped = WRAPPERS[name];
  if (wrapped !== undefined) return scalarToJson(wrapped, obj.value ?? defaultScalar(wrapped));
  const out: Obj = {};
  for (const field of type.fieldsArray) {
    field.resolve();
    const raw = obj[field.name];
    if (raw === undefined || raw === null) continue;
    if (field.map) {
      const entries: Obj = {};
      for (const [key, item] of Object.entries(raw as Obj)) entries[key] = singleToJson(field, item);
      out[field.name] = entries;
    } else if (field.repeated) {
      out[field.name] = (raw as unknown[]).map((item) => singleToJson(field, item));
    } else {
      out[field.name] = singleToJson(field, raw);
    }
  }
  return out;
}

function singleToJson(field: protobuf.Field, value: unknown): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageToJson(resolved, value);
  if (resolved instanceof protobuf.Enum) return typeof value === 'number' ? (resolved.valuesById[value] ?? value) : value;
  return scalarToJson(field.type, value);
}

function defaultScalar(kind: string): unknown {
  return kind === 'bool' ? false : kind === 'string' ? '' : kind === 'bytes' ? new Uint8Array() : 0;
}

function scalarToJson(kind: string, value: unknown): unknown {
  if (kind === 'bytes') return Buffer.from(value as Uint8Array).toString('base64');
  if (kind.endsWith('64')) return String(value);
  if ((kind === 'double' || kind === 'float') && typeof value === 'number' && !Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  return value;
}

function structToJson(obj: Obj): Obj {
  const out: Obj = {};
  for (const [key, item] of Object.entries((obj.fields as Obj | undefined) ?? {})) out[key] = valueToJson(item as Obj);
  return out;
}

function valueToJson(obj: Obj): unknown {
  if (obj.struct_value !== undefined) return structToJson(obj.struct_value as Obj);
  if (obj.list_value !== undefined) return (((obj.list_value as Obj).values as Obj[] | undefined) ?? []).map(valueToJson);
  if (obj.string_value !== undefined) return obj.string_value;
  if (obj.number_value !== undefined) return obj.number_value;
  if (obj.bool_value !== undefined) return obj.bool_value;
  return null;
}

function anyToJson(obj: Obj): unknown {
  const typeUrl = typeof obj.type_url === 'string' ? obj.type_url : '';
  const bytes = obj.value instanceof Uint8Array ? obj.value : new Uint8Array();
  const messageName = messageNameOf(typeUrl);
  if (!typeUrl || !hasMessageType(messageName)) return { '@type': typeUrl, value: Buffer.from(bytes).toString('base64') };
  const inner = messageType(messageName);
  const decoded = inner.toObject(inner.decode(bytes), { enums: String, longs: Number });
  const json = messageToJson(inner, decoded);
  if (WELL_KNOWN[messageName] || WRAPPERS[messageName] !== undefined) return { '@type': typeUrl, value: json };
  return { '@type': typeUrl, ...(json as Obj) };
}

function formatDuration(seconds: number, nanos: number): string {
  const negative = seconds < 0 || nanos < 0;
  const s = Math.abs(seconds);
  const n = Math.abs(nanos);
  let fraction = '';
  if (n !== 0) fraction = `.${String(n).padStart(9, '0').replace(/(0{3})+$/, '')}`;
  return `${negative ? '-' : ''}${s}${fraction}s`;
}

function formatTimestamp(seconds: number, nanos: number): string {
  const iso = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  const fraction = nanos !== 0 ? `.${String(nanos).padStart(9, '0').replace(/(0{3})+$/, '')}` : '';
  return `${iso}${fraction}Z`;
}
