// Envoy's TCP health check: connect, optionally send bytes and wait for every expected payload in order in the reply.
import type { Socket } from 'node:net';
import type { TcpProbeConfig } from './health-check-config.js';
import { readyEvent, type HealthProbe, type ProbeConnect, type ProbeOutcome } from './health-probe.js';

/** Envoy's TcpHealthCheckMatcher: each payload must appear in `data`, each after the previous one's end. */
export function tcpPayloadsMatch(data: Buffer, receive: readonly Buffer[]): boolean {
  let from = 0;
  for (const p of receive) {
    const at = data.indexOf(p, from);
    if (at < 0) return false;
    from = at + p.length;
  }
  return true;
}

export class TcpProbe implements HealthProbe {
  private socket: Socket | undefined;

  constructor(
    private readonly config: TcpProbeConfig,
    private readonly connect: ProbeConnect,
  ) {}

  check(): Promise<ProbeOutcome> {
    this.reset();
    return new Promise((resolve) => {
      // A fresh connection per check: a TCP check is about reaching the host, and a kept connection would hide a
      // listener that stopped accepting.
      const socket = this.connect();
      this.socket = socket;
      let settled = false;
      const done = (outcome: ProbeOutcome): void => {
        if (settled) return;
        settled = true;
        socket.destroy();
        if (this.socket === socket) this.socket = undefined;
        resolve(outcome);
      };
      let received = Buffer.alloc(0);
      socket.once(readyEvent(socket), () => {
        if (this.config.send.length > 0) socket.write(this.config.send);
        if (this.config.receive.length === 0) done({ healthy: true, degraded: false });
      });
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (tcpPayloadsMatch(received, this.config.receive)) done({ healthy: true, degraded: false });
      });
      socket.on('error', (err) => done({ healthy: false, type: 'NETWORK', retriable: true, detail: err.message }));
      socket.on('close', () => done({ healthy: false, type: 'NETWORK', retriable: true, detail: 'connection closed before the expected response' }));
    });
  }

  reset(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
