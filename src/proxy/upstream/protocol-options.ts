// Which HTTP protocol a cluster speaks upstream, and its pool options, from typed_extension_protocol_options or the legacy fields.
import { CodecError } from '../../common/errors.js';
import { unpackAny } from '../../xds/codec.js';
import type { envoy } from '../../xds/generated/types.js';
import { durationMs } from '../../common/duration.js';
import { rejectUnsupported, wrapped } from './config-values.js';

type Cluster = envoy.config.cluster.v3.Cluster;
type HttpProtocolOptions = envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
type CoreHttpProtocolOptions = envoy.config.core.v3.HttpProtocolOptions;
type Http2ProtocolOptions = envoy.config.core.v3.Http2ProtocolOptions;
type Http1ProtocolOptions = envoy.config.core.v3.Http1ProtocolOptions;

export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_PROTOCOL_OPTIONS_TYPE_URL = `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS_KEY}`;

/** 'downstream': HTTP/2 when the downstream request is HTTP/2; 'auto': HTTP/2 when ALPN says h2, else HTTP/1.1. */
export type UpstreamProtocol = 'http1' | 'http2' | 'downstream' | 'auto';

export interface ProtocolOptions {
  readonly protocol: UpstreamProtocol;
  readonly idleTimeoutMs: number;
  readonly maxRequestsPerConnection: number;
  readonly maxConcurrentStreams: number;
}

/** Envoy's defaults: upstream idle_timeout 1 h, unlimited requests per connection and streams per HTTP/2 connection. */
const DEFAULT_IDLE_TIMEOUT_MS = 3600_000;
const DEFAULT_MAX_CONCURRENT_STREAMS = 2147483647;

function checkHttp1(o: Http1ProtocolOptions | undefined, path: string, problems: string[]): void {
  rejectUnsupported(o, [], path, problems);
}

function checkHttp2(o: Http2ProtocolOptions | undefined, path: string, problems: string[]): number | undefined {
  rejectUnsupported(o, ['max_concurrent_streams'], path, problems);
  const v = o?.max_concurrent_streams?.value;
  if (v !== undefined && v < 1) problems.push(`${path}.max_concurrent_streams: must be at least 1`);
  return v;
}

function checkCommon(o: CoreHttpProtocolOptions | undefined, path: string, problems: string[]): { idle?: number; maxRequests?: number } {
  rejectUnsupported(o, ['idle_timeout', 'max_requests_per_connection'], path, problems);
  return { idle: o?.idle_timeout ? durationMs(o.idle_timeout, DEFAULT_IDLE_TIMEOUT_MS) : undefined, maxRequests: o?.max_requests_per_connection?.value };
}

