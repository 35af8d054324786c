// The settings of `trellis iptables` (istio-iptables' flags) parsed and validated into one immutable CaptureConfig.
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigValidationError } from '../../common/errors.js';
import { parseResolvConf } from '../dns/resolv-conf.js';

/** An IPv4 CIDR as iptables prints it: the network address (host bits cleared) and the prefix length. */
export interface Ipv4Cidr {
  readonly network: string;
  readonly prefixLen: number;
}

export interface CaptureConfig {
  /** -p: where outbound TCP is redirected (virtualOutbound). */
  readonly proxyPort: number;
  /** -z: where inbound TCP is redirected (virtualInbound). */
  readonly inboundCapturePort: number;
  /** -e: the HBONE tunnel port, never captured inbound (Istio returns it first). */
  readonly inboundTunnelPort: number;
  /** -u / -g: the proxy's own users and groups, whose outbound traffic is never captured (names or numbers). */
  readonly proxyUids: readonly string[];
  readonly proxyGids: readonly string[];
  /** -b: inbound ports to capture; '*' for all, [] for none. */
  readonly inboundPortsInclude: '*' | readonly number[];
  /** -d: inbound ports never captured (only with -b '*'). */
  readonly inboundPortsExclude: readonly number[];
  /** -i: outbound destinations to capture; '*' for all, [] for none. */
  readonly outboundIpRangesInclude: '*' | readonly Ipv4Cidr[];
  /** -x: outbound destinations never captured. */
  readonly outboundIpRangesExclude: readonly Ipv4Cidr[];
  /** -q: outbound ports always captured. */
  readonly outboundPortsInclude: readonly number[];
  /** -o: outbound ports never captured. */
  readonly outboundPortsExclude: readonly number[];
  /** -c: interfaces whose traffic is never captured. */
  readonly excludeInterfaces: readonly string[];
  /** --redirect-dns: DNS to the agent's 15053; to the resolv.conf name servers, or every port-53 packet with captureAllDns. */
  readonly redirectDns: boolean;
  readonly captureAllDns: boolean;
  readonly dnsServersV4: readonly string[];
  /** The loopback range the proxy's own inbound hairpin excludes (Istio's HostIPv4LoopbackCidr). */
  readonly hostIpv4LoopbackCidr: string;
}

/** The flags as given on the command line: strings, as istio-iptables takes them. */
export interface CaptureFlags {
  readonly proxyPort: string;
  readonly inboundCapturePort: string;
  readonly inboundTunnelPort: string;
  readonly proxyUid: string;
  readonly proxyGid?: string;
  readonly inboundInterceptionMode: string;
  readonly inboundPorts: string;
  readonly localExcludePorts: string;
  readonly serviceCidr: string;
  readonly serviceExcludeCidr: string;
  readonly outboundPorts: string;
  readonly localOutboundPortsExclude: string;
  readonly excludeInterfaces: string;
  readonly redirectDns: boolean;
  readonly captureAllDns: boolean;
  /** The resolv.conf text the DNS servers come from (read by the caller), when redirectDns without captureAllDns. */
  readonly resolvConf?: string;
}

/**
 * Defaults of `trellis iptables`: those the sidecar injector passes to istio-iptables (capture every inbound port but
 * the agent's 15090/15021/15020, every outbound destination), not istio-iptables' own empty defaults.
 */
export const CAPTURE_DEFAULTS = {
  proxyPort: '15001',
  inboundCapturePort: '15006',
  inboundTunnelPort: '15008',
  proxyUid: '1337',
  inboundInterceptionMode: 'REDIRECT',
  inboundPorts: '*',
  localExcludePorts: '15090,15021,15020',
  serviceCidr: '*',
  serviceExcludeCidr: '',
  outboundPorts: '',
  localOutboundPortsExclude: '',
  excludeInterfaces: '',
} as const;

/** Istio's split: comma separated, blanks dropped (a trailing comma is allowed). */
function split(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function parsePort(value: string, flag: string, problems: string[]): number | undefined {
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    problems.push(`${flag}: ${JSON.stringify(value)} is not a port number (0-65535)`);
    return undefined;
  }
  return Number(value);
}

function parsePorts(value: string, flag: string, problems: string[]): number[] {
  return split(value).flatMap((p) => {
    const n = parsePort(p, flag, problems);
    return n === undefined ? [] : [n];
  });
}

function parseSinglePort(value: string, flag: string, problems: string[]): number {
  const n = parsePort(value.trim(), flag, problems);
  if (n === 0) problems.push(`${flag}: port 0 cannot be a redirect target`);
  return n ?? 0;
}

