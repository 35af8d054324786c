// A gateway proxy's listeners and routes from the Gateways selecting it and the VirtualServices bound to them, once per snapshot.
import type { VirtualService } from '../../../api/index.js';
import type { Proxy } from '../../model/proxy.js';
import type { PushContext } from '../../model/push-context.js';
import { buildGatewayConfig, type GatewayConfig } from '../gateway/index.js';
import { memoize } from './proxy-inputs.js';

const memo = new WeakMap<PushContext, WeakMap<Proxy, GatewayConfig>>();

/** The gateway's listeners and routes (memoized per snapshot: LDS and RDS each need them). */
export function gatewayConfig(proxy: Proxy, push: PushContext): GatewayConfig {
  return memoize(memo, proxy, push, () => {
    const gateways = push.gatewaysForProxy(proxy);
    const seen = new Set<string>();
    const virtualServices: VirtualService[] = [];
    for (const gw of gateways) {
      for (const vs of push.virtualServicesForGateway(`${gw.metadata.namespace}/${gw.metadata.name}`, proxy.namespace)) {
        const key = `${vs.metadata.namespace}/${vs.metadata.name}`;
        if (!seen.has(key)) virtualServices.push(vs), seen.add(key);
      }
    }
    const lookup = (host: string) => push.service(host, proxy.namespace);
    return buildGatewayConfig(proxy, gateways, virtualServices, lookup, { proxy, mesh: push.mesh, push });
  });
}
