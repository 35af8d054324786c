// Istio's populateListenerFilters: the TLS and HTTP inspectors a capture listener needs, switched off (filter_disabled) on the ports that do not need them.
import type { envoy } from '../../../xds/generated/types.js';
import { httpInspector, tlsInspector, type ListenerFilter } from '../common/network-filters.js';
import type { FilterChain } from './listener-context.js';

type MatchPredicate = envoy.config.listener.v3.ListenerFilterChainMatchPredicate;

interface Needs {
  tls: boolean;
  http: boolean;
}

/** `[start, end)` predicates for each port, or-ed (Istio's listenerPredicateExcludePorts). */
function anyOfPorts(ports: readonly number[]): MatchPredicate {
  const rules = ports.map((p): MatchPredicate => ({ destination_port_range: { start: p, end: p + 1 } }));
  return rules.length === 1 ? rules[0]! : { or_match: { rules } };
}

/**
 * Per destination port (0: chains without one, the passthrough chains), which inspectors its chains need: TLS for a
 * `transport_protocol: tls` match, HTTP for `http/1.1` or `h2c` application protocols. A port whose chains need
 * neither (a declared TCP port under DISABLE, the 15006 blackhole) gets no inspector, so a server-first protocol
 * (MySQL, SMTP) is not held waiting for client bytes that never come; a port declared HTTP or TCP never gets the
 * HTTP inspector (its protocol is known).
 */
function needsByPort(chains: readonly FilterChain[]): Map<number, Needs> {
  const out = new Map<number, Needs>();
  for (const chain of chains) {
    const match = chain.filter_chain_match;
    const port = match?.destination_port?.value ?? 0;
    const needs = out.get(port) ?? { tls: false, http: false };
    needs.tls ||= match?.transport_protocol === 'tls';
    needs.http ||= (match?.application_protocols ?? []).some((p) => p === 'http/1.1' || p === 'h2c');
    out.set(port, needs);
  }
  return out;
}

/**
 * The inspectors for a listener with `chains`, in Envoy's required order (TLS first: when it finds TLS the HTTP
 * inspector does nothing). The TLS inspector is on by default when the passthrough chains need it, and then
 * disabled on the ports that do not; otherwise it is enabled only on the ports that need it.
 */
export function inspectorsFor(chains: readonly FilterChain[]): ListenerFilter[] {
  const byPort = needsByPort(chains);
  const ports = [...byPort.keys()].sort((a, b) => a - b);
  const out: ListenerFilter[] = [];
  if (ports.some((p) => byPort.get(p)!.tls)) {
    const filter = tlsInspector();
    if (byPort.get(0)?.tls) {
      const off = ports.filter((p) => p !== 0 && !byPort.get(p)!.tls);
      if (off.length > 0) filter.filter_disabled = anyOfPorts(off);
    } else {
      const on = ports.filter((p) => p !== 0 && byPort.get(p)!.tls);
      filter.filter_disabled = { not_match: anyOfPorts(on) };
    }
    out.push(filter);
  }
  if (ports.some((p) => byPort.get(p)!.http)) {
    const filter = httpInspector();
    const off = ports.filter((p) => !byPort.get(p)!.http);
    if (off.length > 0) filter.filter_disabled = anyOfPorts(off);
    out.push(filter);
  }
  return out;
}
