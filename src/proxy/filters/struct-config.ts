// Reading a filter config Trellis has no codec for (Istio's stats, metadata exchange): it arrives as a
// google.protobuf.Struct found by the filter's name, or as plain JSON from a bootstrap or a test.
import type { google } from '../../xds/generated/types.js';
import { structToJson } from '../../xds/struct.js';

/** The config as plain JSON; each key not in `fields` adds a problem (the NACK lists them all). */
export function readStructConfig(config: unknown, fields: readonly string[], problems: string[]): Record<string, unknown> {
  const json = isStruct(config) ? structToJson(config) : ((config ?? {}) as Record<string, unknown>);
  for (const key of Object.keys(json)) if (!fields.includes(key)) problems.push(`${key}: unknown field (expected one of ${fields.join(', ')})`);
  return json;
}

/** A decoded Struct has exactly one key, `fields`; a plain config with a field named `fields` has no other meaning here. */
function isStruct(v: unknown): v is google.protobuf.Struct {
  return v !== null && typeof v === 'object' && 'fields' in v && Object.keys(v).length === 1;
}
