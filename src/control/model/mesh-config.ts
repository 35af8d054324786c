// Istio's MeshConfig: the mesh-wide settings generators read (root namespace, trust domain, timeouts, tracing, mTLS).
import type { LocalityLoadBalancerSetting } from '../../api/index.js';

export interface MeshConfig {
  /** Namespace whose Sidecar/DestinationRule/PeerAuthentication apply mesh-wide (Istio: `istio-system`). */
  readonly rootNamespace: string;
  readonly trustDomain: string;
  readonly domainSuffix: string;
  /** Cluster connect timeout (Istio `connectTimeout`, default 10 s). */
  readonly connectTimeoutMs: number;
  /** DestinationRule-less clients send mTLS to endpoints that have a sidecar (Istio `enableAutoMtls`, default true). */
  readonly enableAutoMtls: boolean;
  /** `ALLOW_ANY` (unknown hosts pass through) or `REGISTRY_ONLY` (they go to BlackHoleCluster). */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /**
   * Istio `localityLbSetting`: the mesh-wide default a DestinationRule's own setting replaces. Istio's default is
   * `{ enabled: true }`: locality failover applies wherever a DestinationRule sets outlierDetection.
   */
  readonly localityLbSetting?: LocalityLoadBalancerSetting;
  /** Istio's `defaultHttpRetryPolicy`: attempts 2, retryOn `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`. */
  readonly defaultRetryAttempts: number;
  /** Ingress gateway selector label (Istio: `istio: ingressgateway`). */
  readonly ingressSelector: string;
  /** Istio `pathNormalization`: how connection managers normalize `:path` before routing and policy (absent: DEFAULT, i.e. BASE). */
  readonly pathNormalization?: { readonly normalization?: PathNormalizationMode };
  /** Istio's `extensionProviders`: the external authorizers CUSTOM AuthorizationPolicies name (`provider.name`). */
  readonly extensionProviders?: readonly ExtensionProvider[];
  /** Istio's `accessLogFile`: mesh-wide access logs to this path (`/dev/stdout`) when no Telemetry configures access logging. */
  readonly accessLogFile?: string;
  /** Istio's `accessLogEncoding` (default TEXT). */
  readonly accessLogEncoding?: 'TEXT' | 'JSON';
  /** Istio's `accessLogFormat`: an Envoy format string (TEXT) or a JSON object of them (JSON); empty means Istio's default. */
  readonly accessLogFormat?: string;
  /** Istio's `defaultProviders`: the providers a Telemetry entry without `providers` uses. */
  readonly defaultProviders?: { readonly accessLogging?: readonly string[]; readonly tracing?: readonly string[]; readonly metrics?: readonly string[] };
}

/** One of Istio's MeshConfig.ExtensionProvider; Trellis reads `envoyExtAuthzHttp` (and refuses the others by name). */
export interface ExtensionProvider {
  readonly name: string;
  readonly envoyExtAuthzHttp?: EnvoyExternalAuthorizationHttpProvider;
  /** Recognised so a policy naming it gets a clear "not supported" instead of "not found". */
  readonly envoyExtAuthzGrpc?: Readonly<Record<string, unknown>>;
  /** Istio's ZipkinTracingProvider / OpenTelemetryTracingProvider as written (`service`, `port`, …): translate/telemetry/tracing.ts reads them. */
  readonly zipkin?: Readonly<Record<string, unknown>>;
  readonly opentelemetry?: Readonly<Record<string, unknown>>;
  /** Istio's EnvoyFileAccessLogProvider: `path`, and `logFormat` with `text` (a format string) or `labels` (JSON keys to format strings). */
  readonly envoyFileAccessLog?: { readonly path?: string; readonly logFormat?: { readonly text?: string; readonly labels?: Readonly<Record<string, unknown>> } };
}

/** Istio's EnvoyExternalAuthorizationHttpProvider, field names as in mesh config YAML. */
export interface EnvoyExternalAuthorizationHttpProvider {
  /** `<host>` or `<namespace>/<host>` of a service in the registry. */
  readonly service: string;
  readonly port: number;
  /** Istio duration; default 600s. */
  readonly timeout?: string;
  readonly pathPrefix?: string;
  readonly failOpen?: boolean;
  /** HTTP status when the authorizer cannot be reached, e.g. "503". */
  readonly statusOnError?: string;
  readonly includeRequestHeadersInCheck?: readonly string[];
  readonly includeAdditionalHeadersInCheck?: Readonly<Record<string, string>>;
  readonly includeRequestBodyInCheck?: { readonly maxRequestBytes?: number; readonly allowPartialMessage?: boolean; readonly packAsBytes?: boolean };
  readonly headersToUpstreamOnAllow?: readonly string[];
  readonly headersToDownstreamOnAllow?: readonly string[];
  readonly headersToDownstreamOnDeny?: readonly string[];
}

/** Istio's MeshConfig.ProxyPathNormalization.NormalizationType. */
export const PATH_NORMALIZATION_MODES = ['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathNormalizationMode = (typeof PATH_NORMALIZATION_MODES)[number];

export const DEFAULT_MESH_CONFIG: MeshConfig = {
  rootNamespace: 'istio-system',
  trustDomain: 'cluster.local',
  domainSuffix: 'cluster.local',
  connectTimeoutMs: 10_000,
  enableAutoMtls: true,
  outboundTrafficPolicy: 'ALLOW_ANY',
  localityLbSetting: { enabled: true },
  defaultRetryAttempts: 2,
  ingressSelector: 'ingressgateway',
  extensionProviders: [],
};
