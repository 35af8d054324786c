// Virtual hosts by :authority in Envoy's search order: exact domain, then `*.suffix` (longest first), then `prefix.*` (longest first), then `*`.
import { ConfigProblems } from './config-problems.js';
import { asciiLower } from './string-matcher.js';

/** Wildcard domains of one length, keyed by their fixed part (lower-case). */
interface WildcardBucket<T> {
  readonly length: number;
  readonly byText: Map<string, T>;
}

/** Envoy's HeaderUtility::getPortStart: the ':' before a port, or -1 (IPv6 literals are bracketed). */
export function portStart(host: string): number {
  const colon = host.lastIndexOf(':');
  if (colon < 0) return -1;
  const v6End = host.lastIndexOf(']');
  return v6End < 0 || v6End < colon ? colon : -1;
}

export class VirtualHostIndex<T> {
  private readonly exact = new Map<string, T>();
  private readonly suffixes: WildcardBucket<T>[] = [];
  private readonly prefixes: WildcardBucket<T>[] = [];
  private defaultHost: T | undefined;
  private readonly seen = new Set<string>();

  /** `ignorePort`: RouteConfiguration.ignore_port_in_host_matching. */
  constructor(private readonly ignorePort: boolean) {}

  /** Adds one domain of a virtual host; duplicates across the configuration are refused like Envoy does. */
  add(domain: string, host: T, path: string, routeConfigName: string, problems: ConfigProblems): void {
    const lower = asciiLower(domain);
    if (lower === '') {
      problems.add(path, 'must not be empty');
      return;
    }
    if (this.seen.has(lower)) {
      problems.add(
        path,
        lower === '*'
          ? `only a single wildcard domain is permitted in route ${routeConfigName}`
          : `only unique values for domains are permitted; duplicate entry of domain ${lower} in route ${routeConfigName}`,
      );
      return;
    }
    this.seen.add(lower);
    if (lower === '*') this.defaultHost = host;
    else if (lower.startsWith('*')) insert(this.suffixes, lower.slice(1), host);
    else if (lower.endsWith('*')) insert(this.prefixes, lower.slice(0, -1), host);
    else this.exact.set(lower, host);
  }

  /** The virtual host for an :authority value; undefined when none matches (404 NR). */
  find(authority: string | undefined): T | undefined {
    // Envoy's fast path: only a `*` host, and the request need not even have an authority.
    if (this.exact.size === 0 && this.suffixes.length === 0 && this.prefixes.length === 0) return this.defaultHost;
    if (authority === undefined) return undefined;
    let host = authority;
    if (this.ignorePort) {
      const colon = portStart(host);
      if (colon >= 0) host = host.slice(0, colon);
    }
    host = asciiLowerFast(host);
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    // `*.foo.com` must not match `.foo.com`: the wildcard stands for at least one character.
    for (const bucket of this.suffixes) {
      if (bucket.length >= host.length) continue;
      const found = bucket.byText.get(host.slice(host.length - bucket.length));
      if (found !== undefined) return found;
    }
    for (const bucket of this.prefixes) {
      if (bucket.length >= host.length) continue;
      const found = bucket.byText.get(host.slice(0, bucket.length));
      if (found !== undefined) return found;
    }
    return this.defaultHost;
  }
}

function insert<T>(buckets: WildcardBucket<T>[], text: string, host: T): void {
  let bucket = buckets.find((b) => b.length === text.length);
  if (!bucket) {
    bucket = { length: text.length, byText: new Map() };
    buckets.push(bucket);
    // Longest first.
    buckets.sort((a, b) => b.length - a.length);
  }
  bucket.byText.set(text, host);
}

/** Lower-cases ASCII only when needed, so an already lower-case authority is not copied. */
function asciiLowerFast(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 65 && c <= 90) return asciiLower(value);
  }
  return value;
}
