// The ADS service definition as the server registers it: undecodable request bytes become a value instead of a thrown error.
//
// grpc-js answers a throwing request deserializer with status INTERNAL ("Error deserializing request")
// and cancels the call, so the handler cannot tell the client what was wrong. Returning a
// MalformedRequest lets the stream end with INVALID_ARGUMENT and the decoder's reason, and be counted.
import { ADS_SERVICE_DEFINITION, type DeltaDiscoveryRequest, type DiscoveryRequest } from '../ads-service.js';
import { describeError } from '../../common/errors.js';

/** Request bytes on an ADS stream that do not decode as the method's request message. */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

function tolerant<T>(deserialize: (bytes: Buffer) => T): (bytes: Buffer) => T | MalformedRequest {
  return (bytes) => {
    try {
      return deserialize(bytes);
    } catch (err) {
      return new MalformedRequest(describeError(err));
    }
  };
}

const { StreamAggregatedResources: sotw, DeltaAggregatedResources: delta } = ADS_SERVICE_DEFINITION;

export const ADS_SERVER_DEFINITION = {
  StreamAggregatedResources: { ...sotw, requestDeserialize: tolerant<DiscoveryRequest>(sotw.requestDeserialize) },
  DeltaAggregatedResources: { ...delta, requestDeserialize: tolerant<DeltaDiscoveryRequest>(delta.requestDeserialize) },
};
