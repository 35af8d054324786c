// typed_per_filter_config at each level, compiled by the owning filter's factory (through the caller's callback), FilterConfig wrappers unwrapped.
import { XdsValidationError, describeError } from '../../common/errors.js';
import { unpackAny, type Any } from '../../xds/codec.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems } from './config-problems.js';
import { FILTER_DISABLED } from './route-table.js';

export const FILTER_CONFIG_TYPE_URL = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';

/**
 * Compiles one filter's per-route config. Returns the compiled config, or undefined when no HTTP filter named
 * `filterName` takes per-route config; throws XdsValidationError (details relative to the config) when it is invalid.
 */
export type PerFilterConfigCallback = (filterName: string, any: Any) => unknown;

/** Compiles a typed_per_filter_config map at `path` into filter name → compiled config (or FILTER_DISABLED). */
export function compilePerFilterConfig(
  configs: Record<string, unknown> | undefined,
  path: string,
  callback: PerFilterConfigCallback | undefined,
  problems: ConfigProblems,
): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [name, value] of Object.entries(configs ?? {})) {
    const p = `${path}[${JSON.stringify(name)}]`;
    let any = value as Any;
    let optional = false;
    if (any.type_url === FILTER_CONFIG_TYPE_URL) {
      let wrapper: envoy.config.route.v3.FilterConfig;
      try {
        wrapper = unpackAny<envoy.config.route.v3.FilterConfig>(any);
      } catch (err) {
        problems.add(p, describeError(err));
        continue;
      }
      optional = wrapper.is_optional === true;
      if (wrapper.disabled === true) {
        out.set(name, FILTER_DISABLED);
        continue;
      }
      if (!wrapper.config) {
        problems.add(`${p}.config`, 'is required unless disabled is true');
        continue;
      }
      any = wrapper.config;
    }
    if (!callback) {
      if (!optional) problems.add(p, `no HTTP filter takes per-route config here (filter ${name})`);
      continue;
    }
    try {
      const compiled = callback(name, any);
      if (compiled === undefined) {
        if (!optional) problems.add(p, `no HTTP filter named ${name} takes per-route config`);
        continue;
      }
      out.set(name, compiled);
    } catch (err) {
      if (err instanceof XdsValidationError) for (const d of err.details) problems.add(p, d);
      else problems.add(p, describeError(err));
    }
  }
  return out;
}

/** Merges levels, least specific first: a more specific level's entry for a filter replaces the less specific one. */
export function mergePerFilterConfig(levels: ReadonlyArray<ReadonlyMap<string, unknown>>): ReadonlyMap<string, unknown> {
  const nonEmpty = levels.filter((l) => l.size > 0);
  if (nonEmpty.length === 0) return EMPTY;
  if (nonEmpty.length === 1) return nonEmpty[0]!;
  const out = new Map<string, unknown>();
  for (const level of nonEmpty) for (const [k, v] of level) out.set(k, v);
  return out;
}

const EMPTY: ReadonlyMap<string, unknown> = new Map();
