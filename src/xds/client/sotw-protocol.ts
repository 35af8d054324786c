// State-of-the-World ADS (StreamAggregatedResources): full name lists, version_info per type, absence means removal for LDS/CDS.
import { ADS_SERVICE_DEFINITION, type DiscoveryRequest, type DiscoveryResponse } from '../ads-service.js';
import { INVALID_ARGUMENT, type AdsProtocol, type ProcessedResponse } from './ads-protocol.js';
import { describeError } from '../../common/errors.js';
import { processUpdate, resourceSubject, type Candidate, type Refusal } from './update-processing.js';
import type { WatchedType } from './watched-type.js';

function resourceNames(watched: WatchedType<unknown>): string[] {
  // Legacy wildcard: an empty list on LDS/CDS asks for everything (xDS protocol, "How the client specifies what resources to return").
  return watched.wildcard ? [] : watched.sortedNames();
}

export const sotwProtocol: AdsProtocol<DiscoveryRequest, DiscoveryResponse> = {
  mode: 'sotw',
  method: ADS_SERVICE_DEFINITION.StreamAggregatedResources,

  initialRequest(watched) {
    // On a new stream the nonce is empty and version_info is the last accepted one, so an unchanged
    // server need not resend what the client already holds.
    return { type_url: watched.typeUrl, version_info: watched.versionInfo, resource_names: resourceNames(watched), response_nonce: '' };
  },

  subscriptionRequest(watched) {
    return { type_url: watched.typeUrl, version_info: watched.versionInfo, resource_names: resourceNames(watched), response_nonce: watched.nonce };
  },

  async processResponse(response, types): Promise<ProcessedResponse | undefined> {
    const watched = types.get(response.type_url ?? '');
    if (!watched) return undefined;
    const versionInfo = response.version_info ?? '';
    const candidates: Candidate[] = [];
    const refusals: Refusal[] = [];
    const seen = new Set<string>();
    (response.resources ?? []).forEach((any, index) => {
      const name = watched.type.nameOf(any);
      if (!name) {
        // Without a name the resource cannot be filed; decode anyway to report every reason.
        let reason = 'name: must not be empty';
        try {
          watched.type.decode(any, '');
        } catch (err) {
          reason = describeError(err);
        }
        refusals.push({ subject: `resources[${index}]`, reason });
        return;
      }
      if (!watched.wants(name)) return; // not asked for: a server may send extra, the client keeps only what it watches
      if (seen.has(name)) {
        refusals.push({ subject: resourceSubject(name), reason: `appears more than once in the response (resources[${index}])` });
        return;
      }
      seen.add(name);
      candidates.push({ name, any, version: versionInfo });
    });
    // LDS/CDS responses carry the whole set; RDS/EDS/SDS responses may carry only what changed.
    const removals = watched.type.allResourcesRequiredInSotW ? [...watched.resources.keys()].filter((name) => !seen.has(name)) : [];
    const outcome = await processUpdate(watched, versionInfo, candidates, refusals, removals, false);
    return { watched, nonce: response.nonce ?? '', versionInfo, outcome };
  },

  replyRequest(watched, nonce, nackMessage) {
    const request: DiscoveryRequest = {
      type_url: watched.typeUrl,
      // A NACK repeats the last accepted version; an ACK carries the new one (the caller updated it).
      version_info: watched.versionInfo,
      resource_names: resourceNames(watched),
      response_nonce: nonce,
    };
    if (nackMessage !== undefined) request.error_detail = { code: INVALID_ARGUMENT, message: nackMessage };
    return request;
  },
};
