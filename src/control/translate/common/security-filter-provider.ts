// The seam between listener builders and the security filter translation: the two functions of security/inbound-filters.ts, swappable in tests.
import type { Filter, HttpFilter } from './network-filters.js';
import { securityHttpFilters, securityNetworkFilters, type SecurityFilterInput } from '../security/inbound-filters.js';

export interface SecurityFilterProvider {
  /** HTTP filters that go before fault, CORS and the router. */
  http(input: SecurityFilterInput): HttpFilter[];
  /** Network filters that go before tcp_proxy. */
  network(input: SecurityFilterInput): Filter[];
}

/** AuthorizationPolicy and RequestAuthentication as translated by security/inbound-filters.ts. */
export const POLICY_SECURITY_FILTERS: SecurityFilterProvider = { http: securityHttpFilters, network: securityNetworkFilters };
