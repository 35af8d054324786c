// The xDS generators keyed by type URL: adding a type is adding a file and a line here, never a switch.
import type { XdsGenerator } from '../../model/generator.js';
import type { PushContext } from '../../model/push-context.js';
import { cdsGenerator } from './cds.js';
import { edsGenerator } from './eds.js';
import { ldsGenerator } from './lds.js';
import { rdsGenerator } from './rds.js';
import { sdsGenerator } from './sds.js';

export { cdsGenerator, proxyClusters } from './cds.js';
export { edsGenerator } from './eds.js';
export { ldsGenerator, proxyListeners } from './lds.js';
export { rdsGenerator, routeNamesFor } from './rds.js';
export { sdsGenerator } from './sds.js';
export { EXPLICIT_PROXY_PORT_METADATA, proxyInputs, type ProxyInputs } from './proxy-inputs.js';

/** Every generator Trellis serves, by type URL (CDS, EDS, LDS, RDS, SDS). */
export function createGenerators(): ReadonlyMap<string, XdsGenerator<PushContext>> {
  return new Map([cdsGenerator, edsGenerator, ldsGenerator, rdsGenerator, sdsGenerator].map((g) => [g.typeUrl, g] as const));
}
