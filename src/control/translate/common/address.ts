// Envoy addresses for endpoints: IPs and DNS names as socket addresses, `unix://` paths as pipes.
import type { envoy } from '../../../xds/generated/types.js';

export type Address = envoy.config.core.v3.Address;

const UNIX_PREFIX = 'unix://';

/** Istio's util.BuildAddress: a pipe for `unix:///path`, otherwise a TCP socket address. */
export function buildAddress(address: string, port: number): Address {
  if (address.startsWith(UNIX_PREFIX)) return { pipe: { path: address.slice(UNIX_PREFIX.length) } };
  return { socket_address: { address, port_value: port } };
}
