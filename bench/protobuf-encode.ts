// Encode and decode 10,000 Istio-like Clusters with protobufjs (as Trellis uses it) against protobuf-es and ts-proto.
//
// The measurement behind Trellis's protobuf library (docs/xds.md, "Choosing the protobuf library").
// Every library starts from its own idiomatic plain object for the same Cluster, made outside the
// timing by decoding protobufjs's bytes with that library and keeping only the fields that are set:
//   protobufjs   snake_case object, enums by name       encode = Type.fromObject + encode   decode = decode + toObject (src/xds/codec.ts)
//   protobuf-es  MessageInitShape (camelCase, numbers)  encode = create + toBinary          decode = fromBinary
//   ts-proto     its generated interface (camelCase)    encode = fromPartial + encode       decode = decode
// The TLS context inside each Cluster's transport socket is an Any packed once by the fixture;
// every library copies those bytes. The comparison libraries are no Trellis dependency:
// bench/protobuf-encode/setup.mjs installs them and generates their code in .bench/protobuf-libs/.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { decodeMessage, encodeMessage, messageType, packAny } from '../src/xds/codec.js';
import { CLUSTER } from '../src/xds/type-urls.js';
import { istioLikeCluster } from './cluster-fixture.js';
import { median } from './report.js';
import type { envoy } from '../src/xds/generated/types.js';

type DiscoveryResponse = envoy.service.discovery.v3.DiscoveryResponse;

const CLUSTERS = 10_000;
const ROUNDS = 7; // per-library encode/decode rounds kept (median), after WARMUP rounds
const RESPONSE_ROUNDS = 5; // the issue's figure: median of 5
const WARMUP = 2;

const CLUSTER_MESSAGE = 'envoy.config.cluster.v3.Cluster';
const RESPONSE_MESSAGE = 'envoy.service.discovery.v3.DiscoveryResponse';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const libsDir = join(repo, '.bench', 'protobuf-libs', 'gen');

// What the benchmark uses of each generated library (see the entry modules written by setup.mjs).
interface EsSchema {
  readonly typeName: string;
}
interface EsMessage {
  readonly $typeName: string;
}
interface EsApi {
  create(schema: EsSchema, init?: object): EsMessage;
  toBinary(schema: EsSchema, message: EsMessage): Uint8Array;
  fromBinary(schema: EsSchema, bytes: Uint8Array): EsMessage;
  anyPack(schema: EsSchema, message: EsMessage): EsMessage;
  ClusterSchema: EsSchema;
  DiscoveryResponseSchema: EsSchema;
  version: string;
}
interface TsProtoMessageFns {
  encode(message: object): { finish(): Uint8Array };
  decode(bytes: Uint8Array): object;
  fromPartial(object: object): object;
}
interface TsProtoApi {
  Cluster: TsProtoMessageFns;
  DiscoveryResponse: TsProtoMessageFns;
  version: string;
}

async function importLibrary<T>(file: string): Promise<T> {
  const path = join(libsDir, file);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run this benchmark with \`npm run bench -- protobuf-encode\`, which sets up .bench/protobuf-libs/`);
  }
  return (await import(pathToFileURL(path).href)) as T;
}

/**
 * A decoded message as the sparse plain object a developer would write: only the fields that are
 * set (decoders fill in every default), and for protobuf-es without the `$typeName` markers.
 * Objects are kept even when empty: an empty message (`ads: {}`) is a value.
 */
function sparse(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sparse);
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (key === '$typeName' || isDefault(field)) continue;
    out[key] = sparse(field);
  }
  return out;
}

function isDefault(value: unknown): boolean {
  if (value === undefined || value === '' || value === 0 || value === 0n || value === false) return true;
  if (Array.isArray(value) || value instanceof Uint8Array) return value.length === 0;
  // protobuf-es's unset oneof
  return typeof value === 'object' && value !== null && 'case' in value && (value as { case: unknown }).case === undefined;
}

const collect = (globalThis as { gc?: () => void }).gc;
let sink = 0; // results feed this so no work can be skipped

function timeOnce(work: () => number): number {
  collect?.();
  const started = performance.now();
  sink += work();
  return performance.now() - started;
}

interface Case {
  label: string;
  work: () => number;
  times: number[];
}

