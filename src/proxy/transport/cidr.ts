// CIDR ranges (Envoy's CidrRange) compiled to bit masks for filter chain matching on source/destination address.
import { isIPv4, isIPv6 } from 'node:net';

export interface CompiledCidr {
  readonly text: string;
  readonly prefixLen: number;
  contains(address: string): boolean;
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + ((n >> 16n) & 0xffffn).toString(16) + ':' + (n & 0xffffn).toString(16);
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...(tail !== undefined ? Array(missing).fill('0') : []), ...tailParts];
  return parts.reduce((acc, p) => (acc << 16n) | BigInt(parseInt(p || '0', 16)), 0n);
}

/** Normalises `::ffff:1.2.3.4` to `1.2.3.4` so IPv4 ranges match IPv4-mapped peers. */
export function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** Returns undefined when `prefix` is not an IP address or the length is out of range. */
export function compileCidr(prefix: string, prefixLen: number): CompiledCidr | undefined {
  const v4 = isIPv4(prefix);
  if (!v4 && !isIPv6(prefix)) return undefined;
  const bits = v4 ? 32 : 128;
  if (prefixLen < 0 || prefixLen > bits) return undefined;
  const mask = prefixLen === 0 ? 0n : ((1n << BigInt(prefixLen)) - 1n) << BigInt(bits - prefixLen);
  const net = (v4 ? ipv4ToBigInt(prefix) : ipv6ToBigInt(prefix)) & mask;
  return {
    text: `${prefix}/${prefixLen}`,
    prefixLen,
    contains(address: string): boolean {
      const a = normaliseAddress(address);
      if (v4 ? !isIPv4(a) : !isIPv6(a)) return false;
      return ((v4 ? ipv4ToBigInt(a) : ipv6ToBigInt(a)) & mask) === net;
    },
  };
}
