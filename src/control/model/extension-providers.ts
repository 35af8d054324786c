// Reads Istio's meshConfig `extensionProviders` (YAML/JSON already parsed) into MeshConfig.extensionProviders, with
// every problem and its field path, as Istio's mesh config validation (validateExtensionProvider) reports them.
import type { EnvoyExternalAuthorizationHttpProvider, ExtensionProvider } from './mesh-config.js';

const HTTP_FIELDS = new Set([
  'service', 'port', 'timeout', 'pathPrefix', 'failOpen', 'statusOnError', 'includeRequestHeadersInCheck', 'includeHeadersInCheck',
  'includeAdditionalHeadersInCheck', 'includeRequestBodyInCheck', 'headersToUpstreamOnAllow', 'headersToDownstreamOnAllow',
  'headersToDownstreamOnDeny',
]);
/** Istio's other provider kinds: accepted here (a policy naming one gets a precise "not supported"), not translated. */
const OTHER_KINDS = [
  'envoyExtAuthzGrpc', 'zipkin', 'lightstep', 'datadog', 'stackdriver', 'opencensus', 'skywalking', 'opentelemetry', 'prometheus',
  'envoyFileAccessLog', 'envoyHttpAls', 'envoyTcpAls', 'envoyOtelAls', 'sds',
];

