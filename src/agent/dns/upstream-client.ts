// Forwards a DNS query to the upstream resolvers in order: UDP first, the same server over TCP when the answer is truncated.
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import { withId } from './dns-message.js';

export interface UpstreamServer {
  readonly host: string;
  readonly port: number;
}

export interface UpstreamClientOptions {
  /** Per server and transport; resolv.conf's default `timeout:5` is long for a proxy in the request path. Default 2 s. */
  readonly timeoutMs?: number;
}

/** How a forwarded query ended, for the proxy's counters. */
export interface UpstreamResult {
  /** The answer, re-addressed to the client's id; undefined when every server failed. */
  readonly response: Buffer | undefined;
  /** Servers that failed (timeout, error, malformed answer) before one answered. */
  readonly failures: number;
  /** The answer came over TCP after a truncated UDP answer. */
  readonly retriedOverTcp: boolean;
}

const MAX_MESSAGE = 65_535;

function isAnswerTo(response: Buffer, id: number): boolean {
  return response.length >= 12 && response.readUInt16BE(0) === id && (response[2]! & 0x80) !== 0;
}

export class UpstreamClient {
  private readonly timeoutMs: number;

  constructor(private readonly servers: readonly UpstreamServer[], options: UpstreamClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 2_000;
  }

  get serverCount(): number {
    return this.servers.length;
  }

  /** Sends `query` (as the client sent it) upstream; the answer comes back with the client's id. */
  async exchange(query: Buffer): Promise<UpstreamResult> {
    const clientId = query.readUInt16BE(0);
    let failures = 0;
    for (const server of this.servers) {
      // A fresh id per attempt (and a fresh UDP source port): an off-path answer must guess both.
      const id = randomInt(0, 0x10000);
      const forwarded = withId(query, id);
      const udp = await this.overUdp(server, forwarded, id);
      if (udp && (udp[2]! & 0x02) === 0) return { response: withId(udp, clientId), failures, retriedOverTcp: false };
      if (udp) {
        // TC set: the full answer needs TCP (RFC 7766).
        const tcp = await this.overTcp(server, forwarded, id);
        if (tcp) return { response: withId(tcp, clientId), failures, retriedOverTcp: true };
      }
      failures++;
    }
    return { response: undefined, failures, retriedOverTcp: false };
  }

  private overUdp(server: UpstreamServer, query: Buffer, id: number): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const socket = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
      let done = false;
      const finish = (value: Buffer | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.close();
        resolve(value);
      };
      const timer = setTimeout(() => finish(undefined), this.timeoutMs);
      socket.on('error', () => finish(undefined));
      socket.on('message', (message, rinfo) => {
        // Only the server asked may answer, with the id it was given; anything else is ignored, not fatal.
        if (rinfo.port !== server.port || rinfo.address !== server.host || !isAnswerTo(message, id)) return;
        finish(message);
      });
      socket.send(query, server.port, server.host, (err) => {
        if (err) finish(undefined);
      });
    });
  }

  private overTcp(server: UpstreamServer, query: Buffer, id: number): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const socket = connect({ host: server.host, port: server.port });
      let buffered: Buffer = Buffer.alloc(0);
      let done = false;
      const finish = (value: Buffer | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(value);
      };
      const timer = setTimeout(() => finish(undefined), this.timeoutMs);
      socket.on('error', () => finish(undefined));
      socket.on('close', () => finish(undefined));
      socket.on('connect', () => {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(query.length, 0);
        socket.write(Buffer.concat([length, query]));
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < 2) return;
        const length = buffered.readUInt16BE(0);
        if (length > MAX_MESSAGE) return finish(undefined);
        if (buffered.length < 2 + length) return;
        const message = buffered.subarray(2, 2 + length);
        finish(isAnswerTo(message, id) ? Buffer.from(message) : undefined);
      });
    });
  }
}
