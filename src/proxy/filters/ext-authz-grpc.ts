// ext_authz's gRPC service (envoy.service.auth.v3.Authorization/Check): the CheckRequest built from a request, sent as a unary gRPC call over the cluster's HTTP/2 pool, and the CheckResponse read back.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { HttpHeaders } from '../http/headers.js';
import type { HttpCheckAnswer } from './ext-authz-http-client.js';

// dist/src/proxy/filters/ → the repository's proto/ (protos ship with the package, they are not copied into dist).
const AUTH_PROTO = fileURLToPath(new URL('../../../../proto/envoy/service/auth/v3/external_auth.proto', import.meta.url));
export const CHECK_METHOD_PATH = '/envoy.service.auth.v3.Authorization/Check';

let types: { request: protobuf.Type; response: protobuf.Type } | undefined;

function authTypes(): { request: protobuf.Type; response: protobuf.Type } {
  if (types) return types;
  const root = new protobuf.Root();
  // google/protobuf/*.proto are bundled in protobufjs; the proto itself is given as an absolute path.
  root.resolvePath = (_origin, target) => target;
  root.loadSync(AUTH_PROTO, { keepCase: true });
  root.resolveAll();
  types = { request: root.lookupType('envoy.service.auth.v3.CheckRequest'), response: root.lookupType('envoy.service.auth.v3.CheckResponse') };
  return types;
}

/** The attributes Envoy's CheckRequestUtils::createHttpCheck fills for an HTTP request. */
export interface CheckAttributes {
  readonly source: { readonly address: string; readonly port: number; readonly principal: string; readonly certificate?: string };
  readonly destination: { readonly address: string; readonly port: number; readonly principal: string };
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly scheme: string;
  readonly protocol: string;
  readonly size: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly contextExtensions: Readonly<Record<string, string>>;
  readonly sni?: string;
}

/** A CheckRequest framed as one gRPC message (compression flag 0, 4-byte big-endian length, protobuf). */
export function encodeCheckRequest(a: CheckAttributes): Buffer {
  const { request } = authTypes();
  const now = Date.now();
  const message = request.fromObject({
    attributes: {
      source: { address: { socket_address: { address: a.source.address, port_value: a.source.port } }, principal: a.source.principal, ...(a.source.certificate ? { certificate: a.source.certificate } : {}) },
      destination: { address: { socket_address: { address: a.destination.address, port_value: a.destination.port } }, principal: a.destination.principal },
      request: {
        time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 },
        http: { id: a.requestId, method: a.method, headers: a.headers, path: a.path, host: a.host, scheme: a.scheme, size: a.size, protocol: a.protocol },
      },
      context_extensions: a.contextExtensions,
      ...(a.sni !== undefined ? { tls_session: { sni: a.sni } } : {}),
    },
  });
  const bytes = request.encode(message).finish();
  const framed = Buffer.alloc(5 + bytes.length);
  framed.writeUInt32BE(bytes.length, 1);
  framed.set(bytes, 5);
  return framed;
}

/** One HeaderValueOption: `set` replaces, `append` adds another value, `add_if_absent` only adds a missing header. */
export interface HeaderOption {
  readonly key: string;
  readonly value: string;
  readonly action: 'set' | 'append' | 'add_if_absent';
}

/** A decoded CheckResponse, or why the call failed (Envoy treats every gRPC failure as an authorization error). */
export type GrpcCheckOutcome =
  | {
      readonly status: 'ok';
      readonly headers: readonly HeaderOption[];
      readonly headersToRemove: readonly string[];
      readonly responseHeadersToAdd: readonly HeaderOption[];
      readonly dynamicMetadata?: Record<string, unknown>;
    }
  | { readonly status: 'denied'; readonly code: number; readonly headers: readonly HeaderOption[]; readonly body: string; readonly dynamicMetadata?: Record<string, unknown> }
  | { readonly status: 'error'; readonly reason: string };

interface HeaderValueOptionMessage {
  header?: { key?: string; value?: string; raw_value?: Uint8Array };
  append?: { value?: boolean };
  append_action?: number;
}

/**
 * In CheckResponse headers `append` defaults to false (Envoy's ext_authz docs): the value replaces the header unless
 * `append: true`; without `append`, append_action ADD_IF_ABSENT (1) only adds a missing header.
 */
