// A proxyless @grpc/grpc-js-xds client in its own process, driven over stdin/stdout by proxyless-client.ts.
// grpc-js-xds keeps process-wide state (its XdsClient, and ref'd priority-failover timers it never clears on
// channel close), so a test that ran it in-process could not exit reliably; a child process is simply killed.
// Protocol: each stdin line "whoami" → one stdout line of JSON {answer} or {error}.
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';

const [target, path] = process.argv.slice(2);
if (!target || !path || !process.env['GRPC_XDS_BOOTSTRAP_CONFIG']) {
  process.stderr.write('usage: GRPC_XDS_BOOTSTRAP_CONFIG=... proxyless-client-main <xds:///target> <method path>\n');
  process.exit(2);
}
const grpcJsXds = await import('@grpc/grpc-js-xds');
grpcJsXds.register();
const raw = (b: Buffer): Buffer => b;
const client = new grpc.Client(target, grpc.credentials.createInsecure());

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'whoami') return;
  client.makeUnaryRequest(path, raw, raw, Buffer.alloc(0), { deadline: Date.now() + 5_000 }, (err, reply) => {
    process.stdout.write(`${JSON.stringify(err ? { error: `${err.code}: ${err.details}` } : { answer: reply?.toString() ?? '' })}\n`);
  });
});
process.stdin.on('end', () => process.exit(0));
