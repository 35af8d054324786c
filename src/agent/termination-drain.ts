// pilot-agent's termination sequence: on SIGTERM the proxy's inbound listeners drain gracefully
// (/drain_listeners?inboundonly&graceful) and it keeps serving for ProxyConfig.terminationDrainDuration before it stops.

/** Istio's ProxyConfig.terminationDrainDuration default. */
export const DEFAULT_TERMINATION_DRAIN_MS = 5_000;

/** What the sequence needs of a running proxy (src/proxy/main.ts RunningProxy). */
export interface DrainableProxy {
  drainListeners(options: { readonly graceful: boolean; readonly inboundOnly: boolean }): Promise<void>;
  activeDownstreamConnections(direction?: 'INBOUND' | 'OUTBOUND'): number;
}

export interface TerminationDrainOptions {
  /** ProxyConfig.terminationDrainDuration (TERMINATION_DRAIN_DURATION_SECONDS for pilot-agent). */
  readonly terminationDrainMs: number;
  /**
   * Istio's EXIT_ON_ZERO_ACTIVE_CONNECTIONS: end the wait as soon as no inbound connection is open. Unlike pilot-agent,
   * which then has no upper bound but the pod's grace period, the wait still ends at terminationDrainMs.
   */
  readonly exitOnZeroActiveConnections: boolean;
  /** How often open connections are counted (default 100 ms; pilot-agent checks every second). */
  readonly pollMs?: number;
  /** Ends the wait early (a second signal). */
  readonly signal?: AbortSignal;
}

export type TerminationDrainEnd = 'elapsed' | 'no-connections' | 'aborted';

/**
 * Starts the graceful inbound drain and waits as pilot-agent does; the caller stops the proxy afterwards. In-flight
 * inbound requests keep being served meanwhile, new connections are still accepted (clients whose endpoints are not
 * updated yet) and told to close, and outbound listeners keep working for the application's own calls.
 */
export async function terminationDrain(proxy: DrainableProxy, options: TerminationDrainOptions): Promise<TerminationDrainEnd> {
  // Not awaited: the listeners stop when the proxy's own drain time ends; the termination wait is the agent's.
  proxy.drainListeners({ graceful: true, inboundOnly: true }).catch(() => undefined);
  if (options.signal?.aborted) return 'aborted';
  return new Promise<TerminationDrainEnd>((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    const end = (how: TerminationDrainEnd): void => {
      for (const t of timers) clearTimeout(t), clearInterval(t);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(how);
    };
    const onAbort = (): void => end('aborted');
    options.signal?.addEventListener('abort', onAbort);
    timers.push(setTimeout(() => end('elapsed'), options.terminationDrainMs));
    if (options.exitOnZeroActiveConnections) {
      const check = (): void => {
        if (proxy.activeDownstreamConnections('INBOUND') === 0) end('no-connections');
      };
      timers.push(setInterval(check, options.pollMs ?? 100));
    }
  });
}