/** Runs the cases round-robin (so drift on a shared machine hits all alike); returns median ms per case. */
function measure(cases: Case[], rounds: number): Map<string, number> {
  for (let round = 0; round < WARMUP + rounds; round++) {
    for (const c of cases) {
      const ms = timeOnce(c.work);
      if (round >= WARMUP) c.times.push(ms);
    }
  }
  return new Map(cases.map((c) => [c.label, median(c.times)]));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Why `produced` differs from protobufjs's bytes, or undefined when it does not; throws when the content differs. */
function compareBytes(library: string, what: string, reference: readonly Uint8Array[], produced: readonly Uint8Array[]): string | undefined {
  let reordered = 0;
  for (let i = 0; i < reference.length; i++) {
    if (sameBytes(reference[i]!, produced[i]!)) continue;
    // Same fields and values written in another order still decode to the same message: protobufjs
    // re-encodes it (in field-number order) to the reference bytes.
    const canonical = encodeMessage(what, decodeMessage(what, produced[i]!));
    if (!sameBytes(reference[i]!, canonical)) {
      throw new Error(`${library}: ${what} #${i} does not encode the same message as protobufjs (${produced[i]!.length} vs ${reference[i]!.length} bytes)`);
    }
    reordered++;
  }
  return reordered === 0 ? undefined : `NOT identical for ${reordered} of ${reference.length}: same length and content, fields written in .proto declaration order instead of field-number order`;
}

/** Checks a DiscoveryResponse against protobufjs's: the same envelope, and each Any's Cluster as compareBytes checks it. */
function compareResponse(library: string, reference: Uint8Array, produced: Uint8Array): string {
  if (sameBytes(reference, produced)) return 'identical bytes';
  const ours = decodeMessage<DiscoveryResponse>(RESPONSE_MESSAGE, reference);
  const theirs = decodeMessage<DiscoveryResponse>(RESPONSE_MESSAGE, produced);
  const values = (r: DiscoveryResponse): Uint8Array[] => (r.resources ?? []).map((a) => a.value ?? new Uint8Array());
  const envelope = encodeMessage(RESPONSE_MESSAGE, { ...theirs, resources: ours.resources });
  if (!sameBytes(reference, envelope) || compareBytes(library, CLUSTER_MESSAGE, values(ours), values(theirs)) === undefined) {
    throw new Error(`${library}: the DiscoveryResponse differs from protobufjs's beyond the field order of its Clusters`);
  }
  return 'same length and content, Cluster fields in another order';
}

const sumLengths = (list: readonly Uint8Array[]): number => list.reduce((n, b) => n + b.length, 0);

async function main(): Promise<void> {
  const es = await importLibrary<EsApi>('es-api.js');
  const tsProto = await importLibrary<TsProtoApi>('ts-proto-api.js');
  const protobufjsVersion = (createRequire(import.meta.url)('protobufjs/package.json') as { version: string }).version;

  // Inputs, each library's own shape of the same Clusters, made outside the timing.
  const plain = Array.from({ length: CLUSTERS }, (_, i) => istioLikeCluster(i));
  const reference = plain.map((c) => encodeMessage(CLUSTER_MESSAGE, c));
  const esInits = reference.map((b) => sparse(es.fromBinary(es.ClusterSchema, b)) as object);
  const tsProtoObjects = reference.map((b) => sparse(tsProto.Cluster.decode(b)) as object);
  const clusterType = messageType(CLUSTER_MESSAGE);

  const libraries = [
    { name: `protobufjs ${protobufjsVersion}`, how: 'fromObject+encode, as src/xds/codec.ts', encodeAll: () => plain.map((c) => encodeMessage(CLUSTER_MESSAGE, c)) },
    { name: `@bufbuild/protobuf ${es.version}`, how: 'create+toBinary', encodeAll: () => esInits.map((init) => es.toBinary(es.ClusterSchema, es.create(es.ClusterSchema, init))) },
    { name: `ts-proto ${tsProto.version}`, how: 'fromPartial+encode', encodeAll: () => tsProtoObjects.map((o) => tsProto.Cluster.encode(tsProto.Cluster.fromPartial(o)).finish()) },
  ];
  const [pbjs, bufEs, tsp] = libraries.map((l) => l.name) as [string, string, string];

  // Bytes: each library's output must be protobufjs's; a difference other than field order is an error.
  // protobufjs's own decode must give an object that encodes back to the same bytes.
  const roundTrip = reference.map((b) => encodeMessage(CLUSTER_MESSAGE, decodeMessage(CLUSTER_MESSAGE, b)));
  if (compareBytes('protobufjs decode+encode', CLUSTER_MESSAGE, reference, roundTrip)) throw new Error('protobufjs does not round-trip its own bytes');
  const bytes = new Map(libraries.map((l) => {
    const produced = l.encodeAll();
    return [l.name, { total: sumLengths(produced), difference: compareBytes(l.name, CLUSTER_MESSAGE, reference, produced) }];
  }));

  // Encode alone, on messages built beforehand: how much of the encode figure is building the message.
  const ENCODE_ONLY = ' (encode only, message built beforehand)';
  const pbjsMessages = plain.map((c) => clusterType.fromObject(c));
  const esMessages = esInits.map((init) => es.create(es.ClusterSchema, init));
  const encode = measure([
    ...libraries.map((l): Case => ({ label: l.name, times: [], work: () => sumLengths(l.encodeAll()) })),
    { label: pbjs + ENCODE_ONLY, times: [], work: () => sumLengths(pbjsMessages.map((m) => clusterType.encode(m).finish())) },
    { label: bufEs + ENCODE_ONLY, times: [], work: () => sumLengths(esMessages.map((m) => es.toBinary(es.ClusterSchema, m))) },
  ], ROUNDS);
  const DECODE_MESSAGE_ONLY = `${pbjs} (decode only, no toObject)`;
  const decode = measure([
    { label: pbjs, times: [], work: () => reference.map((b) => decodeMessage(CLUSTER_MESSAGE, b)).length },
    { label: DECODE_MESSAGE_ONLY, times: [], work: () => reference.map((b) => clusterType.decode(b)).length },
    { label: bufEs, times: [], work: () => reference.map((b) => es.fromBinary(es.ClusterSchema, b)).length },
    { label: tsp, times: [], work: () => reference.map((b) => tsProto.Cluster.decode(b)).length },
  ], ROUNDS);

  // The issue's figure: one DiscoveryResponse carrying all Clusters as Any (pack each, then encode).
  const response = { version_info: '1', type_url: CLUSTER, nonce: '1' };
  const responseBytes: Record<string, () => Uint8Array> = {
    [pbjs]: () => encodeMessage(RESPONSE_MESSAGE, { ...response, resources: plain.map((c) => packAny(CLUSTER_MESSAGE, c)) }),
    [bufEs]: () => es.toBinary(es.DiscoveryResponseSchema, es.create(es.DiscoveryResponseSchema, {
      versionInfo: response.version_info, typeUrl: response.type_url, nonce: response.nonce,
      resources: esInits.map((init) => es.anyPack(es.ClusterSchema, es.create(es.ClusterSchema, init))),
    })),
    [tsp]: () => tsProto.DiscoveryResponse.encode(tsProto.DiscoveryResponse.fromPartial({
      versionInfo: response.version_info, typeUrl: response.type_url, nonce: response.nonce,
      resources: tsProtoObjects.map((o) => ({ typeUrl: CLUSTER, value: tsProto.Cluster.encode(tsProto.Cluster.fromPartial(o)).finish() })),
    })).finish(),
  };
  const referenceResponse = responseBytes[pbjs]!();
  const responseNotes = new Map(libraries.map((l) => [l.name, l.name === pbjs ? 'the reference' : compareResponse(l.name, referenceResponse, responseBytes[l.name]!())]));
  const respond = measure(libraries.map((l) => ({ label: l.name, times: [], work: () => responseBytes[l.name]!().length })), RESPONSE_ROUNDS);

  // Report: one line per figure, each with its ratio to protobufjs measured in this run.
  const width = Math.max(...[...encode.keys(), ...decode.keys()].map((k) => k.length));
  const fmt = (ms: number): string => `${ms.toFixed(1).padStart(8)} ms`;
  const line = (what: string, label: string, ms: number, baseline: number, note = ''): void => {
    const ratio = label === pbjs ? '1.00x (baseline)   ' : `${(ms / baseline).toFixed(2)}x protobufjs`;
    console.log(`${what.padEnd(8)} ${label.padEnd(width)} ${fmt(ms)}  ${ratio}${note}`);
  };
  console.log(`protobuf-encode: ${CLUSTERS} Istio-like Clusters, median of ${ROUNDS} rounds after ${WARMUP} warm-up, node ${process.version}, ${availableParallelism()} CPUs${collect ? ', gc between rounds' : ''}`);
  for (const l of libraries) line('encode', l.name, encode.get(l.name)!, encode.get(pbjs)!, `  ${l.how}`);
  for (const label of [pbjs + ENCODE_ONLY, bufEs + ENCODE_ONLY]) line('encode', label, encode.get(label)!, encode.get(pbjs)!);
  for (const [label, ms] of decode) line('decode', label, ms, decode.get(pbjs)!, label === pbjs ? '  decode+toObject, as src/xds/codec.ts' : '');
  for (const l of libraries) {
    const { total, difference } = bytes.get(l.name)!;
    console.log(`${'bytes'.padEnd(8)} ${l.name.padEnd(width)} ${String(total).padStart(11)}  ${l.name === pbjs ? 'the reference' : (difference ?? `identical to protobufjs for all ${CLUSTERS} Clusters`)}`);
  }
  for (const l of libraries) {
    line('response', l.name, respond.get(l.name)!, respond.get(pbjs)!, `  DiscoveryResponse of ${CLUSTERS} Clusters as Any (pack each + encode), median of ${RESPONSE_ROUNDS}; ${referenceResponse.length} bytes, ${responseNotes.get(l.name)!}`);
  }
  if (sink < 0) console.log(sink);
}

await main();