/** `10.1.2.3/8` -> 10.0.0.0/8 (as iptables prints it); a bare address is a /32. */
export function parseIpv4Cidr(text: string): Ipv4Cidr | string {
  const [ip = '', len, ...rest] = text.split('/');
  if (rest.length > 0) return `${JSON.stringify(text)} is not a CIDR (address/prefix-length)`;
  if (isIPv6(ip)) return `${JSON.stringify(text)} is an IPv6 range: trellis iptables writes IPv4 rules only (ip6tables is not supported yet)`;
  if (!isIPv4(ip)) return `${JSON.stringify(text)} is not an IPv4 address or CIDR`;
  if (len !== undefined && !/^\d+$/.test(len)) return `${JSON.stringify(text)}: the prefix length must be a number 0-32`;
  const prefixLen = len === undefined ? 32 : Number(len);
  if (prefixLen > 32) return `${JSON.stringify(text)}: the prefix length must be 0-32`;
  const value = ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  const masked = (value & mask) >>> 0;
  return { network: [24, 16, 8, 0].map((s) => (masked >>> s) & 255).join('.'), prefixLen };
}

function parseCidrs(value: string, flag: string, problems: string[]): Ipv4Cidr[] {
  return split(value).flatMap((c) => {
    const parsed = parseIpv4Cidr(c);
    if (typeof parsed === 'string') {
      problems.push(`${flag}: ${parsed}`);
      return [];
    }
    return [parsed];
  });
}

/** Owner names or ids for `-m owner --uid-owner`: what iptables accepts, nothing that could split the rule. */
function parseOwners(value: string, flag: string, problems: string[]): string[] {
  const owners = split(value);
  if (owners.length === 0) problems.push(`${flag}: at least one user or group is required (the proxy's own traffic must not be captured)`);
  for (const o of owners) if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(o)) problems.push(`${flag}: ${JSON.stringify(o)} is not a user or group name or id`);
  return owners;
}

/** `nameserver` lines of resolv.conf, IPv4 only (the rules are IPv4). */
export function resolvConfServersV4(text: string): string[] {
  return parseResolvConf(text).servers.map((s) => s.host).filter((host) => isIPv4(host));
}

/** Validates every flag and returns the config, or throws ConfigValidationError listing every problem with its flag. */
export function parseCaptureFlags(flags: CaptureFlags): CaptureConfig {
  const problems: string[] = [];
  const mode = flags.inboundInterceptionMode.trim().toUpperCase();
  if (mode === 'TPROXY') problems.push('-m TPROXY: not supported yet (it needs policy routing and transparent sockets in the proxy); use -m REDIRECT');
  else if (mode !== 'REDIRECT') problems.push(`-m: ${JSON.stringify(flags.inboundInterceptionMode)} is not an interception mode (REDIRECT or TPROXY)`);
  const proxyPort = parseSinglePort(flags.proxyPort, '-p', problems);
  const inboundCapturePort = parseSinglePort(flags.inboundCapturePort, '-z', problems);
  const inboundTunnelPort = parseSinglePort(flags.inboundTunnelPort, '-e', problems);
  const proxyUids = parseOwners(flags.proxyUid, '-u', problems);
  // istio-iptables: the GID defaults to the UID.
  const proxyGids = parseOwners(flags.proxyGid ?? flags.proxyUid, '-g', problems);
  const inboundPortsInclude = flags.inboundPorts.trim() === '*' ? '*' : parsePorts(flags.inboundPorts, '-b', problems);
  const inboundPortsExclude = parsePorts(flags.localExcludePorts, '-d', problems);
  const outboundIpRangesInclude = flags.serviceCidr.trim() === '*' ? '*' : parseCidrs(flags.serviceCidr, '-i', problems);
  if (split(flags.serviceExcludeCidr).includes('*')) problems.push('-x: "*" would exclude every destination; use -i "" to capture no outbound traffic');
  const outboundIpRangesExclude = parseCidrs(flags.serviceExcludeCidr.split(',').filter((c) => c.trim() !== '*').join(','), '-x', problems);
  const outboundPortsInclude = parsePorts(flags.outboundPorts, '-q', problems);
  const outboundPortsExclude = parsePorts(flags.localOutboundPortsExclude, '-o', problems);
  const excludeInterfaces = split(flags.excludeInterfaces);
  for (const nic of excludeInterfaces) if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(nic)) problems.push(`-c: ${JSON.stringify(nic)} is not an interface name`);
  if (flags.captureAllDns && !flags.redirectDns) problems.push('--capture-all-dns: only applies with --redirect-dns');
  const dnsServersV4 = flags.redirectDns && !flags.captureAllDns ? resolvConfServersV4(flags.resolvConf ?? '') : [];
  if (problems.length > 0) throw new ConfigValidationError(problems);
  return {
    proxyPort,
    inboundCapturePort,
    inboundTunnelPort,
    proxyUids,
    proxyGids,
    inboundPortsInclude,
    inboundPortsExclude,
    outboundIpRangesInclude,
    outboundIpRangesExclude,
    outboundPortsInclude,
    outboundPortsExclude,
    excludeInterfaces,
    redirectDns: flags.redirectDns,
    captureAllDns: flags.captureAllDns,
    dnsServersV4,
    hostIpv4LoopbackCidr: '127.0.0.1/32',
  };
}
