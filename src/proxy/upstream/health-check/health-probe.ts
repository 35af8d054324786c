// What the health checker asks of one kind of check (HTTP, TCP, gRPC) on one host, and how it opens its connections.
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { UpstreamTls } from '../upstream-tls.js';

/**
 * One check's verdict. A failure's `type` is Envoy's HealthCheckFailureType: ACTIVE (the host answered "unhealthy") or
 * NETWORK (no usable answer); `retriable` ACTIVE failures count towards unhealthy_threshold like network ones, the others
 * mark the host unhealthy at once.
 */
export type ProbeOutcome =
  | { readonly healthy: true; readonly degraded: boolean }
  | { readonly healthy: false; readonly type: 'ACTIVE' | 'NETWORK'; readonly retriable: boolean; readonly detail: string };

export interface HealthProbe {
  /** Runs one check. After reset() (the checker's timeout) the promise may stay pending; the checker ignores it. */
  check(): Promise<ProbeOutcome>;
  /** Drops the probe's connection (timeout, failure, host or cluster gone). */
  reset(): void;
}

/** Opens a connection to the host for a check: plain TCP, or TLS with the cluster's transport socket. */
export type ProbeConnect = (alpn?: readonly string[]) => Socket | TLSSocket;

/** A ProbeConnect for `address:port` with the cluster's TLS (when any); health-check connections are not pool connections and count in no cluster stat. */
export function probeConnector(address: string, port: number, tls: UpstreamTls | undefined, alpnOverride: readonly string[] | undefined): ProbeConnect {
  return (alpn) => {
    const raw = netConnect({ host: address, port, noDelay: true });
    if (!tls) return raw;
    try {
      const options = tls.connectOptions();
      const protocols = alpnOverride ?? alpn ?? options.ALPNProtocols;
      return tlsConnect({ ...options, ALPNProtocols: protocols ? [...(protocols as readonly string[])] : undefined, socket: raw });
    } catch (err) {
      // An SDS secret is missing: the check fails like a handshake failure would.
      queueMicrotask(() => raw.destroy(err as Error));
      return raw;
    }
  };
}

/** The event a ProbeConnect socket emits once usable. */
export function readyEvent(socket: Socket | TLSSocket): 'connect' | 'secureConnect' {
  return 'encrypted' in socket && (socket as TLSSocket).encrypted ? 'secureConnect' : 'connect';
}

/**
 * Settles a check once (the first of response end, error or reset wins); `close`, or a probe that does not reuse its
 * connection, drops the connection first.
 */
export function probeFinisher(resolve: (outcome: ProbeOutcome) => void, reset: () => void, reuseConnection: boolean): (outcome: ProbeOutcome, close: boolean) => void {
  let settled = false;
  return (outcome, close) => {
    if (settled) return;
    settled = true;
    if (close || !reuseConnection) reset();
    resolve(outcome);
  };
}

/** The probe's HTTP/2 session: `current` while usable, else a new one over the probe's connector (TLS, alt_port). */
export function probeH2Session(current: ClientHttp2Session | undefined, authority: string, connect: ProbeConnect): ClientHttp2Session {
  if (current && !current.closed && !current.destroyed) return current;
  const session = h2connect(`http://${authority}`, { createConnection: () => connect(['h2']) });
  session.on('error', () => undefined); // each check reports it through its stream
  return session;
}
