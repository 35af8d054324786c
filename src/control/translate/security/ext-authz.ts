// CUSTOM AuthorizationPolicy: the mesh config extension provider as Envoy's ext_authz filter config (Istio's
// pilot/pkg/security/authz/builder/extauthz.go), limited to `envoyExtAuthzHttp`.
import { parseDurationNanos } from '../../../api/duration.js';
import { messageType } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import type { EnvoyExternalAuthorizationHttpProvider, ExtensionProvider } from '../../model/mesh-config.js';
import type { PushContext } from '../../model/push-context.js';
import { durationFromNanos } from '../common/route-duration.js';

export type ExtAuthz = envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
type ListStringMatcher = envoy.type.matcher.v3.ListStringMatcher;
type MetadataMatcher = envoy.type.matcher.v3.MetadataMatcher;

/** Prefix of CUSTOM policies' RBAC names: ext_authz runs only when a shadow rule with this prefix matched. */
export const EXT_AUTHZ_MATCH_PREFIX = 'istio-ext-authz';
/** Stat prefix of the CUSTOM policies' shadow rules; Envoy's RBAC filter also prefixes its dynamic metadata keys with it. */
export const EXT_AUTHZ_SHADOW_RULES_STAT_PREFIX = 'istio_ext_authz_';
const SHADOW_EFFECTIVE_POLICY_ID = 'shadow_effective_policy_id';
const DEFAULT_TIMEOUT_SECONDS = 600;

export type ResolvedProvider = { readonly extAuthz: ExtAuthz } | { readonly error: string };

/**
 * Resolves the provider named `name` for `push` into ext_authz config, or the reason it cannot be used (no such
 * provider, a gRPC provider, an unknown service, a bad port or statusOnError…): Istio then denies the requests the
 * CUSTOM policy would have sent to the authorizer rather than letting them through unchecked.
 */
export function resolveExtAuthzProvider(push: PushContext, name: string): ResolvedProvider {
  const providers = push.mesh.extensionProviders ?? [];
  if (providers.length === 0) return { error: 'no extension provider is defined in mesh config (extensionProviders)' };
  const matching = providers.filter((p) => p.name === name);
  if (matching.length === 0) return { error: `available providers are [${providers.map((p) => p.name).join(', ')}] but found "${name}"` };
  if (matching.length > 1) return { error: `extension provider name must be unique, found duplicate: ${name}` };
  const provider = matching[0] as ExtensionProvider;
  if (provider.envoyExtAuthzHttp) {
    const problems: string[] = [];
    const extAuthz = buildHttpExtAuthz(push, provider.envoyExtAuthzHttp, problems);
    return problems.length > 0 || !extAuthz ? { error: `found errors in provider ${name}: ${problems.join('; ')}` } : { extAuthz };
  }
  if (provider.envoyExtAuthzGrpc) return { error: `provider ${name}: envoyExtAuthzGrpc is not supported by Trellis (use envoyExtAuthzHttp)` };
  return { error: `provider ${name} is not an external authorization provider (envoyExtAuthzHttp)` };
}

