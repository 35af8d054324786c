// Delta (incremental) ADS (DeltaAggregatedResources): subscribe/unsubscribe diffs, per-resource versions, explicit removed_resources.
import { ADS_SERVICE_DEFINITION, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse } from '../ads-service.js';
import { INVALID_ARGUMENT, type AdsProtocol, type ProcessedResponse } from './ads-protocol.js';
import { WILDCARD } from './resource-type.js';
import { processUpdate, resourceSubject, type Candidate, type Refusal } from './update-processing.js';

export const deltaProtocol: AdsProtocol<DeltaDiscoveryRequest, DeltaDiscoveryResponse> = {
  mode: 'delta',
  method: ADS_SERVICE_DEFINITION.DeltaAggregatedResources,

  initialRequest(watched) {
    const subscribe = watched.sortedNames();
    if (watched.wildcard) subscribe.unshift(WILDCARD);
    // initial_resource_versions lets the server send only what changed while the client was away.
    return { type_url: watched.typeUrl, resource_names_subscribe: subscribe, initial_resource_versions: watched.heldVersions() };
  },

  subscriptionRequest(watched, added, removed) {
    return { type_url: watched.typeUrl, resource_names_subscribe: [...added], resource_names_unsubscribe: [...removed] };
  },

  async processResponse(response, types): Promise<ProcessedResponse | undefined> {
    const watched = types.get(response.type_url ?? '');
    if (!watched) return undefined;
    const candidates: Candidate[] = [];
    const refusals: Refusal[] = [];
    const seen = new Set<string>();
    (response.resources ?? []).forEach((resource, index) => {
      const name = resource.name ?? '';
      if (!name) {
        refusals.push({ subject: `resources[${index}]`, reason: 'name: must not be empty' });
        return;
      }
      if (!watched.wants(name)) return;
      if (seen.has(name)) {
        refusals.push({ subject: resourceSubject(name), reason: `appears more than once in the response (resources[${index}])` });
        return;
      }
      seen.add(name);
      if (!resource.resource) {
        refusals.push({ subject: resourceSubject(name), reason: 'resource: is required' });
        return;
      }
      candidates.push({ name, any: resource.resource, version: resource.version ?? '' });
    });
    const removals = [...(response.removed_resources ?? []), ...(response.removed_resource_names ?? []).map((n) => n.name ?? '')].filter((name) => name !== '' && !seen.has(name));
    const versionInfo = response.system_version_info ?? '';
    const outcome = await processUpdate(watched, versionInfo, candidates, refusals, removals, true);
    return { watched, nonce: response.nonce ?? '', versionInfo, outcome };
  },

  replyRequest(watched, nonce, nackMessage) {
    const request: DeltaDiscoveryRequest = { type_url: watched.typeUrl, response_nonce: nonce };
    if (nackMessage !== undefined) request.error_detail = { code: INVALID_ARGUMENT, message: nackMessage };
    return request;
  },
};
