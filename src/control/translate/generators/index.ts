// The xDS generators keyed by type URL: adding a type is adding a file and a line here, never a switch.
import type { XdsGenerator } from '../../model/generator.js';
import type { PushContext } from '../../model/push-context.js';
import { cdsGenerator } from './cds.js';
import { edsGenerator } from './eds.js';
import { ldsGenerator } from './lds.js';
import { rdsGenerator } from './rds.js';
import { sdsGenerator } from './sds.js';
import { ndsGenerator } from './nds.js';
import { grpcClusters, grpcListeners, grpcRoutes, withProxylessGrpc } from './proxyless-grpc.js';

export { cdsGenerator, proxyClusters } from './cds.js';
export { edsGenerator } from './eds.js';
export { ldsGenerator, proxyListeners } from './lds.js';
export { rdsGenerator, routeNamesFor } from './rds.js';
export { sdsGenerator } from './sds.js';
export { ndsGenerator } from './nds.js';
export { GENERATOR_METADATA, GRPC_GENERATOR, isProxylessGrpc } from './proxyless-grpc.js';
export { EXPLICIT_PROXY_PORT_METADATA, LOCAL_INBOUND_PORTS_METADATA, proxyInputs, type ProxyInputs } from './proxy-inputs.js';

/** Every generator Trellis serves, by type URL (CDS, EDS, LDS, RDS, SDS, and Istio's NDS for agents). */
export function createGenerators(): ReadonlyMap<string, XdsGenerator<PushContext>> {
  const generators = [
    withProxylessGrpc(cdsGenerator, grpcClusters),
    edsGenerator,
    withProxylessGrpc(ldsGenerator, grpcListeners),
    withProxylessGrpc(rdsGenerator, grpcRoutes),
    sdsGenerator,
    ndsGenerator,
  ];
  return new Map(generators.map((g) => [g.typeUrl, g] as const));
}
