// Istio's DNS auto-allocation: a stable VIP from 240.240.0.0/16 for each ServiceEntry host that declares no address.
import type { Service } from './service.js';

/** Istio's auto-allocation range (Class E, never routed): 240.240.0.0/16. */
export const AUTO_ALLOCATE_PREFIX = '240.240';
/** Node metadata (ISTIO_META_DNS_AUTO_ALLOCATE) asking for auto-allocated VIPs in the name table and listeners. */
export const DNS_AUTO_ALLOCATE_METADATA = 'DNS_AUTO_ALLOCATE';
/** Node metadata (ISTIO_META_DNS_CAPTURE): the agent's DNS proxy answers for mesh hosts. */
export const DNS_CAPTURE_METADATA = 'DNS_CAPTURE';

// Third octets 0-255 × fourth octets 1-254: .0 and .255 are left out so no VIP looks like a network or broadcast address.
const SLOTS = 256 * 254;

// A PushContext's service list never changes, so the allocation is computed once per snapshot.
const memo = new WeakMap<readonly Service[], ReadonlyMap<string, string>>();

function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function slotAddress(slot: number): string {
  return `${AUTO_ALLOCATE_PREFIX}.${Math.floor(slot / 254)}.${(slot % 254) + 1}`;
}

/** Whether Istio auto-allocates for `service`: a ServiceEntry host, not a wildcard, with no address and a resolution other than NONE. */
export function needsAutoAllocation(service: Service): boolean {
  if (service.source.registry !== 'ServiceEntry') return false;
  if (service.hostname.startsWith('*')) return false;
  if (service.resolution === 'NONE') return false;
  // Any declared address counts, a CIDR too (Istio's DefaultAddress is then the CIDR, which DNS cannot give either).
  return !service.addresses.some((a) => a !== '' && a !== '0.0.0.0');
}

/**
 * host → VIP for every service that needs one. The slot comes from the host name's FNV-1a hash, so a host keeps its
 * VIP across pushes and control-plane restarts whatever else is declared; two hosts hashing to the same slot are
 * separated by probing in host-name order, so only they depend on each other.
 */
export function autoAllocateAddresses(services: readonly Service[]): ReadonlyMap<string, string> {
  const known = memo.get(services);
  if (known) return known;
  const hosts = [...new Set(services.filter(needsAutoAllocation).map((s) => s.hostname))].sort();
  const taken = new Set<number>();
  const out = new Map<string, string>();
  for (const host of hosts) {
    let slot = fnv1a32(host) % SLOTS;
    // Bounded: at most SLOTS probes; beyond 65 024 hosts the rest get none (Istio also runs out of this range).
    for (let probes = 0; taken.has(slot) && probes < SLOTS; probes++) slot = (slot + 1) % SLOTS;
    if (taken.has(slot)) continue;
    taken.add(slot);
    out.set(host, slotAddress(slot));
  }
  memo.set(services, out);
  return out;
}
