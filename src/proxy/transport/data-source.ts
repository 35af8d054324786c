// Reads certificate material from an Envoy DataSource (filename, inline_bytes, inline_string, environment_variable), shared by downstream and upstream TLS.
import { readFileSync } from 'node:fs';
import type { envoy } from '../../xds/generated/types.js';

type DataSource = envoy.config.core.v3.DataSource;

/**
 * Returns the bytes, or undefined after pushing a problem under `path`. `acceptEmptyInlineString` keeps the two callers'
 * existing behaviour: downstream treats `inline_string: ''` as empty data, upstream treats it as unset.
 */
export function readDataSource(
  source: DataSource | undefined,
  path: string,
  problems: string[],
  acceptEmptyInlineString: boolean,
): Buffer | undefined {
  if (!source) return undefined;
  try {
    if (source.filename) return readFileSync(source.filename);
    if (source.inline_bytes && source.inline_bytes.length > 0) return Buffer.from(source.inline_bytes);
    if (acceptEmptyInlineString ? source.inline_string !== undefined : source.inline_string) return Buffer.from(source.inline_string as string);
    if (source.environment_variable) {
      const v = process.env[source.environment_variable];
      if (v !== undefined) return Buffer.from(v);
      problems.push(`${path}.environment_variable: ${source.environment_variable} is not set`);
      return undefined;
    }
  } catch (err) {
    problems.push(`${path}.filename: cannot read ${source.filename}: ${(err as Error).message}`);
    return undefined;
  }
  problems.push(`${path}: expected filename, inline_bytes, inline_string or environment_variable`);
  return undefined;
}
