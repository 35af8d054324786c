// wrk runs of the proxy benchmark: one pinned wrk -t1 process per measurement, its summary read from the Lua done() line.
import { once } from 'node:events';
import type { ProcessSet } from './processes.js';

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Socket errors and non-2xx/3xx responses together. */
  readonly errors: number;
}

export interface WrkRun {
  readonly port: number;
  readonly connections: number;
  readonly seconds: number;
  /** A Lua script from configs.ts, written to a file. */
  readonly script: string;
}

/** Runs wrk (HTTP/1.1 keep-alive, one thread) against 127.0.0.1:port/ and returns its summary. */
export async function runWrk(processes: ProcessSet, core: string | undefined, run: WrkRun): Promise<WrkResult> {
  const args = ['-t1', `-c${run.connections}`, `-d${run.seconds}s`, '--timeout', '5s', '-s', run.script, `http://127.0.0.1:${run.port}/`];
  const child = processes.start('wrk', core, 'wrk', args);
  const [code] = (await once(child, 'exit')) as [number | null];
  const output = processes.output(child);
  const line = /^WRK_JSON (.*)$/m.exec(output)?.[1];
  if (code !== 0 || line === undefined) throw new Error(`wrk ${args.join(' ')} exited ${code}:\n${output}`);
  const s = JSON.parse(line) as { requests: number; duration_us: number; p50_us: number; p99_us: number; connect: number; read: number; write: number; status: number; timeout: number };
  const seconds = s.duration_us / 1e6;
  return {
    requests: s.requests,
    seconds,
    rps: s.requests / seconds,
    p50Us: s.p50_us,
    p99Us: s.p99_us,
    errors: s.connect + s.read + s.write + s.status + s.timeout,
  };
}
