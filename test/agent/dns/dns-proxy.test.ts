// The agent's DNS proxy over real UDP and TCP sockets: mesh hosts and their search-domain forms, authoritative NXDOMAIN,
// forwarding to a fake upstream on loopback (cache within TTL, TCP after truncation), SERVFAIL, malformed input.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect, createServer, type Server } from 'node:net';
import { DnsProxy } from '../../../src/agent/dns/dns-proxy.js';
import { encodeName, TYPE_A, TYPE_AAAA, TYPE_SOA } from '../../../src/agent/dns/dns-message.js';
import { AgentMetrics } from '../../../src/agent/agent-metrics.js';

/** A fake upstream resolver on 127.0.0.1 (UDP and TCP on one port): answers from `records`, counts what it is asked. */
class FakeUpstream {
  readonly asked: string[] = [];
  /** name → A records; names absent answer NXDOMAIN with an SOA of the given negative TTL. */
  readonly records = new Map<string, { ips: string[]; ttl: number }>();
  /** Names whose UDP answers come truncated (TC), as a real server does for answers too large for UDP. */
  readonly truncateOverUdp = new Set<string>();
  private readonly udp = createSocket('udp4');
  private tcp: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.udp.bind(0, '127.0.0.1', resolve));
    this.port = this.udp.address().port;
    this.udp.on('message', (msg, rinfo) => this.udp.send(this.respond(msg, 'udp'), rinfo.port, rinfo.address));
    this.tcp = createServer((socket) => {
      let buf = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + msg.length);
          const out = this.respond(msg, 'tcp');
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          socket.write(Buffer.concat([len, out]));
        }
      });
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => this.tcp!.listen(this.port, '127.0.0.1', resolve));
  }

  private respond(msg: Buffer, transport: 'udp' | 'tcp'): Buffer {
    // Question: name at 12, then type and class.
    const labels: string[] = [];
    let p = 12;
    while (msg[p]! !== 0) {
      labels.push(msg.toString('latin1', p + 1, p + 1 + msg[p]!));
      p += 1 + msg[p]!;
    }
    const qEnd = p + 5;
    const name = labels.join('.').toLowerCase();
    const type = msg.readUInt16BE(p + 1);
    this.asked.push(`${transport}:${name}`);
    const question = msg.subarray(12, qEnd);
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    header.writeUInt16BE(1, 4);
    const entry = this.records.get(name);
    const rrs: Buffer[] = [];
    let flags = 0x8180;
    if (!entry) {
      flags |= 3; // NXDOMAIN with an SOA for negative caching
      const soaData = Buffer.concat([encodeName('ns.example'), encodeName('admin.example'), Buffer.alloc(20)]);
      soaData.writeUInt32BE(5, soaData.length - 4); // MINIMUM 5 s
      rrs.push(rr('example', TYPE_SOA, 60, soaData));
      header.writeUInt16BE(1, 8);
    } else if (type === TYPE_A) {
      if (transport === 'udp' && this.truncateOverUdp.has(name)) {
        header.writeUInt16BE(flags | 0x0200, 2);
        return Buffer.concat([header, question]);
      }
      for (const ip of entry.ips) rrs.push(rr(name, TYPE_A, entry.ttl, Buffer.from(ip.split('.').map(Number))));
      header.writeUInt16BE(rrs.length, 6);
    }
    header.writeUInt16BE(flags, 2);
    return Buffer.concat([header, question, ...rrs]);
  }

  async close(): Promise<void> {
    this.udp.close();
    await new Promise<void>((resolve) => this.tcp?.close(() => resolve()) ?? resolve());
  }
}

function rr(name: string, type: number, ttl: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(name), fixed, data]);
}

function query(id: number, name: string, type = TYPE_A): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, encodeName(name), tail]);
}

