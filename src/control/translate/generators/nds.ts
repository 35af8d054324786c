// NDS: the name table (istio.networking.nds.v1.NameTable) of a sidecar's scope, for the agent's DNS proxy.
import { NAME_TABLE } from '../../../xds/type-urls.js';
import { DNS_CAPTURE_METADATA } from '../../model/auto-allocated-addresses.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { PushContext } from '../../model/push-context.js';
import { buildNameTable, perHostResources } from '../dns/name-table.js';
import { proxyInputs } from './proxy-inputs.js';

export const ndsGenerator: XdsGenerator<PushContext> = {
  typeUrl: NAME_TABLE,
  generate(proxy, push): readonly GeneratedResource[] {
    // Istio's agent asks for NDS only beside sidecars with DNS capture on (ISTIO_META_DNS_CAPTURE): others get nothing to build.
    if (proxy.type !== 'sidecar' || proxy.metadata[DNS_CAPTURE_METADATA] !== 'true') return [];
    const inputs = proxyInputs(proxy, push);
    const table = buildNameTable(proxy, {
      services: inputs.outboundServices,
      allServices: push.services(),
      instances: (service) => push.instances(service),
    });
    return perHostResources(table);
  },
};
