// The generator interface: per proxy and xDS type, the Envoy resources a PushContext yields (Istio's XdsResourceGenerator).
import type { Proxy } from './proxy.js';
import type { PushRequest } from './push-request.js';

/** One generated resource: its xDS name and the Envoy message as a plain object (.proto field names). */
export interface GeneratedResource {
  readonly name: string;
  readonly resource: object;
}

/**
 * Generates the resources of one type for one proxy from one immutable snapshot. `P` is the PushContext
 * (a type parameter so this file does not depend on its implementation).
 */
export interface XdsGenerator<P> {
  readonly typeUrl: string;
  generate(proxy: Proxy, push: P, request: PushRequest): readonly GeneratedResource[];
}