/** One UDP exchange; undefined when nothing comes back within `waitMs`. */
function udpExchange(port: number, message: Buffer, waitMs = 1_000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, waitMs);
    socket.on('message', (m) => {
      clearTimeout(timer);
      socket.close();
      resolve(m);
    });
    socket.send(message, port, '127.0.0.1');
  });
}

function tcpExchange(port: number, message: Buffer): Promise<Buffer | 'closed'> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no TCP answer'));
    }, 3_000);
    socket.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(message.length);
      socket.write(Buffer.concat([len, message]));
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
    socket.on('error', () => undefined);
  });
}

const rcode = (m: Buffer): number => m.readUInt16BE(2) & 0xf;
const answerCount = (m: Buffer): number => m.readUInt16BE(6);

let upstream: FakeUpstream;
let dns: DnsProxy;
let clock = 1_000_000;
let resolver: Resolver;

const NAME_TABLE = {
  'reviews.default.svc.cluster.local': { ips: ['10.96.0.10'], registry: 'Kubernetes', shortname: 'reviews', namespace: 'default' },
  'ratings.other.svc.cluster.local': { ips: ['10.96.0.11'], registry: 'Kubernetes', shortname: 'ratings', namespace: 'other' },
  'api.external.example': { ips: ['240.240.12.34'], registry: 'External' },
  'dual.external.example': { ips: ['240.240.1.2', 'fd00::1'], registry: 'External' },
  '*.wild.example': { ips: ['10.1.2.3'], registry: 'External' },
};

