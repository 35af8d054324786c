// The chaos suite's load generator, run in its own process (forked by harness.ts) so its timing does not depend on the
// test process, which also hosts the control plane: requests at a fixed rate over a keep-alive agent, every outcome kept.
//
// Protocol over the IPC channel: the parent sends one LoadOptions; the child answers { type: 'started' }, sends
// requests until durationMs passed (or a { type: 'stop' } arrives), waits for the requests in flight, then sends
// { type: 'done', records, skipped } and exits.
import { Agent, request } from 'node:http';

export interface LoadOptions {
  /** The loopback port requests go to (a sidecar's outbound HTTP_PROXY port, or a gateway listener). */
  readonly port: number;
  /** The authority (`backend:8080`): the Host header, and with `absoluteForm` the request target's host. */
  readonly authority: string;
  readonly path: string;
  /** Send `GET http://authority/path` as to an HTTP proxy (an application's HTTP_PROXY); otherwise origin-form. */
  readonly absoluteForm: boolean;
  /** Requests per second, started on schedule whatever the answers take (no coordinated omission below maxInFlight). */
  readonly rate: number;
  readonly durationMs: number;
  /** A request without an answer by then counts as failed (`timeout`). */
  readonly timeoutMs: number;
  /** Beyond this many requests in flight a due request is skipped and counted, rather than queued. */
  readonly maxInFlight: number;
}

/** One request: start (ms since the run began), latency, status (0: no answer), error kind ('' if none), who answered. */
export type LoadRecord = readonly [startMs: number, latencyMs: number, status: number, error: string, backend: string];

export type LoadMessage = { type: 'started' } | { type: 'done'; records: LoadRecord[]; skipped: number };

function run(options: LoadOptions, send: (m: LoadMessage) => void, stopSignal: { stopped: boolean }): void {
  const agent = new Agent({ keepAlive: true, maxSockets: options.maxInFlight, keepAliveMsecs: 1_000 });
  const records: LoadRecord[] = [];
  const begin = performance.now();
  let sent = 0;
  let skipped = 0;
  let inFlight = 0;
  let finishedSending = false;
  const target = options.absoluteForm ? `http://${options.authority}${options.path}` : options.path;

  const maybeDone = (): void => {
    if (!finishedSending || inFlight > 0) return;
    agent.destroy();
    send({ type: 'done', records, skipped });
  };

  const fire = (): void => {
    const start = performance.now();
    const startMs = Math.round(start - begin);
    inFlight++;
    let settled = false;
    const settle = (status: number, error: string, backend: string): void => {
      if (settled) return;
      settled = true;
      inFlight--;
      records.push([startMs, Math.round(performance.now() - start), status, error, backend]);
      maybeDone();
    };
    const req = request({ agent, host: '127.0.0.1', port: options.port, method: 'GET', path: target, headers: { host: options.authority }, timeout: options.timeoutMs }, (res) => {
      const backend = String(res.headers['x-chaos-backend'] ?? '');
      res.on('error', (err: NodeJS.ErrnoException) => settle(0, err.code ?? 'response-error', backend));
      res.on('end', () => settle(res.statusCode ?? 0, res.statusCode === 200 ? '' : `status-${res.statusCode}`, backend));
      res.resume();
    });
    req.on('timeout', () => {
      req.destroy();
      settle(0, 'timeout', '');
    });
    req.on('error', (err: NodeJS.ErrnoException) => settle(0, err.code ?? err.message, ''));
    req.end();
  };

  // A 2 ms tick sends whatever is due by now: the schedule follows the clock, not the tick count.
  const tick = setInterval(() => {
    const elapsed = performance.now() - begin;
    const end = stopSignal.stopped || elapsed >= options.durationMs;
    const due = Math.floor((Math.min(elapsed, options.durationMs) / 1000) * options.rate);
    while (sent < due) {
      sent++;
      if (inFlight >= options.maxInFlight) skipped++;
      else fire();
    }
    if (end) {
      clearInterval(tick);
      finishedSending = true;
      maybeDone();
    }
  }, 2);
}

// Only as a forked child: the parent's harness imports the types above without running anything.
if (process.send && process.argv[2] === 'child') {
  const stopSignal = { stopped: false };
  process.once('message', (options: LoadOptions) => {
    process.on('message', (m: { type?: string }) => {
      if (m?.type === 'stop') stopSignal.stopped = true;
    });
    process.send!({ type: 'started' } satisfies LoadMessage);
    run(options, (m) => process.send!(m, () => process.exit(0)), stopSignal);
  });
  // The parent died: nothing is left to report to.
  process.on('disconnect', () => process.exit(0));
}
