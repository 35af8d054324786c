// The V8 flags `trellis` runs node with. The launcher's shebang (src/cli/main.ts) carries them, so `trellis proxy`
// started from the npm bin gets them; whatever starts the CLI with `node main.js …` itself (`trellis up`'s supervisor,
// the benchmarks) passes NODE_FLAGS before the script. V8 reads these when it creates the isolate: setting them from
// inside the process (v8.setFlagsFromString) is too late. test/cli/node-flags.test.ts keeps the shebang and this list
// equal.
//
// --max-semi-space-size=64 (MiB; V8's default on 64-bit is 16): the proxy allocates a few KiB per request, nearly all
// of it dead by the next scavenge. A larger young generation means fewer scavenges, so fewer copies of the requests in
// flight and less work for V8's parallel GC threads, which on a pinned or busy core only add contention.
// docs/performance.md, step 12, has the same-run measurements (CPU per request about 6% lower). The space grows to
// its maximum only under allocation pressure: the proxy's RSS under the benchmark's load was the same with the flag.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/** Whether this process was started with NODE_FLAGS (on node's command line or in NODE_OPTIONS). */
export function startedWithNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'] ?? ''): boolean {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].filter(Boolean).map((f) => f.split('=')[0]!.replaceAll('_', '-')));
  return NODE_FLAGS.every((f) => given.has(f.split('=')[0]!));
}
