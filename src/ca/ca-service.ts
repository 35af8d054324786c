// The gRPC definition of istio.v1.auth.IstioCertificateService, loaded once from proto/istio/v1/auth/ca.proto and shared by the CA server and its clients.
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export const CA_SERVICE_NAME = 'istio.v1.auth.IstioCertificateService';

// dist/src/ca/ → the repository's proto/ (the proto ships with the package, it is not copied into dist).
const CA_PROTO = fileURLToPath(new URL('../../../proto/istio/v1/auth/ca.proto', import.meta.url));

/** google.protobuf.Value as protobufjs's bundled struct.proto names its fields (camelCase, whatever keepCase says). */
export interface StructValue {
  nullValue?: string | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: Struct;
  listValue?: { values?: StructValue[] };
}

export interface Struct {
  fields?: Record<string, StructValue>;
}

export interface IstioCertificateRequest {
  /** PEM-encoded PKCS#10 certificate request. */
  csr: string;
  /** Requested validity in seconds; 0 or absent: the CA's default. */
  validity_duration?: number;
  metadata?: Struct;
}

export interface IstioCertificateResponse {
  /** Leaf, intermediates, root, then any other trusted root (rotation overlap). */
  cert_chain: string[];
}

let types: { request: protobuf.Type; response: protobuf.Type } | undefined;

function caTypes(): { request: protobuf.Type; response: protobuf.Type } {
  if (types) return types;
  const root = new protobuf.Root();
  // Imports are taken as given: google/protobuf/struct.proto is bundled in protobufjs ("common"), the root is an absolute path.
  root.resolvePath = (_origin, target) => target;
  root.loadSync(CA_PROTO, { keepCase: true });
  root.resolveAll();
  types = {
    request: root.lookupType('istio.v1.auth.IstioCertificateRequest'),
    response: root.lookupType('istio.v1.auth.IstioCertificateResponse'),
  };
  return types;
}

const CONVERSION: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true };

function serializer(type: () => protobuf.Type): (value: object) => Buffer {
  return (value) => {
    const t = type();
    const bytes = t.encode(t.fromObject(value as Record<string, unknown>)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<T>(type: () => protobuf.Type): (bytes: Buffer) => T {
  return (bytes) => {
    const t = type();
    return t.toObject(t.decode(bytes), CONVERSION) as T;
  };
}

/** CreateCertificate with protobuf (de)serialisers; usable by grpc.Server.addService and grpc.makeGenericClientConstructor. */
export const CA_SERVICE_DEFINITION = {
  CreateCertificate: {
    path: `/${CA_SERVICE_NAME}/CreateCertificate`,
    requestStream: false,
    responseStream: false,
    requestSerialize: serializer(() => caTypes().request) as (value: IstioCertificateRequest) => Buffer,
    requestDeserialize: deserializer<IstioCertificateRequest>(() => caTypes().request),
    responseSerialize: serializer(() => caTypes().response) as (value: IstioCertificateResponse) => Buffer,
    responseDeserialize: deserializer<IstioCertificateResponse>(() => caTypes().response),
    originalName: 'createCertificate',
  },
} satisfies grpc.ServiceDefinition;

/** A flat string map as a google.protobuf.Struct (Istio's request metadata: WorkloadName, WorkloadIP, ClusterID). */
export function stringStruct(values: Readonly<Record<string, string>>): Struct {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(values)) fields[k] = { stringValue: v };
  return { fields };
}

/** The string fields of a Struct (others ignored). */
export function structStrings(struct: Struct | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) if (typeof v.stringValue === 'string') out[k] = v.stringValue;
  return out;
}
