// A Cluster being built plus the pieces Istio keeps beside it until the end (HTTP protocol options, `istio` metadata).
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import { toStruct } from '../common/protobuf-values.js';

export type Cluster = envoy.config.cluster.v3.Cluster;
export type HttpProtocolOptions = envoy.extensions.upstreams.http.v3.HttpProtocolOptions;

export const HTTP_PROTOCOL_OPTIONS_TYPE = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const ISTIO_METADATA_KEY = 'istio';

export interface ClusterWrapper {
  cluster: Cluster;
  /** Packed into typed_extension_protocol_options when the cluster is finished (Istio's clusterWrapper). */
  http?: HttpProtocolOptions;
  /** filter_metadata.istio, as plain data until the cluster is finished. */
  istio?: Record<string, unknown>;
}

export function istioMetadata(wrapper: ClusterWrapper): Record<string, unknown> {
  wrapper.istio ??= {};
  return wrapper.istio;
}

export function httpOptions(wrapper: ClusterWrapper): HttpProtocolOptions {
  wrapper.http ??= {};
  return wrapper.http;
}

/** Makes the cluster speak HTTP/2 upstream (Istio's setH2Options), unless an explicit protocol was already chosen. */
export function setH2Options(wrapper: ClusterWrapper): void {
  const options = httpOptions(wrapper);
  if (!options.upstream_http_protocol_options) {
    options.explicit_http_config = { http2_protocol_options: {} };
    delete options.use_downstream_protocol_config;
  }
}

/** HTTP/1.1 upstream for HTTP/1.1 downstream, HTTP/2 for HTTP/2 (Istio's setUseDownstreamProtocol). */
export function setUseDownstreamProtocol(wrapper: ClusterWrapper): void {
  const options = httpOptions(wrapper);
  delete options.explicit_http_config;
  options.use_downstream_protocol_config = { http_protocol_options: {}, http2_protocol_options: {} };
}

export function isHttp2Cluster(wrapper: ClusterWrapper): boolean {
  return wrapper.http?.explicit_http_config?.http2_protocol_options !== undefined;
}

/** Packs the protocol options and metadata into the Cluster (Istio's clusterWrapper.build()). */
export function finishCluster(wrapper: ClusterWrapper): Cluster {
  const cluster = wrapper.cluster;
  if (wrapper.http) {
    const options = wrapper.http;
    // Envoy requires one of the upstream protocol choices; HTTP/1.1 is Istio's default.
    if (!options.explicit_http_config && !options.use_downstream_protocol_config && !options.auto_config) {
      options.explicit_http_config = { http_protocol_options: {} };
    }
    cluster.typed_extension_protocol_options = { [HTTP_PROTOCOL_OPTIONS_TYPE]: packAny(HTTP_PROTOCOL_OPTIONS_TYPE, options) };
  }
  if (wrapper.istio && Object.keys(wrapper.istio).length > 0) {
    cluster.metadata = { filter_metadata: { ...(cluster.metadata?.filter_metadata ?? {}), [ISTIO_METADATA_KEY]: toStruct(wrapper.istio) } };
  }
  return cluster;
}
