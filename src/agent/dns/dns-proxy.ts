// The agent's DNS proxy (pilot-agent's on 127.0.0.1:15053, UDP and TCP): mesh hosts from the name table, the rest forwarded upstream and cached.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { istio } from '../../xds/generated/types.js';
import {
  CLASS_IN,
  DnsFormatError,
  encodeResponse,
  isStandardQuery,
  MIN_UDP_SIZE,
  parseQuery,
  RCODE_FORMERR,
  RCODE_NOERROR,
  RCODE_NOTIMP,
  RCODE_NXDOMAIN,
  RCODE_SERVFAIL,
  summarizeResponse,
  type DnsQuery,
} from './dns-message.js';
import { LookupTable } from './lookup-table.js';
import { cacheKey, ResponseCache } from './response-cache.js';
import { UpstreamClient, type UpstreamServer } from './upstream-client.js';

type NameInfo = istio.networking.nds.v1.NameTable.NameInfo;

export interface DnsProxyOptions {
  /** Default 127.0.0.1 (Istio's agent listens on localhost:15053; iptables redirects port 53 there). */
  readonly host?: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  readonly port: number;
  /** Where unknown names go (resolv.conf's nameservers). */
  readonly upstreams: readonly UpstreamServer[];
  /** resolv.conf search domains. */
  readonly searchDomains?: readonly string[];
  readonly proxyNamespace: string;
  /** Default cluster.local. */
  readonly clusterDomain?: string;
  /**
   * Zones the proxy owns: a name under one that the name table lacks is answered NXDOMAIN (authoritative) instead of
   * being forwarded, so a mesh name that does not exist fails at once and does not leak upstream. Default none.
   */
  readonly authoritativeZones?: readonly string[];
  /** Before the first name table: forward everything (true) or answer SERVFAIL (false, Istio's default off port 53). */
  readonly respondBeforeSync?: boolean;
  readonly upstreamTimeoutMs?: number;
  /** Forwarded answers cached (entries); 0 turns the cache off. Default 4096. */
  readonly cacheEntries?: number;
  /** For tests: the cache's clock. */
  readonly now?: () => number;
}

/** Istio's buckets for dns_upstream_request_duration_seconds (sorted: Istio lists .005 before .001). */
export const UPSTREAM_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.1, 1, 5] as const;

/** Counters, named after Istio's agent metrics (dns_requests_total, …) plus the cache's. */
export interface DnsProxyStats {
  requests: number;
  upstream_requests: number;
  /** Forwarded queries no upstream answered (each one a SERVFAIL), as Istio counts dns_upstream_failures_total. */
  upstream_failures: number;
  /** dns_upstream_request_duration_seconds: counts per UPSTREAM_DURATION_BUCKETS bound (cumulative), sum and count. */
  upstream_duration: { buckets: number[]; sum: number; count: number };
  /** Answered from the name table. */
  mesh_answers: number;
  /** NXDOMAIN for names under an authoritative zone. */
  mesh_nxdomain: number;
  cache_hits: number;
  /** Queries answered FORMERR (unreadable or not one question). */
  malformed: number;
  /** Answers too large for the requester's UDP size, sent truncated. */
  truncated: number;
}

const MAX_TCP_MESSAGE = 65_535;
/** An idle DNS-over-TCP connection is closed after this long (RFC 7766 suggests seconds, not minutes). */
const TCP_IDLE_MS = 10_000;

export class DnsProxy {
  readonly stats: DnsProxyStats = { requests: 0, upstream_requests: 0, upstream_failures: 0, upstream_duration: { buckets: UPSTREAM_DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 }, mesh_answers: 0, mesh_nxdomain: 0, cache_hits: 0, malformed: 0, truncated: 0 };
  private table: LookupTable | undefined;
  private readonly upstream: UpstreamClient;
  private readonly cache: ResponseCache | undefined;
  private readonly zones: readonly string[];
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly tcpConnections = new Set<Socket>();
  private boundPort = 0;

  constructor(private readonly options: DnsProxyOptions) {
    this.upstream = new UpstreamClient(options.upstreams, options.upstreamTimeoutMs !== undefined ? { timeoutMs: options.upstreamTimeoutMs } : {});
    const entries = options.cacheEntries ?? 4096;
    this.cache = entries > 0 ? new ResponseCache({ maxEntries: entries, ...(options.now ? { now: options.now } : {}) }) : undefined;
    this.zones = (options.authoritativeZones ?? []).map((z) => z.toLowerCase().replace(/^\.|\.$/g, '')).filter(Boolean);
  }

  /** The port UDP and TCP are bound to (after start). */
  get port(): number {
    return this.boundPort;
  }

  /** True once a name table arrived. */
  get ready(): boolean {
    return this.table !== undefined;
  }

  /** Swaps in a new name table (host → NameInfo); queries in flight finish on the old one. */
  updateNameTable(table: Readonly<Record<string, NameInfo>>): void {
    this.table = new LookupTable(table, {
      proxyNamespace: this.options.proxyNamespace,
      clusterDomain: this.options.clusterDomain ?? 'cluster.local',
      searchDomains: this.options.searchDomains ?? [],
    });
  }

