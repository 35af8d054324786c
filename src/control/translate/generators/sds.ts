// SDS: nothing yet; the CA issue adds workload certificates (`default`) and the root bundle (`ROOTCA`).
import { SECRET } from '../../../xds/type-urls.js';
import type { GeneratedResource, XdsGenerator } from '../../model/generator.js';
import type { PushContext } from '../../model/push-context.js';

export const sdsGenerator: XdsGenerator<PushContext> = {
  typeUrl: SECRET,
  generate(): readonly GeneratedResource[] {
    return [];
  },
};
