// Resources many proxies share, built once per snapshot under a key naming exactly the inputs they are built from (Istio's xds cache keys).
import type { PushContext } from '../../model/push-context.js';

const memo = new WeakMap<PushContext, Map<string, unknown>>();

/**
 * The value built by `build` for `key` in `push`, built at most once per snapshot. `key` must name every input of
 * `build` that is not the same for the whole snapshot (the service and DestinationRule objects by `identity`, the
 * proxy fields it reads): two proxies with the same key get the very same object, so a key missing an input hands
 * one proxy's config to another.
 */
export function sharedBuild<T>(push: PushContext, key: string, build: () => T): T {
  let perPush = memo.get(push);
  if (!perPush) memo.set(push, (perPush = new Map()));
  if (perPush.has(key)) return perPush.get(key) as T;
  const value = build();
  perPush.set(key, value);
  return value;
}

const ids = new WeakMap<object, number>();
let nextId = 0;

/** A number naming one object for as long as it lives (never reused), for cache keys over immutable snapshot objects; `-` for none. */
export function identity(value: object | undefined): string {
  if (value === undefined) return '-';
  let id = ids.get(value);
  if (id === undefined) ids.set(value, (id = ++nextId));
  return String(id);
}

/** `{a: 1, b: 2}` as a string independent of key order, for keys over label maps. */
export function labelsKey(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return '-';
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