  /**
   * Answers one message. `maxSize` is what the transport carries (TCP 65 535; UDP the requester's EDNS size, at least
   * 512). Undefined: nothing is sent (a header too short to address, or a response sent to us).
   */
  async answer(message: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    this.stats.requests++;
    let query: DnsQuery;
    try {
      query = parseQuery(message);
    } catch (err) {
      const id = err instanceof DnsFormatError ? err.id : undefined;
      if (id === undefined) return undefined;
      this.stats.malformed++;
      return encodeResponse({ id, flags: message.readUInt16BE(2), opcode: (message.readUInt16BE(2) >> 11) & 0xf, question: undefined, questionCount: 0, ednsUdpSize: undefined }, { rcode: RCODE_FORMERR });
    }
    if ((query.flags & 0x8000) !== 0) return undefined; // a response: answering it could start a loop between two servers
    if (!isStandardQuery(query)) return encodeResponse({ ...query, question: undefined }, { rcode: RCODE_NOTIMP });
    if (query.questionCount !== 1 || !query.question) {
      // RFC 9619: a query has exactly one question.
      this.stats.malformed++;
      return encodeResponse({ ...query, question: undefined }, { rcode: RCODE_FORMERR });
    }
    const maxSize = transport === 'tcp' ? MAX_TCP_MESSAGE : Math.max(MIN_UDP_SIZE, query.ednsUdpSize ?? MIN_UDP_SIZE);
    const question = query.question;
    if (question.class === CLASS_IN) {
      const table = this.table;
      if (!table && !this.options.respondBeforeSync) return encodeResponse(query, { rcode: RCODE_SERVFAIL });
      const found = table?.lookup(question.name, question.type);
      if (found?.found) {
        this.stats.mesh_answers++;
        // NOERROR even with no records of this type: NXDOMAIN for AAAA would make clients that ask A and AAAA together give up (istio#31250).
        return this.fit(query, encodeResponse(query, { rcode: RCODE_NOERROR, authoritative: true, answers: found.answers }), maxSize);
      }
      if (table && this.inAuthoritativeZone(question.name)) {
        // A mesh name asked for another type (MX, TXT…) exists with no such data; any other name in the zone does not exist.
        if (table.has(question.name)) return encodeResponse(query, { rcode: RCODE_NOERROR, authoritative: true });
        this.stats.mesh_nxdomain++;
        return encodeResponse(query, { rcode: RCODE_NXDOMAIN, authoritative: true });
      }
    }
    const key = `${cacheKey(question.name, question.type, question.class)}|${query.ednsUdpSize !== undefined ? 'edns' : 'plain'}`;
    const cached = this.cache?.lookup(key, query.id);
    if (cached) {
      this.stats.cache_hits++;
      return this.fit(query, cached, maxSize);
    }
    this.stats.upstream_requests++;
    const started = performance.now();
    const result = await this.upstream.exchange(message);
    const seconds = (performance.now() - started) / 1000;
    const duration = this.stats.upstream_duration;
    duration.count++;
    duration.sum += seconds;
    UPSTREAM_DURATION_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) duration.buckets[i]!++;
    });
    if (!result.response) {
      this.stats.upstream_failures++;
      return encodeResponse(query, { rcode: RCODE_SERVFAIL });
    }
    this.cache?.store(key, result.response);
    return this.fit(query, result.response, maxSize);
  }

  private inAuthoritativeZone(name: string): boolean {
    return this.zones.some((zone) => name === zone || name.endsWith(`.${zone}`));
  }

  /** A response too large for UDP goes out truncated (TC, no records) so the client asks again over TCP. */
  private fit(query: DnsQuery, response: Buffer, maxSize: number): Buffer {
    if (response.length <= maxSize) return response;
    this.stats.truncated++;
    let rcode = RCODE_NOERROR;
    try {
      rcode = summarizeResponse(response).rcode;
    } catch {
      rcode = RCODE_SERVFAIL;
    }
    return encodeResponse(query, { rcode, truncated: true });
  }

  /** Binds UDP and TCP on the same port. */
  async start(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1';
    // With port 0 the TCP port the kernel picks may be taken for UDP; a few fresh picks settle it.
    for (let attempt = 0; ; attempt++) {
      const tcp = createServer((socket) => this.onTcpConnection(socket));
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host, port: this.options.port }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      const address = tcp.address();
      const port = address && typeof address === 'object' ? address.port : this.options.port;
      const udp = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(port, host, () => {
            udp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
        if (this.options.port === 0 && attempt < 5) continue;
        throw err;
      }
      tcp.on('error', () => undefined);
      udp.on('error', () => undefined);
      udp.on('message', (message, rinfo) => {
        void this.answer(message, 'udp').then((response) => {
          if (response && this.udp) this.udp.send(response, rinfo.port, rinfo.address);
        });
      });
      this.tcp = tcp;
      this.udp = udp;
      this.boundPort = port;
      return;
    }
  }

  /** DNS over TCP (RFC 7766): two-byte length prefixes, several queries per connection, answers as they complete. */
  private onTcpConnection(socket: Socket): void {
    this.tcpConnections.add(socket);
    socket.once('close', () => this.tcpConnections.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const message = Buffer.from(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        void this.answer(message, 'tcp').then((response) => {
          if (!response) {
            // Nothing can be said to a message without a readable header: the stream is out of sync, so it ends.
            socket.destroy();
            return;
          }
          if (socket.destroyed) return;
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(response.length, 0);
          socket.write(Buffer.concat([prefix, response]));
        });
      }
    });
  }

  async close(): Promise<void> {
    const udp = this.udp;
    this.udp = undefined;
    udp?.close();
    for (const s of this.tcpConnections) s.destroy();
    const tcp = this.tcp;
    this.tcp = undefined;
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
}
