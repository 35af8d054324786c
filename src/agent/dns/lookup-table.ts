// The DNS proxy's view of the name table: every name it answers for (with the search-domain forms Istio adds) and its records.
import { isIP } from 'node:net';
import type { istio } from '../../xds/generated/types.js';
import { TYPE_A, TYPE_AAAA, TYPE_CNAME, type AnswerRecord } from './dns-message.js';

type NameInfo = istio.networking.nds.v1.NameTable.NameInfo;

/** Istio answers mesh hosts with a short TTL so a changed VIP is picked up soon by clients that honour it. */
export const MESH_TTL_SECONDS = 30;

export interface LookupTableOptions {
  /** The proxy's namespace: short names (`reviews`) resolve for services of this namespace only. */
  readonly proxyNamespace: string;
  /** The cluster domain (`cluster.local`). */
  readonly clusterDomain: string;
  /** resolv.conf search domains; the first one gets CNAME short-cuts (Istio's expansion of `host.<search[0]>`). */
  readonly searchDomains: readonly string[];
}

export interface LookupResult {
  /** The name is a mesh name: the proxy answers it (possibly with no records of the asked type: NOERROR, no data). */
  readonly found: boolean;
  readonly answers: readonly AnswerRecord[];
}

const NOT_FOUND: LookupResult = { found: false, answers: [] };

/**
 * Built once per name table (Istio's LookupTable): `name4`/`name6` by lower-case name without trailing dot, `cname`
 * for `<host>.<first search domain>` pointing at the host, and wildcard hosts (`*.example.com`) answering every name
 * below them.
 */
export class LookupTable {
  private readonly name4 = new Map<string, string[]>();
  private readonly name6 = new Map<string, string[]>();
  private readonly cname = new Map<string, string>();
  readonly hostCount: number;

  constructor(table: Readonly<Record<string, NameInfo>>, options: LookupTableOptions) {
    let hosts = 0;
    const search = options.searchDomains[0]?.toLowerCase().replace(/\.$/, '');
    for (const [hostname, info] of Object.entries(table)) {
      const ips = (info.ips ?? []).filter((ip) => isIP(ip) !== 0);
      const v4 = ips.filter((ip) => isIP(ip) === 4);
      const v6 = ips.filter((ip) => isIP(ip) === 6);
      if (v4.length === 0 && v6.length === 0) continue; // malformed IPs only: nothing to answer with
      hosts++;
      const names = this.altHosts(hostname.toLowerCase().replace(/\.$/, ''), info, options);
      for (const name of names) {
        if (v4.length > 0) this.name4.set(name, v4);
        if (v6.length > 0) this.name6.set(name, v6);
        // The application's resolver tries `<name>.<search[0]>` first; a CNAME to the name ends its search in two queries.
        if (search && !name.startsWith('*.')) {
          const expanded = `${name}.${search}`;
          if (!names.has(expanded) && !this.name4.has(expanded) && !this.name6.has(expanded)) this.cname.set(expanded, name);
        }
      }
    }
    this.hostCount = hosts;
  }

  /** Istio's generateAltHosts: the host, and for `name.namespace.svc.<domain>` hosts `name.namespace`, `name.namespace.svc` and (same namespace) `name`. */
  private altHosts(hostname: string, info: NameInfo, options: LookupTableOptions): Set<string> {
    const out = new Set([hostname]);
    const { shortname, namespace } = info;
    if (!shortname || !namespace || !hostname.endsWith(`.${options.clusterDomain}`)) return out;
    out.add(`${shortname}.${namespace}`);
    out.add(`${shortname}.${namespace}.svc`);
    if (namespace === options.proxyNamespace) out.add(shortname);
    return out;
  }

  /** Answers for `name` (lower-case, no trailing dot) and `type`; `found: false` sends the query upstream. */
  lookup(name: string, type: number): LookupResult {
    const alias = this.cname.get(name);
    if (type === TYPE_CNAME && alias !== undefined) return { found: true, answers: [{ name, type: TYPE_CNAME, ttl: MESH_TTL_SECONDS, data: alias }] };
    if (type !== TYPE_A && type !== TYPE_AAAA) return NOT_FOUND; // other types of mesh names go upstream, as in Istio
    let target = name;
    const answers: AnswerRecord[] = [];
    if (alias !== undefined) {
      answers.push({ name, type: TYPE_CNAME, ttl: MESH_TTL_SECONDS, data: alias });
      target = alias;
    }
    let owner = target;
    if (!this.name4.has(target) && !this.name6.has(target)) {
      const wildcard = this.wildcardFor(target);
      if (wildcard === undefined) return NOT_FOUND;
      owner = wildcard;
    }
    const ips = (type === TYPE_A ? this.name4 : this.name6).get(owner) ?? [];
    for (const ip of ips) answers.push({ name: target, type, ttl: MESH_TTL_SECONDS, data: ip });
    return { found: true, answers: ips.length > 0 ? answers : [] };
  }

  /** Whether the table has `name` in any form (host, alternate name, search-domain alias, under a wildcard). */
  has(name: string): boolean {
    return this.cname.has(name) || this.name4.has(name) || this.name6.has(name) || this.wildcardFor(name) !== undefined;
  }

  /** The closest `*.suffix` entry covering `name`, if any. */
  private wildcardFor(name: string): string | undefined {
    let dot = name.indexOf('.');
    while (dot >= 0) {
      const candidate = `*${name.slice(dot)}`;
      if (this.name4.has(candidate) || this.name6.has(candidate)) return candidate;
      dot = name.indexOf('.', dot + 1);
    }
    return undefined;
  }
}