before(async () => {
  upstream = new FakeUpstream();
  await upstream.start();
  upstream.records.set('www.example.org', { ips: ['93.184.216.34'], ttl: 60 });
  upstream.records.set('big.example.org', { ips: Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`), ttl: 60 });
  dns = new DnsProxy({
    port: 0,
    upstreams: [{ host: '127.0.0.1', port: upstream.port }],
    searchDomains: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
    proxyNamespace: 'default',
    authoritativeZones: ['svc.cluster.local'],
    upstreamTimeoutMs: 300,
    now: () => clock,
  });
  await dns.start();
  resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);
});

after(async () => {
  await dns.close();
  await upstream.close();
});

test('before the first name table: SERVFAIL, nothing forwarded (Istio off port 53)', async () => {
  const answer = await udpExchange(dns.port, query(7, 'www.example.org'));
  assert.ok(answer);
  assert.equal(rcode(answer), 2);
  assert.equal(answer.readUInt16BE(0), 7);
  assert.deepEqual(upstream.asked, []);
  dns.updateNameTable(NAME_TABLE);
  assert.ok(dns.ready);
});

test('mesh hosts answer from the name table with the search-domain forms of the proxy namespace', async () => {
  assert.deepEqual(await resolver.resolve4('reviews.default.svc.cluster.local'), ['10.96.0.10']);
  assert.deepEqual(await resolver.resolve4('reviews.default'), ['10.96.0.10']);
  assert.deepEqual(await resolver.resolve4('reviews.default.svc'), ['10.96.0.10']);
  assert.deepEqual(await resolver.resolve4('reviews'), ['10.96.0.10'], 'short name in the proxy namespace');
  assert.deepEqual(await resolver.resolve4('ratings.other'), ['10.96.0.11']);
  // ServiceEntry hosts with auto-allocated VIPs, dual stack, wildcards.
  assert.deepEqual(await resolver.resolve4('api.external.example'), ['240.240.12.34']);
  assert.deepEqual(await resolver.resolve6('dual.external.example'), ['fd00::1']);
  assert.deepEqual(await resolver.resolve4('a.b.wild.example'), ['10.1.2.3']);
  // Over TCP too, with a CNAME for <host>.<first search domain> (Istio's short-cut of the resolver's search list).
  const tcp = await tcpExchange(dns.port, query(9, 'api.external.example.default.svc.cluster.local'));
  assert.ok(Buffer.isBuffer(tcp));
  assert.equal(rcode(tcp), 0);
  assert.equal(answerCount(tcp), 2, 'CNAME then A');
  assert.ok(tcp.readUInt16BE(2) & 0x0400, 'authoritative');
  assert.deepEqual(upstream.asked, [], 'nothing of the mesh went upstream');
});

test('mesh names: no records of the type is NOERROR without data; unknown names in the mesh zone are NXDOMAIN locally', async () => {
  await assert.rejects(resolver.resolve6('api.external.example'), { code: 'ENODATA' });
  await assert.rejects(resolver.resolve4('ratings'), { code: 'ENOTFOUND' }, 'ratings lives in another namespace: its short name is not ours');
  await assert.rejects(resolver.resolve4('nope.default.svc.cluster.local'), { code: 'ENOTFOUND' });
  await assert.rejects(resolver.resolveMx('reviews.default.svc.cluster.local'), { code: 'ENODATA' }, 'a mesh name exists: other types are NOERROR without data');
  assert.equal(upstream.asked.filter((a) => a.includes('svc.cluster.local')).length, 0, 'the mesh zone never leaks upstream');
  // `ratings` without a zone goes upstream, which says NXDOMAIN.
  assert.ok(upstream.asked.includes('udp:ratings'));
});

test('other names go to the upstream resolver; answers are cached for their TTL, aged, then asked again', async () => {
  upstream.asked.length = 0;
  const first = await udpExchange(dns.port, query(4241, 'www.example.org'));
  assert.ok(first);
  assert.equal(first.readUInt32BE(first.length - 10), 60);
  assert.deepEqual(upstream.asked, ['udp:www.example.org']);
  clock += 20_000;
  const cached = await udpExchange(dns.port, query(4242, 'WWW.Example.org'));
  assert.ok(cached);
  assert.equal(cached.readUInt16BE(0), 4242, 'the cached answer carries the new id');
  assert.equal(upstream.asked.length, 1, 'within the TTL: answered from the cache');
  // The A record's TTL (last 4+2+4 bytes before its 4-byte address) aged by 20 s.
  const ttl = cached.readUInt32BE(cached.length - 10);
  assert.equal(ttl, 40);
  clock += 41_000;
  assert.deepEqual(await resolver.resolve4('www.example.org'), ['93.184.216.34']);
  assert.equal(upstream.asked.length, 2, 'after the TTL: asked again');
  // NXDOMAIN is cached by the SOA's min(TTL, MINIMUM) = 5 s.
  upstream.asked.length = 0;
  await assert.rejects(resolver.resolve4('missing.example.org'), { code: 'ENOTFOUND' });
  await assert.rejects(resolver.resolve4('missing.example.org'), { code: 'ENOTFOUND' });
  assert.equal(upstream.asked.length, 1);
  clock += 6_000;
  await assert.rejects(resolver.resolve4('missing.example.org'), { code: 'ENOTFOUND' });
  assert.equal(upstream.asked.length, 2);
  assert.ok(dns.stats.cache_hits >= 2);
});

test('a truncated upstream answer is fetched over TCP; a UDP client gets TC and the full answer over TCP', async () => {
  upstream.asked.length = 0;
  upstream.truncateOverUdp.add('big.example.org');
  const udp = await udpExchange(dns.port, query(11, 'big.example.org'));
  assert.ok(udp);
  assert.ok(udp.readUInt16BE(2) & 0x0200, 'TC: 40 records do not fit in 512 bytes');
  assert.equal(answerCount(udp), 0);
  assert.deepEqual(upstream.asked, ['udp:big.example.org', 'tcp:big.example.org']);
  const tcp = await tcpExchange(dns.port, query(12, 'big.example.org'));
  assert.ok(Buffer.isBuffer(tcp));
  assert.equal(answerCount(tcp), 40);
  assert.equal(upstream.asked.length, 2, 'the TCP answer came from the cache');
  // node's resolver retries over TCP by itself on TC.
  assert.equal((await resolver.resolve4('big.example.org')).length, 40);
});

test('malformed input: FORMERR when the header is readable, silence otherwise, and the proxy keeps serving', async () => {
  assert.equal(await udpExchange(dns.port, Buffer.from([1, 2, 3]), 300), undefined, 'shorter than a header: dropped');
  // A question count of 1 with no question bytes.
  const noQuestion = Buffer.alloc(12);
  noQuestion.writeUInt16BE(0xbeef, 0);
  noQuestion.writeUInt16BE(1, 4);
  const formerr = await udpExchange(dns.port, noQuestion);
  assert.ok(formerr);
  assert.equal(formerr.readUInt16BE(0), 0xbeef);
  assert.equal(rcode(formerr), 1);
  // A compression pointer pointing at itself.
  const loop = Buffer.concat([noQuestion.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  assert.equal(rcode((await udpExchange(dns.port, loop))!), 1);
  // Two questions: FORMERR (RFC 9619).
  const two = Buffer.concat([query(5, 'a.example'), query(5, 'b.example').subarray(12)]);
  two.writeUInt16BE(2, 4);
  assert.equal(rcode((await udpExchange(dns.port, two))!), 1);
  // A response sent to the proxy is never answered.
  const response = query(6, 'www.example.org');
  response.writeUInt16BE(0x8100, 2);
  assert.equal(await udpExchange(dns.port, response, 300), undefined);
  // Over TCP, a frame without a readable header ends the connection.
  assert.equal(await tcpExchange(dns.port, Buffer.from([9])), 'closed');
  assert.deepEqual(await resolver.resolve4('reviews'), ['10.96.0.10'], 'still serving');
  assert.ok(dns.stats.malformed >= 3);
});

test('an upstream that does not answer gives SERVFAIL', async () => {
  const silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  const lonely = new DnsProxy({ port: 0, upstreams: [{ host: '127.0.0.1', port: silent.address().port }], proxyNamespace: 'default', upstreamTimeoutMs: 200 });
  await lonely.start();
  try {
    lonely.updateNameTable({});
    const answer = await udpExchange(lonely.port, query(3, 'www.example.org'));
    assert.ok(answer);
    assert.equal(rcode(answer), 2);
    assert.equal(lonely.stats.upstream_failures, 1);
  } finally {
    await lonely.close();
    silent.close();
  }
});

test('AAAA for a mesh host with only an IPv4 VIP over raw UDP: NOERROR, authoritative, no answers', async () => {
  const answer = await udpExchange(dns.port, query(21, 'reviews.default.svc.cluster.local', TYPE_AAAA));
  assert.ok(answer);
  assert.equal(rcode(answer), 0);
  assert.equal(answerCount(answer), 0);
  assert.ok(answer.readUInt16BE(2) & 0x0400);
});

test("the counters as pilot-agent's istio_agent_dns_* metrics on the status port", () => {
  const metrics = new AgentMetrics();
  assert.doesNotMatch(metrics.render(), /istio_agent_dns_/, 'no DNS proxy, no DNS families');
  metrics.dns = dns.stats;
  const text = metrics.render();
  assert.match(text, new RegExp(`^istio_agent_dns_requests_total ${dns.stats.requests}$`, 'm'));
  assert.match(text, new RegExp(`^istio_agent_dns_upstream_requests_total ${dns.stats.upstream_requests}$`, 'm'));
  assert.match(text, /^# TYPE istio_agent_dns_upstream_request_duration_seconds histogram$/m);
  assert.match(text, new RegExp(`^istio_agent_dns_upstream_request_duration_seconds_count ${dns.stats.upstream_requests}$`, 'm'), 'every forwarded query timed');
  assert.match(text, new RegExp(`^istio_agent_dns_upstream_request_duration_seconds_bucket\\{le="\\+Inf"\\} ${dns.stats.upstream_requests}$`, 'm'));
  assert.ok(dns.stats.upstream_requests >= 5);
});