function headerOptions(list: HeaderValueOptionMessage[] | undefined): HeaderOption[] {
  return (list ?? []).flatMap((o): HeaderOption[] => {
    const key = (o.header?.key ?? '').toLowerCase();
    if (!key) return [];
    const value = o.header?.raw_value?.length ? Buffer.from(o.header.raw_value).toString('latin1') : (o.header?.value ?? '');
    if (o.append !== undefined && o.append !== null) return [{ key, value, action: o.append.value === true ? 'append' : 'set' }];
    return [{ key, value, action: o.append_action === 1 ? 'add_if_absent' : 'set' }];
  });
}

/** Reads the unary call's answer: HTTP 200 with one framed CheckResponse and grpc-status 0 (in trailers or trailers-only headers). */
export function decodeCheckAnswer(answer: HttpCheckAnswer, trailers: HttpHeaders | undefined): GrpcCheckOutcome {
  if (answer.status === 'error') return answer;
  if (answer.code !== 200) return { status: 'error', reason: `authorization service answered HTTP ${answer.code}` };
  const grpcStatus = String(trailers?.['grpc-status'] ?? answer.headers['grpc-status'] ?? '');
  if (grpcStatus !== '0') {
    const message = String(trailers?.['grpc-message'] ?? answer.headers['grpc-message'] ?? '');
    return { status: 'error', reason: `gRPC status ${grpcStatus || 'missing'}${message ? `: ${decodeURIComponent(message)}` : ''}` };
  }
  const body = answer.body;
  if (body.length < 5 || body[0] !== 0) return { status: 'error', reason: 'malformed gRPC response (missing or compressed message)' };
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) return { status: 'error', reason: 'truncated gRPC response' };
  let decoded: Record<string, unknown>;
  try {
    const { response } = authTypes();
    decoded = response.toObject(response.decode(body.subarray(5, 5 + length)), { longs: Number, defaults: false, arrays: true }) as Record<string, unknown>;
  } catch (err) {
    return { status: 'error', reason: `undecodable CheckResponse: ${(err as Error).message}` };
  }
  const status = decoded['status'] as { code?: number } | undefined;
  const metadata = decoded['dynamic_metadata'] as { fields?: Record<string, unknown> } | undefined;
  const dynamicMetadata = metadata ? structToJson(metadata) : undefined;
  if ((status?.code ?? 0) === 0) {
    const ok = (decoded['ok_response'] ?? {}) as { headers?: HeaderValueOptionMessage[]; headers_to_remove?: string[]; response_headers_to_add?: HeaderValueOptionMessage[] };
    return {
      status: 'ok',
      headers: headerOptions(ok.headers),
      headersToRemove: (ok.headers_to_remove ?? []).map((h) => h.toLowerCase()),
      responseHeadersToAdd: headerOptions(ok.response_headers_to_add),
      ...(dynamicMetadata ? { dynamicMetadata } : {}),
    };
  }
  const denied = (decoded['denied_response'] ?? {}) as { status?: { code?: number }; headers?: HeaderValueOptionMessage[]; body?: string };
  const code = denied.status?.code && denied.status.code >= 100 && denied.status.code < 600 ? denied.status.code : 403;
  return { status: 'denied', code, headers: headerOptions(denied.headers), body: denied.body ?? '', ...(dynamicMetadata ? { dynamicMetadata } : {}) };
}

/** google.protobuf.Struct (as protobufjs decodes it with keepCase) → plain JSON. */
function structToJson(struct: { fields?: Record<string, unknown> }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(struct.fields ?? {})) out[k] = valueToJson(v as Record<string, unknown>);
  return out;
}

/** protobufjs's bundled struct.proto names Value's fields in camelCase whatever keepCase says; accept both spellings. */
function valueToJson(v: Record<string, unknown>): unknown {
  const pick = (snake: string, camel: string): unknown => (snake in v ? v[snake] : v[camel]);
  if ('string_value' in v || 'stringValue' in v) return pick('string_value', 'stringValue');
  if ('number_value' in v || 'numberValue' in v) return pick('number_value', 'numberValue');
  if ('bool_value' in v || 'boolValue' in v) return pick('bool_value', 'boolValue');
  if ('struct_value' in v || 'structValue' in v) return structToJson(pick('struct_value', 'structValue') as { fields?: Record<string, unknown> });
  if ('list_value' in v || 'listValue' in v) return ((pick('list_value', 'listValue') as { values?: Record<string, unknown>[] }).values ?? []).map(valueToJson);
  return null;
}
