// The gRPC service definition of envoy.service.discovery.v3.AggregatedDiscoveryService, shared by server and client.
import type * as grpc from '@grpc/grpc-js';
import { decodeMessage, encodeMessage } from './codec.js';
import type { envoy } from './generated/types.js';

export type DiscoveryRequest = envoy.service.discovery.v3.DiscoveryRequest;
export type DiscoveryResponse = envoy.service.discovery.v3.DiscoveryResponse;
export type DeltaDiscoveryRequest = envoy.service.discovery.v3.DeltaDiscoveryRequest;
export type DeltaDiscoveryResponse = envoy.service.discovery.v3.DeltaDiscoveryResponse;
export type Node = envoy.config.core.v3.Node;
export type Resource = envoy.service.discovery.v3.Resource;

export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

const DISCOVERY_REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const DISCOVERY_RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';
const DELTA_REQUEST = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const DELTA_RESPONSE = 'envoy.service.discovery.v3.DeltaDiscoveryResponse';

function serializer<T extends object>(messageName: string): (value: T) => Buffer {
  return (value) => {
    const bytes = encodeMessage(messageName, value);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<T extends object>(messageName: string): (bytes: Buffer) => T {
  return (bytes) => decodeMessage<T>(messageName, bytes);
}

/** Both ADS methods, with protobuf (de)serialisers from Trellis's codec; usable by grpc.Server and grpc.Client. */
export const ADS_SERVICE_DEFINITION = {
  StreamAggregatedResources: {
    path: `/${ADS_SERVICE_NAME}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: serializer<DiscoveryRequest>(DISCOVERY_REQUEST),
    requestDeserialize: deserializer<DiscoveryRequest>(DISCOVERY_REQUEST),
    responseSerialize: serializer<DiscoveryResponse>(DISCOVERY_RESPONSE),
    responseDeserialize: deserializer<DiscoveryResponse>(DISCOVERY_RESPONSE),
    originalName: 'streamAggregatedResources',
  },
  DeltaAggregatedResources: {
    path: `/${ADS_SERVICE_NAME}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: serializer<DeltaDiscoveryRequest>(DELTA_REQUEST),
    requestDeserialize: deserializer<DeltaDiscoveryRequest>(DELTA_REQUEST),
    responseSerialize: serializer<DeltaDiscoveryResponse>(DELTA_RESPONSE),
    responseDeserialize: deserializer<DeltaDiscoveryResponse>(DELTA_RESPONSE),
    originalName: 'deltaAggregatedResources',
  },
} satisfies grpc.ServiceDefinition;