export interface ExtensionProvidersResult {
  readonly providers: ExtensionProvider[];
  /** `extensionProviders[1].envoyExtAuthzHttp.port: …` */
  readonly problems: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseExtensionProviders(value: unknown, path = 'extensionProviders'): ExtensionProvidersResult {
  const problems: string[] = [];
  const providers: ExtensionProvider[] = [];
  if (value === undefined || value === null) return { providers, problems };
  if (!Array.isArray(value)) return { providers, problems: [`${path}: expected a list of providers`] };
  const names = new Set<string>();
  value.forEach((item, i) => {
    const at = `${path}[${i}]`;
    if (!isObj(item)) return void problems.push(`${at}: expected an object`);
    const raw = item['name'];
    let name: string | undefined;
    if (typeof raw !== 'string' || raw === '') problems.push(`${at}.name: extension provider name must not be empty`);
    else if (names.has(raw)) problems.push(`${at}.name: extension provider name must be unique, found duplicate: ${raw}`);
    else names.add((name = raw));
    const kinds = Object.keys(item).filter((k) => k !== 'name');
    if (kinds.length !== 1) return void problems.push(`${at}: exactly one provider kind expected (envoyExtAuthzHttp, …), found ${kinds.length === 0 ? 'none' : kinds.join(', ')}`);
    const kind = kinds[0]!;
    if (kind === 'envoyExtAuthzHttp') {
      const http = parseHttpProvider(item[kind], `${at}.envoyExtAuthzHttp`, problems);
      if (http && name !== undefined) providers.push({ name, envoyExtAuthzHttp: http });
    } else if (OTHER_KINDS.includes(kind)) {
      if (kind === 'envoyFileAccessLog') {
        const file = parseFileAccessLog(item[kind], `${at}.envoyFileAccessLog`, problems);
        if (file && name !== undefined) providers.push({ name, envoyFileAccessLog: file });
        return;
      }
      if (kind === 'zipkin' || kind === 'opentelemetry') {
        // Tracing providers (translate/telemetry/tracing.ts reads them): Istio requires service and port.
        const body = item[kind];
        if (!isObj(body)) return void problems.push(`${at}.${kind}: expected an object`);
        if (typeof body['service'] !== 'string' || body['service'] === '') problems.push(`${at}.${kind}.service: service must not be empty`);
        const port = body['port'];
        if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${at}.${kind}.port: port must be in the range [1, 65535], found: ${JSON.stringify(port)}`);
        else if (name !== undefined) providers.push({ name, [kind]: body });
        return;
      }
      if (name !== undefined && isObj(item[kind])) providers.push({ name, ...(kind === 'envoyExtAuthzGrpc' ? { envoyExtAuthzGrpc: item[kind] as Obj } : {}) });
    } else {
      problems.push(`${at}.${kind}: unknown extension provider kind`);
    }
  });
  return { providers, problems };
}

function parseHttpProvider(value: unknown, at: string, problems: string[]): EnvoyExternalAuthorizationHttpProvider | undefined {
  if (!isObj(value)) return void problems.push(`${at}: expected an object`);
  const before = problems.length;
  for (const k of Object.keys(value)) if (!HTTP_FIELDS.has(k)) problems.push(`${at}.${k}: unknown field`);
  const service = value['service'];
  if (typeof service !== 'string' || service === '') problems.push(`${at}.service: service must not be empty`);
  const port = value['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${at}.port: port must be in the range [1, 65535], found: ${JSON.stringify(port)}`);
  const strings = (k: string) => {
    const v = value[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) return void problems.push(`${at}.${k}: expected a list of strings`);
    return v as string[];
  };
  const str = (k: string) => {
    const v = value[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return void problems.push(`${at}.${k}: expected a string`);
    return v;
  };
  const timeout = str('timeout');
  const pathPrefix = str('pathPrefix');
  const statusOnError = value['statusOnError'] === undefined ? undefined : String(value['statusOnError']);
  const failOpen = value['failOpen'];
  if (failOpen !== undefined && typeof failOpen !== 'boolean') problems.push(`${at}.failOpen: expected true or false`);
  // includeHeadersInCheck is Istio's deprecated spelling, used only when includeRequestHeadersInCheck is absent.
  const include = strings('includeRequestHeadersInCheck') ?? strings('includeHeadersInCheck');
  const additional = value['includeAdditionalHeadersInCheck'];
  if (additional !== undefined && (!isObj(additional) || Object.values(additional).some((v) => typeof v !== 'string'))) {
    problems.push(`${at}.includeAdditionalHeadersInCheck: expected a map of header name to value`);
  }
  const body = value['includeRequestBodyInCheck'];
  if (body !== undefined && !isObj(body)) problems.push(`${at}.includeRequestBodyInCheck: expected an object`);
  const upstream = strings('headersToUpstreamOnAllow');
  const downstreamAllow = strings('headersToDownstreamOnAllow');
  const downstreamDeny = strings('headersToDownstreamOnDeny');
  if (problems.length > before) return undefined;
  return {
    service: service as string,
    port: port as number,
    ...(timeout !== undefined ? { timeout } : {}),
    ...(pathPrefix !== undefined ? { pathPrefix } : {}),
    ...(failOpen !== undefined ? { failOpen: failOpen as boolean } : {}),
    ...(statusOnError !== undefined ? { statusOnError } : {}),
    ...(include ? { includeRequestHeadersInCheck: include } : {}),
    ...(additional !== undefined ? { includeAdditionalHeadersInCheck: additional as Record<string, string> } : {}),
    ...(isObj(body) ? { includeRequestBodyInCheck: body as EnvoyExternalAuthorizationHttpProvider['includeRequestBodyInCheck'] } : {}),
    ...(upstream ? { headersToUpstreamOnAllow: upstream } : {}),
    ...(downstreamAllow ? { headersToDownstreamOnAllow: downstreamAllow } : {}),
    ...(downstreamDeny ? { headersToDownstreamOnDeny: downstreamDeny } : {}),
  };
}

/** Istio's EnvoyFileAccessLogProvider: `path` (empty: /dev/stdout), `logFormat.text` or `logFormat.labels`, not both. */
function parseFileAccessLog(value: unknown, at: string, problems: string[]): NonNullable<ExtensionProvider['envoyFileAccessLog']> | undefined {
  if (value === null || value === undefined) return {};
  if (!isObj(value)) return void problems.push(`${at}: expected an object`);
  const before = problems.length;
  for (const k of Object.keys(value)) if (k !== 'path' && k !== 'logFormat') problems.push(`${at}.${k}: unknown field`);
  const path = value['path'];
  if (path !== undefined && typeof path !== 'string') problems.push(`${at}.path: expected a string`);
  const format = value['logFormat'];
  let logFormat: { text?: string; labels?: Obj } | undefined;
  if (format !== undefined && format !== null) {
    if (!isObj(format)) problems.push(`${at}.logFormat: expected an object with text or labels`);
    else {
      const { text, labels } = format;
      if (text !== undefined && labels !== undefined) problems.push(`${at}.logFormat: only one of text and labels may be set`);
      if (text !== undefined && typeof text !== 'string') problems.push(`${at}.logFormat.text: expected a string`);
      if (labels !== undefined && !isObj(labels)) problems.push(`${at}.logFormat.labels: expected a map of JSON keys to format strings`);
      for (const k of Object.keys(format)) if (k !== 'text' && k !== 'labels') problems.push(`${at}.logFormat.${k}: unknown field`);
      logFormat = { ...(typeof text === 'string' ? { text } : {}), ...(isObj(labels) ? { labels } : {}) };
    }
  }
  if (problems.length > before) return undefined;
  return { ...(typeof path === 'string' && path !== '' ? { path } : {}), ...(logFormat ? { logFormat } : {}) };
}
