// Filter chain selection as Envoy does it: criteria in a fixed order, at each the most specific match wins, no backtracking.
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import { compileCidr, normaliseAddress, type CompiledCidr } from '../transport/cidr.js';

type FilterChainMatch = envoy.config.listener.v3.FilterChainMatch;

/** What is known about a connection when its filter chain is chosen. */
export interface ConnectionMetadata {
  readonly destinationPort: number;
  readonly destinationAddress: string;
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly serverName?: string;
  /** `tls` or `raw_buffer`. */
  readonly transportProtocol: string;
  readonly applicationProtocols: readonly string[];
}

export interface CompiledChainMatch {
  readonly destinationPort?: number;
  readonly prefixRanges: readonly CompiledCidr[];
  readonly directSourcePrefixRanges: readonly CompiledCidr[];
  readonly sourceType: 'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL';
  readonly sourcePrefixRanges: readonly CompiledCidr[];
  readonly sourcePorts: ReadonlySet<number>;
  readonly serverNames: readonly string[];
  readonly transportProtocol?: string;
  readonly applicationProtocols: readonly string[];
}

function compileRanges(ranges: readonly envoy.config.core.v3.CidrRange[] | undefined, path: string, problems: string[]): CompiledCidr[] {
  return (ranges ?? []).flatMap((r, i) => {
    const c = compileCidr(r.address_prefix ?? '', r.prefix_len?.value ?? 0);
    if (!c) {
      problems.push(`${path}[${i}]: invalid CIDR ${r.address_prefix ?? ''}/${r.prefix_len?.value ?? 0}`);
      return [];
    }
    return [c];
  });
}

export function compileChainMatch(m: FilterChainMatch | undefined, path: string): CompiledChainMatch {
  const problems: string[] = [];
  const match = m ?? {};
  if (match.address_suffix || match.suffix_len) problems.push(`${path}.address_suffix: not supported (Envoy does not implement it either)`);
  const sourceType = String(match.source_type ?? 'ANY');
  if (sourceType !== 'ANY' && sourceType !== 'SAME_IP_OR_LOOPBACK' && sourceType !== 'EXTERNAL') problems.push(`${path}.source_type: unknown ${sourceType}`);
  for (const [i, n] of (match.server_names ?? []).entries()) {
    if (n.includes('*') && !(n.startsWith('*.') && !n.slice(1).includes('*'))) problems.push(`${path}.server_names[${i}]: only a leading "*." wildcard is allowed, got ${n}`);
  }
  const compiled: CompiledChainMatch = {
    ...(match.destination_port?.value !== undefined ? { destinationPort: match.destination_port.value } : {}),
    prefixRanges: compileRanges(match.prefix_ranges, `${path}.prefix_ranges`, problems),
    directSourcePrefixRanges: compileRanges(match.direct_source_prefix_ranges, `${path}.direct_source_prefix_ranges`, problems),
    sourceType: sourceType as CompiledChainMatch['sourceType'],
    sourcePrefixRanges: compileRanges(match.source_prefix_ranges, `${path}.source_prefix_ranges`, problems),
    sourcePorts: new Set(match.source_ports ?? []),
    serverNames: (match.server_names ?? []).map((n) => n.toLowerCase()),
    ...(match.transport_protocol ? { transportProtocol: match.transport_protocol } : {}),
    applicationProtocols: match.application_protocols ?? [],
  };
  if (problems.length) throw new XdsValidationError(problems);
  return compiled;
}

/** Whether any chain needs to see the first bytes (SNI, ALPN, transport protocol). */
export function needsInspection(matches: readonly CompiledChainMatch[]): { tls: boolean; http: boolean } {
  let tls = false;
  let http = false;
  for (const m of matches) {
    if (m.serverNames.length > 0 || m.transportProtocol !== undefined) tls = true;
    if (m.applicationProtocols.length > 0) {
      tls = true;
      http = true;
    }
  }
  return { tls, http };
}

const NO = -1;

function rangeScore(ranges: readonly CompiledCidr[], address: string): number {
  if (ranges.length === 0) return 0;
  let best = NO;
  for (const r of ranges) if (r.contains(address) && r.prefixLen + 1 > best) best = r.prefixLen + 1;
  return best;
}

function serverNameScore(names: readonly string[], sni: string | undefined): number {
  if (names.length === 0) return 0;
  if (!sni) return NO;
  let best = NO;
  for (const n of names) {
    if (n === sni) return 100_000;
    if (n.startsWith('*.') && sni.endsWith(n.slice(1)) && n.length > best) best = n.length;
  }
  return best;
}

/**
 * Envoy looks the connection's protocols up in its own order (ALPN as the client listed it): a chain listing an
 * earlier protocol wins over one listing a later one; chains without application_protocols come last.
 */
function applicationProtocolScore(chain: readonly string[], connection: readonly string[]): number {
  if (chain.length === 0) return 0;
  for (let i = 0; i < connection.length; i++) if (chain.includes(connection[i]!)) return connection.length - i;
  return NO;
}

function isLoopbackOrSame(meta: ConnectionMetadata): boolean {
  const s = normaliseAddress(meta.sourceAddress);
  return s === normaliseAddress(meta.destinationAddress) || s.startsWith('127.') || s === '::1';
}

/** Scores of one chain for each criterion, in Envoy's order; NO where it does not match. */
const CRITERIA: readonly ((m: CompiledChainMatch, c: ConnectionMetadata) => number)[] = [
  (m, c) => (m.destinationPort === undefined ? 0 : m.destinationPort === c.destinationPort ? 1 : NO),
  (m, c) => rangeScore(m.prefixRanges, c.destinationAddress),
  (m, c) => serverNameScore(m.serverNames, c.serverName),
  (m, c) => (m.transportProtocol === undefined ? 0 : m.transportProtocol === c.transportProtocol ? 1 : NO),
  (m, c) => applicationProtocolScore(m.applicationProtocols, c.applicationProtocols),
  (m, c) => rangeScore(m.directSourcePrefixRanges, c.sourceAddress),
  (m, c) => (m.sourceType === 'ANY' ? 0 : (m.sourceType === 'SAME_IP_OR_LOOPBACK') === isLoopbackOrSame(c) ? 1 : NO),
  (m, c) => rangeScore(m.sourcePrefixRanges, c.sourceAddress),
  (m, c) => (m.sourcePorts.size === 0 ? 0 : m.sourcePorts.has(c.sourcePort) ? 1 : NO),
];

/** Index of the chosen chain, or -1 (→ default_filter_chain or close). */
export function selectFilterChain(matches: readonly CompiledChainMatch[], meta: ConnectionMetadata): number {
  let candidates: number[] = matches.map((_, i) => i);
  for (const criterion of CRITERIA) {
    let best = NO;
    let next: number[] = [];
    for (const i of candidates) {
      const score = criterion(matches[i]!, meta);
      if (score === NO) continue;
      if (score > best) {
        best = score;
        next = [i];
      } else if (score === best) next.push(i);
    }
    if (next.length === 0) return -1;
    candidates = next;
  }
  return candidates[0]!;
}

/** Envoy refuses listeners whose chains have identical matches; the key identifies a match's rules. */
export function matchKey(m: envoy.config.listener.v3.FilterChainMatch | undefined): string {
  return JSON.stringify(m ?? {}, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
}
