#!/usr/bin/env node
// Installs the protobuf libraries that bench/protobuf-encode.ts compares with protobufjs, and
// generates their code from the same Envoy .proto files that `npm run gen` uses, all inside the
// gitignored .bench/protobuf-libs/ (none of this is a Trellis dependency). Runs again only when
// this script or the pinned versions change. Uses only Node built-ins.
//
// - @bufbuild/protobuf (protobuf-es) with @bufbuild/protoc-gen-es;
// - ts-proto, whose generated TypeScript is compiled with Trellis's own tsc;
// - the compiler is buf (@bufbuild/buf ships it as a binary inside the npm package). protoc is not
//   used: its npm wrappers download the binary at install time, which this machine cannot do.
// - google-protobuf is left out: its code generator (protoc-gen-js) is likewise a binary that its
//   npm package downloads at install time.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(repo, '.bench', 'protobuf-libs');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const PACKAGES = {
  '@bufbuild/buf': '1.75.0',
  '@bufbuild/protobuf': '2.17.0',
  '@bufbuild/protoc-gen-es': '2.17.0',
  'ts-proto': '2.18.0',
};

// What the benchmark encodes: Cluster (and the TLS context inside it), and DiscoveryResponse.
const ROOT_PROTOS = [
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/service/discovery/v3/discovery.proto',
];

const BUF_GEN = `version: v2
plugins:
  - local: ./node_modules/.bin/protoc-gen-es
    out: gen/es
    include_imports: true
    opt: [target=js, import_extension=js]
  - local: ./node_modules/.bin/protoc-gen-ts_proto
    out: gen/ts-proto
    include_imports: true
    opt: [esModuleSupport=true, importSuffix=.js, forceLong=number, outputServices=false]
`;

// The entry modules the benchmark imports: one place that names what it uses from each library.
const ES_ENTRY = `export { create, toBinary, fromBinary } from '@bufbuild/protobuf';
export { anyPack } from '@bufbuild/protobuf/wkt';
export { ClusterSchema } from './es/envoy/config/cluster/v3/cluster_pb.js';
export { DiscoveryResponseSchema } from './es/envoy/service/discovery/v3/discovery_pb.js';
export const version = ${JSON.stringify(PACKAGES['@bufbuild/protobuf'])};
`;
const TS_PROTO_ENTRY = `export { Cluster } from './ts-proto-js/envoy/config/cluster/v3/cluster.js';
export { DiscoveryResponse } from './ts-proto-js/envoy/service/discovery/v3/discovery.js';
export const version = ${JSON.stringify(PACKAGES['ts-proto'])};
`;

// Redo everything when this script or the .proto source (grpc-js-xds's version) changes.
const require = createRequire(join(repo, 'package.json'));
const xdsPackage = require.resolve('@grpc/grpc-js-xds/package.json');
const stamp = createHash('sha256').update(readFileSync(fileURLToPath(import.meta.url))).update(readFileSync(xdsPackage)).digest('hex');
const stampFile = join(dir, 'ready.stamp');
if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) process.exit(0);

function run(command, args, what) {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) {
    process.stderr.write(result.stdout ?? '');
    process.stderr.write(result.stderr ?? '');
    console.error(`protobuf-libs: ${what} failed (exit ${result.status ?? result.signal ?? result.error?.message})`);
    process.exit(1);
  }
  console.log(`protobuf-libs: ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

console.log(`protobuf-libs: setting up ${dir} (first run or setup changed)`);
rmSync(stampFile, { force: true });
rmSync(join(dir, 'gen'), { recursive: true, force: true });
rmSync(join(dir, 'proto'), { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'trellis-bench-protobuf-libs', private: true, type: 'module', dependencies: PACKAGES }, null, 2) + '\n');
run(npm, ['install', '--no-audit', '--no-fund', '--loglevel=error'], `npm install ${Object.entries(PACKAGES).map(([n, v]) => `${n}@${v}`).join(' ')}`);

// The same .proto tree as scripts/gen-xds.mjs, from @grpc/grpc-js-xds/deps; buf brings the
// google/protobuf well-known types itself.
const deps = join(dirname(xdsPackage), 'deps');
const proto = join(dir, 'proto');
mkdirSync(proto);
for (const [name, target] of [['envoy', 'envoy-api/envoy'], ['xds', 'xds/xds'], ['udpa', 'xds/udpa'], ['google', 'googleapis/google']]) {
  symlinkSync(join(deps, target), join(proto, name), 'dir');
}
// The protoc-gen-validate copy in grpc-js-xds is older than its Envoy API: Envoy's protos set
// `(validate.rules).string.ignore_empty`, which that validate.proto lacks. protobufjs ignores
// options; buf resolves them, so the copy here gets the field (an annotation only: it changes no
// Envoy message or byte that the benchmark encodes).
cpSync(join(deps, 'protoc-gen-validate', 'validate'), join(proto, 'validate'), { recursive: true });
const validateProto = join(proto, 'validate', 'validate.proto');
const validate = readFileSync(validateProto, 'utf8'); // CRLF line endings
const stringRulesEnd = /( {2}optional bool strict = 25 \[default = true\];)(\r?\n)\}/;
if (!validate.includes('ignore_empty')) {
  if (!stringRulesEnd.test(validate)) {
    console.error(`protobuf-libs: ${validateProto}: StringRules no longer ends with field 25 "strict"; update the patch above`);
    process.exit(1);
  }
  writeFileSync(validateProto, validate.replace(stringRulesEnd, '$1$2  optional bool ignore_empty = 26;$2}'));
}

writeFileSync(join(dir, 'buf.yaml'), 'version: v2\nmodules:\n  - path: proto\n');
writeFileSync(join(dir, 'buf.gen.yaml'), BUF_GEN);
run(join(dir, 'node_modules', '.bin', 'buf'), ['generate', ...ROOT_PROTOS.flatMap((p) => ['--path', `proto/${p}`])], `buf generate (protoc-gen-es, protoc-gen-ts_proto) for ${ROOT_PROTOS.length} root protos and their imports`);

writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
  compilerOptions: {
    target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: false, skipLibCheck: true,
    typeRoots: [join(repo, 'node_modules', '@types')], types: ['node'],
    rootDir: 'gen/ts-proto', outDir: 'gen/ts-proto-js',
  },
  include: ['gen/ts-proto/**/*.ts'],
}, null, 2) + '\n');
run(join(repo, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], 'tsc (ts-proto output)');

writeFileSync(join(dir, 'gen', 'es-api.js'), ES_ENTRY);
writeFileSync(join(dir, 'gen', 'ts-proto-api.js'), TS_PROTO_ENTRY);
writeFileSync(stampFile, stamp);
console.log('protobuf-libs: ready');
