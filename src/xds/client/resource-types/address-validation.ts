// Checks shared by several resource types: socket addresses and durations, as Envoy's PGV rules state them.
import type { envoy, google } from '../../generated/types.js';
import type { Problems } from '../envoy-resource-type.js';

/** An address Trellis can bind or connect to: a socket address with a host and a port in 0..65535. */
export function checkAddress(address: envoy.config.core.v3.Address | undefined, path: string, problems: Problems, portRequired: boolean): void {
  if (!address) {
    problems.add(path, 'is required');
    return;
  }
  const socket = address.socket_address;
  if (!socket) {
    if (address.pipe || address.envoy_internal_address) problems.add(path, 'only socket_address is supported');
    else problems.add(`${path}.socket_address`, 'is required');
    return;
  }
  if (!socket.address) problems.add(`${path}.socket_address.address`, 'must not be empty');
  if (socket.named_port) problems.add(`${path}.socket_address.named_port`, 'is not supported; use port_value');
  const port = socket.port_value ?? 0;
  if (port > 65535) problems.add(`${path}.socket_address.port_value`, `must be at most 65535, got ${port}`);
  else if (portRequired && port === 0) problems.add(`${path}.socket_address.port_value`, 'must be between 1 and 65535');
}

/** A google.protobuf.Duration that, when present, is greater than zero (PGV `gt: {}`). */
export function checkPositiveDuration(duration: google.protobuf.Duration | undefined, path: string, problems: Problems): void {
  if (!duration) return;
  const seconds = duration.seconds ?? 0;
  const nanos = duration.nanos ?? 0;
  if (seconds < 0 || nanos < 0 || (seconds === 0 && nanos === 0)) problems.add(path, 'must be greater than 0s');
}
