// Reads /etc/resolv.conf (resolv.conf(5)): the upstream nameservers and search domains the DNS proxy forwards with.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface ResolvConf {
  /** `host:port` strings; resolv.conf names hosts only, so the port is 53. */
  readonly servers: readonly { readonly host: string; readonly port: number }[];
  readonly search: readonly string[];
}

/** Parses resolv.conf text: `nameserver` lines (IPs; scoped IPv6 zone ids dropped), the last `search`/`domain` line wins. */
export function parseResolvConf(text: string): ResolvConf {
  const servers: { host: string; port: number }[] = [];
  let search: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (line === '') continue;
    const [keyword, ...args] = line.split(/\s+/);
    if (keyword === 'nameserver' && args[0]) {
      const host = args[0].split('%')[0]!;
      if (isIP(host) !== 0) servers.push({ host, port: 53 });
    } else if (keyword === 'search') {
      search = args.map((d) => d.replace(/\.$/, '').toLowerCase()).filter(Boolean);
    } else if (keyword === 'domain' && args[0]) {
      search = [args[0].replace(/\.$/, '').toLowerCase()];
    }
  }
  return { servers, search };
}

/** Reads and parses `path`; a missing or unreadable file gives no servers (every forwarded query then fails with SERVFAIL). */
export function readResolvConf(path = '/etc/resolv.conf'): ResolvConf {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return { servers: [], search: [] };
  }
}
