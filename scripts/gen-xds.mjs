#!/usr/bin/env node
// Generates Trellis's Envoy/xDS protobuf artefacts from Envoy's own v3 .proto
// files, as shipped inside the npm package @grpc/grpc-js-xds (deps/envoy-api,
// deps/xds, deps/googleapis, deps/protoc-gen-validate), plus Istio's NDS name table from the
// repository's proto/istio/networking/nds/v1/nds.proto. Never edit the output:
//   src/xds/generated/envoy-descriptor.json  protobufjs reflection descriptor (codecs are compiled from it at load)
//   src/xds/generated/types.ts              TypeScript interfaces for every message and enum, field names as in the .proto
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs');

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const xdsPkg = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xdsPkg, 'deps', d));
const protobufDir = dirname(require.resolve('protobufjs/package.json'));
const repoProtoDir = join(repo, 'proto');
const outDir = join(repo, 'src', 'xds', 'generated');

// The roots we need; everything they import comes along.
export const ROOT_PROTOS = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/status/v3/csds.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/core/v3/health_check.proto',
  'envoy/config/rbac/v3/rbac.proto',
  'envoy/admin/v3/config_dump.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  // Istio's own xDS type: the DNS name table (NDS), from the repository's proto/ (not shipped by Envoy).
  'istio/networking/nds/v1/nds.proto',
];

function loadRoot() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    // protobufjs bundles the well-known google/protobuf/*.proto types itself (as "common" JSON),
    // and ships descriptor.proto as a file.
    if (target.startsWith('google/protobuf/') && protobuf.common[target.slice('google/protobuf/'.length)]) return target;
    for (const dir of [...includeDirs, protobufDir, repoProtoDir]) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(ROOT_PROTOS, { keepCase: true, alternateCommentMode: false });
  root.resolveAll();
  return root;
}

const TS_SCALARS = {
  double: 'number', float: 'number', int32: 'number', uint32: 'number', sint32: 'number',
  fixed32: 'number', sfixed32: 'number',
  // 64-bit integers decode as numbers (Trellis decodes with `longs: Number`); values above 2^53 are not used in config.
  int64: 'number', uint64: 'number', sint64: 'number', fixed64: 'number', sfixed64: 'number',
  bool: 'boolean', string: 'string', bytes: 'Uint8Array',
};

const RESERVED = new Set(['delete', 'default', 'function', 'package', 'export', 'import', 'enum', 'interface', 'in', 'new', 'class', 'var', 'let', 'const', 'switch', 'case', 'this', 'super', 'with', 'yield', 'void', 'typeof', 'instanceof', 'return', 'if', 'else', 'for', 'while', 'do', 'break', 'continue', 'try', 'catch', 'finally', 'throw', 'null', 'true', 'false', 'extends', 'implements', 'static', 'private', 'protected', 'public', 'debugger', 'await', 'async']);

function tsName(name) {
  return RESERVED.has(name) ? `${name}_` : name;
}

/** Type reference from the root, e.g. `envoy.config.core.v3.Address`. */
function refOf(reflected) {
  return reflected.fullName.slice(1).split('.').map(tsName).join('.');
}

function fieldType(field) {
  const resolved = field.resolvedType;
  let base;
  if (resolved instanceof protobuf.Enum) base = refOf(resolved);
  else if (resolved instanceof protobuf.Type) base = refOf(resolved);
  else base = TS_SCALARS[field.type] ?? 'unknown';
  if (field.map) {
    return `Record<string, ${base}>`;
  }
  return field.repeated ? `${base}[]` : base;
}

function quoteKey(name) {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

function emitNamespace(ns, indent, out) {
  const pad = '  '.repeat(indent);
  const nested = ns.nestedArray ?? [];
  for (const child of nested) {
    if (child instanceof protobuf.Service) continue;
    if (child instanceof protobuf.Enum) {
      const names = Object.keys(child.values).map((n) => JSON.stringify(n));
      // Decoded enums are names (`enums: String`); numbers are accepted on input.
      out.push(`${pad}export type ${tsName(child.name)} = ${names.join(' | ')} | number;`);
    } else if (child instanceof protobuf.Type) {
      out.push(`${pad}/** ${child.fullName.slice(1)} */`);
      out.push(`${pad}export interface ${tsName(child.name)} {`);
      for (const field of child.fieldsArray) {
        out.push(`${pad}  ${quoteKey(field.name)}?: ${fieldType(field)};`);
      }
      out.push(`${pad}}`);
      const inner = (child.nestedArray ?? []).filter((n) => !(n instanceof protobuf.Service) && !(n instanceof protobuf.Field) && !(n instanceof protobuf.OneOf));
      if (inner.length > 0) {
        out.push(`${pad}export namespace ${tsName(child.name)} {`);
        emitNamespace(child, indent + 1, out);
        out.push(`${pad}}`);
      }
    } else if (child instanceof protobuf.Namespace) {
      out.push(`${pad}export namespace ${tsName(child.name)} {`);
      emitNamespace(child, indent + 1, out);
      out.push(`${pad}}`);
    }
  }
}

const snakeCase = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * protobufjs's built-in copy of google/protobuf/struct.proto names Value's fields in camelCase
 * (`stringValue`); the .proto says `string_value`, as Envoy's YAML does. Restore the .proto names
 * so every message follows the same convention.
 */
function restoreProtoFieldNames(descriptor) {
  const protobufNs = descriptor.nested?.google?.nested?.protobuf?.nested ?? {};
  for (const message of Object.values(protobufNs)) {
    if (!message.fields) continue;
    message.fields = Object.fromEntries(Object.entries(message.fields).map(([name, field]) => [snakeCase(name), field]));
    for (const oneof of Object.values(message.oneofs ?? {})) oneof.oneof = oneof.oneof.map(snakeCase);
  }
  return descriptor;
}

function main() {
  const started = Date.now();
  const descriptor = restoreProtoFieldNames(loadRoot().toJSON({ keepComments: false }));
  const root = protobuf.Root.fromJSON(descriptor);
  root.resolveAll();
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'envoy-descriptor.json'), JSON.stringify(descriptor));

  const lines = [
    '// GENERATED by scripts/gen-xds.mjs from the .proto files in @grpc/grpc-js-xds/deps. Do not edit.',
    '// Every message is an interface whose field names are the .proto names (snake_case), all optional.',
    '/* eslint-disable */',
  ];
  emitNamespace(root, 0, lines);
  writeFileSync(join(outDir, 'types.ts'), lines.join('\n') + '\n');

  let messages = 0;
  const count = (ns) => {
    for (const c of ns.nestedArray ?? []) {
      if (c instanceof protobuf.Type) messages++;
      if (c instanceof protobuf.Namespace) count(c);
    }
  };
  count(root);
  console.log(`gen-xds: ${ROOT_PROTOS.length} root protos, ${messages} messages -> ${outDir} (${Date.now() - started} ms)`);
}

main();