function buildHttpExtAuthz(push: PushContext, config: EnvoyExternalAuthorizationHttpProvider, problems: string[]): ExtAuthz | undefined {
  const port = config.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`port must be in the range [1, 65535], found: ${port}`);
  const service = lookupService(push, config.service ?? '', problems);
  const status = parseStatusOnError(config.statusOnError, problems);
  if (config.pathPrefix && !config.pathPrefix.startsWith('/')) problems.push(`pathPrefix must begin with \`/\`, found: "${config.pathPrefix}"`);
  let timeout = durationFromNanos(DEFAULT_TIMEOUT_SECONDS * 1e9);
  if (config.timeout !== undefined) {
    const nanos = parseDurationNanos(config.timeout);
    if (nanos === undefined) problems.push(`invalid timeout "${config.timeout}"`);
    else timeout = durationFromNanos(nanos);
  }
  const wildcard = (field: string, values: readonly string[] | undefined) => {
    if (values?.includes('*')) problems.push(`a single wildcard ("*") is not supported, change it to either prefix or suffix match: ${field}`);
  };
  wildcard('includeRequestHeadersInCheck', config.includeRequestHeadersInCheck);
  wildcard('headersToDownstreamOnDeny', config.headersToDownstreamOnDeny);
  wildcard('headersToDownstreamOnAllow', config.headersToDownstreamOnAllow);
  wildcard('headersToUpstreamOnAllow', config.headersToUpstreamOnAllow);
  if (problems.length > 0 || !service) return undefined;

  const httpService: envoy.extensions.filters.http.ext_authz.v3.HttpService = {
    server_uri: { uri: `http://${service}`, cluster: `outbound|${port}||${service}`, timeout },
  };
  if (config.pathPrefix) httpService.path_prefix = config.pathPrefix;
  const allowedHeaders = headerPatterns(config.includeRequestHeadersInCheck);
  const additional = Object.keys(config.includeAdditionalHeadersInCheck ?? {}).sort();
  if (allowedHeaders || additional.length > 0) {
    httpService.authorization_request = {
      ...(allowedHeaders ? { allowed_headers: allowedHeaders } : {}),
      ...(additional.length > 0 ? { headers_to_add: additional.map((key) => ({ key, value: config.includeAdditionalHeadersInCheck![key] })) } : {}),
    };
  }
  const upstream = headerPatterns(config.headersToUpstreamOnAllow);
  const clientOnDeny = headerPatterns(config.headersToDownstreamOnDeny);
  const clientOnAllow = headerPatterns(config.headersToDownstreamOnAllow);
  if (upstream || clientOnDeny || clientOnAllow) {
    httpService.authorization_response = {
      ...(upstream ? { allowed_upstream_headers: upstream } : {}),
      ...(clientOnDeny ? { allowed_client_headers: clientOnDeny } : {}),
      ...(clientOnAllow ? { allowed_client_headers_on_success: clientOnAllow } : {}),
    };
  }
  const extAuthz: ExtAuthz = {
    http_service: httpService,
    transport_api_version: 'V3',
    filter_enabled_metadata: filterEnabledMetadata('envoy.filters.http.rbac'),
  };
  if (status !== undefined) extAuthz.status_on_error = { code: status };
  if (config.failOpen) extAuthz.failure_mode_allow = true;
  const body = config.includeRequestBodyInCheck;
  if (body) {
    extAuthz.with_request_body = {
      ...(body.maxRequestBytes !== undefined ? { max_request_bytes: body.maxRequestBytes } : {}),
      ...(body.allowPartialMessage ? { allow_partial_message: true } : {}),
      ...(body.packAsBytes ? { pack_as_bytes: true } : {}),
    };
  }
  return extAuthz;
}

/** `<host>` or `<namespace>/<host>`: the host of a service in the registry (short names are not resolved, as Istio). */
function lookupService(push: PushContext, text: string, problems: string[]): string | undefined {
  if (text === '') {
    problems.push('service must not be empty');
    return undefined;
  }
  const slash = text.indexOf('/');
  const namespace = slash < 0 ? undefined : text.slice(0, slash);
  const hostname = slash < 0 ? text : text.slice(slash + 1);
  const found = push.services().find((s) => s.hostname === hostname && (namespace === undefined || s.namespace === namespace));
  if (!found || hostname.startsWith('*')) {
    problems.push(`could not find service ${text} in the registry`);
    return undefined;
  }
  return found.hostname;
}

function parseStatusOnError(text: string | undefined, problems: string[]): number | undefined {
  if (text === undefined || text === '') return undefined;
  const code = Number(text);
  const known = messageType('envoy.type.v3.HttpStatus').fields['code']?.resolvedType as { valuesById?: Record<number, string> } | null | undefined;
  if (!/^[0-9]+$/.test(text) || !known?.valuesById?.[code]) {
    problems.push(`unsupported statusOnError ${text} (expected an HTTP status code Envoy knows, e.g. 403 or 503)`);
    return undefined;
  }
  return code;
}

/** Header names as Istio's generateHeaders: case-insensitive, `x-*` a prefix, `*-x` a suffix. */
function headerPatterns(headers: readonly string[] | undefined): ListStringMatcher | undefined {
  if (!headers || headers.length === 0) return undefined;
  return {
    patterns: headers.map((h) =>
      h.startsWith('*') ? { suffix: h.slice(1), ignore_case: true } : h.endsWith('*') ? { prefix: h.slice(0, -1), ignore_case: true } : { exact: h, ignore_case: true }),
  };
}

/** ext_authz runs only when the CUSTOM shadow RBAC matched a policy (its id starts with `istio-ext-authz`). */
export function filterEnabledMetadata(rbacFilterName: string): MetadataMatcher {
  return {
    filter: rbacFilterName,
    path: [{ key: EXT_AUTHZ_SHADOW_RULES_STAT_PREFIX + SHADOW_EFFECTIVE_POLICY_ID }],
    value: { string_match: { prefix: EXT_AUTHZ_MATCH_PREFIX } },
  };
}