export function compileProtocolOptions(cluster: Cluster, path: string, hasTls: boolean, problems: string[]): ProtocolOptions {
  let protocol: UpstreamProtocol = 'http1';
  let maxConcurrentStreams: number | undefined;
  let common: { idle?: number; maxRequests?: number } = {};
  const typed = cluster.typed_extension_protocol_options ?? {};
  for (const key of Object.keys(typed)) {
    if (key !== HTTP_PROTOCOL_OPTIONS_KEY) problems.push(`${path}.typed_extension_protocol_options["${key}"]: only ${HTTP_PROTOCOL_OPTIONS_KEY} is supported`);
  }
  const any = typed[HTTP_PROTOCOL_OPTIONS_KEY];
  const legacyHttp2 = cluster.http2_protocol_options !== undefined;
  if (any) {
    const p = `${path}.typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS_KEY}"]`;
    let o: HttpProtocolOptions | undefined;
    try {
      o = unpackAny<HttpProtocolOptions>(any, HTTP_PROTOCOL_OPTIONS_TYPE_URL);
    } catch (err) {
      problems.push(`${p}: ${err instanceof CodecError ? err.message : String(err)}`);
    }
    if (o) {
      rejectUnsupported(o, ['common_http_protocol_options', 'explicit_http_config', 'use_downstream_protocol_config', 'auto_config'], p, problems);
      common = checkCommon(o.common_http_protocol_options, `${p}.common_http_protocol_options`, problems);
      const chosen = [o.explicit_http_config, o.use_downstream_protocol_config, o.auto_config].filter((x) => x !== undefined).length;
      if (chosen !== 1) problems.push(`${p}: exactly one of explicit_http_config, use_downstream_protocol_config, auto_config is required`);
      if (o.explicit_http_config) {
        const e = o.explicit_http_config;
        const ep = `${p}.explicit_http_config`;
        rejectUnsupported(e, ['http_protocol_options', 'http2_protocol_options'], ep, problems, 'is not supported (HTTP/3 upstreams are not)');
        if (e.http2_protocol_options) {
          protocol = 'http2';
          maxConcurrentStreams = checkHttp2(e.http2_protocol_options, `${ep}.http2_protocol_options`, problems);
        } else {
          checkHttp1(e.http_protocol_options, `${ep}.http_protocol_options`, problems);
        }
      } else if (o.use_downstream_protocol_config) {
        const d = o.use_downstream_protocol_config;
        const dp = `${p}.use_downstream_protocol_config`;
        rejectUnsupported(d, ['http_protocol_options', 'http2_protocol_options'], dp, problems, 'is not supported (HTTP/3 upstreams are not)');
        checkHttp1(d.http_protocol_options, `${dp}.http_protocol_options`, problems);
        maxConcurrentStreams = checkHttp2(d.http2_protocol_options, `${dp}.http2_protocol_options`, problems);
        protocol = 'downstream';
      } else if (o.auto_config) {
        const a = o.auto_config;
        const ap = `${p}.auto_config`;
        rejectUnsupported(a, ['http_protocol_options', 'http2_protocol_options'], ap, problems, 'is not supported (HTTP/3 upstreams are not)');
        checkHttp1(a.http_protocol_options, `${ap}.http_protocol_options`, problems);
        maxConcurrentStreams = checkHttp2(a.http2_protocol_options, `${ap}.http2_protocol_options`, problems);
        if (!hasTls) problems.push(`${ap}: requires a TLS transport_socket (the protocol is chosen by ALPN)`);
        protocol = 'auto';
      }
    }
    if (legacyHttp2 || cluster.http_protocol_options || cluster.common_http_protocol_options || cluster.protocol_selection === 'USE_DOWNSTREAM_PROTOCOL') {
      problems.push(`${path}: typed_extension_protocol_options cannot be combined with the deprecated http_protocol_options, http2_protocol_options, common_http_protocol_options or protocol_selection`);
    }
  } else {
    common = checkCommon(cluster.common_http_protocol_options, `${path}.common_http_protocol_options`, problems);
    checkHttp1(cluster.http_protocol_options, `${path}.http_protocol_options`, problems);
    if (legacyHttp2) {
      protocol = 'http2';
      maxConcurrentStreams = checkHttp2(cluster.http2_protocol_options, `${path}.http2_protocol_options`, problems);
    }
    if (cluster.protocol_selection === 'USE_DOWNSTREAM_PROTOCOL') protocol = 'downstream';
  }
  const legacyMax = cluster.max_requests_per_connection?.value;
  if (legacyMax !== undefined && common.maxRequests !== undefined) {
    problems.push(`${path}.max_requests_per_connection: set only common_http_protocol_options.max_requests_per_connection`);
  }
  return {
    protocol,
    idleTimeoutMs: common.idle ?? DEFAULT_IDLE_TIMEOUT_MS,
    maxRequestsPerConnection: common.maxRequests ?? legacyMax ?? 0,
    maxConcurrentStreams: wrapped({ value: maxConcurrentStreams }, DEFAULT_MAX_CONCURRENT_STREAMS),
  };
}
