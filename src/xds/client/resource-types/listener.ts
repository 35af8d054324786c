// LDS: envoy.config.listener.v3.Listener, validated for what Trellis's listener manager relies on.
import type { envoy } from '../../generated/types.js';
import { LISTENER } from '../../type-urls.js';
import { EnvoyResourceType, type Problems } from '../envoy-resource-type.js';
import { checkAddress } from './address-validation.js';

export type Listener = envoy.config.listener.v3.Listener;

export class ListenerResourceType extends EnvoyResourceType<Listener> {
  readonly typeUrl = LISTENER;
  readonly allResourcesRequiredInSotW = true;

  protected validate(listener: Listener, problems: Problems): void {
    // Port 0 is allowed: the OS picks one (tests and local meshes rely on it).
    checkAddress(listener.address, 'address', problems, false);
    const chainNames = new Set<string>();
    (listener.filter_chains ?? []).forEach((chain, i) => {
      if (chain.name) {
        if (chainNames.has(chain.name)) problems.add(`filter_chains[${i}].name`, `"${chain.name}" is used by another filter chain`);
        chainNames.add(chain.name);
      }
      (chain.filters ?? []).forEach((filter, j) => {
        if (!filter.name) problems.add(`filter_chains[${i}].filters[${j}].name`, 'must not be empty');
      });
    });
    if ((listener.filter_chains ?? []).length === 0 && !listener.default_filter_chain) {
      problems.add('filter_chains', 'at least one filter chain, or a default_filter_chain, is required');
    }
  }
}
