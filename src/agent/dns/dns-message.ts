// DNS wire format (RFC 1035, EDNS0 of RFC 6891) for the agent's DNS proxy: queries in, answers out, upstream responses read for caching.
//
// Hand-written for the small subset the proxy needs (one question; A, AAAA and CNAME answers of its own; TTLs of
// forwarded answers): the npm codecs carry every record type and would still need the TTL offsets kept here.

export const TYPE_A = 1;
export const TYPE_NS = 2;
export const TYPE_CNAME = 5;
export const TYPE_SOA = 6;
export const TYPE_AAAA = 28;
export const TYPE_OPT = 41;
export const CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;

const OPCODE_QUERY = 0;
const HEADER_LENGTH = 12;
/** RFC 1035 §2.3.4. */
const MAX_LABEL = 63;
const MAX_NAME = 255;
/** Without EDNS a UDP answer is at most 512 bytes (RFC 1035 §4.2.1). */
export const MIN_UDP_SIZE = 512;
/** The EDNS payload size the proxy advertises (DNS flag day 2020: avoids IP fragmentation). */
export const EDNS_UDP_SIZE = 1232;

/** A message that cannot be read. `id` is set when the header was readable, so a FORMERR can still be addressed. */
export class DnsFormatError extends Error {
  constructor(message: string, readonly id?: number) {
    super(message);
  }
}

export interface DnsQuestion {
  /** Lower-case, no trailing dot ('' for the root). */
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface DnsQuery {
  readonly id: number;
  /** The flags word as sent (RD and CD are echoed in answers). */
  readonly flags: number;
  readonly opcode: number;
  readonly question: DnsQuestion | undefined;
  readonly questionCount: number;
  /** The requester's EDNS UDP payload size, or undefined without an OPT record. */
  readonly ednsUdpSize: number | undefined;
}

/** Reads a possibly compressed name at `offset`; returns it and the offset after it in the original position. */
export function readName(buf: Buffer, offset: number, id?: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  let length = 0;
  // Each pointer must point strictly backwards, so a message cannot make the reader loop.
  let limit = offset;
  for (;;) {
    if (pos >= buf.length) throw new DnsFormatError('name runs past the end of the message', id);
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsFormatError('truncated compression pointer', id);
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= limit) throw new DnsFormatError('compression pointer does not point backwards', id);
      if (end < 0) end = pos + 2;
      limit = target;
      pos = target;
      continue;
    }
    if (kind !== 0) throw new DnsFormatError(`unsupported label type 0x${kind.toString(16)}`, id);
    if (len > MAX_LABEL) throw new DnsFormatError('label longer than 63 bytes', id);
    if (pos + 1 + len > buf.length) throw new DnsFormatError('label runs past the end of the message', id);
    length += len + 1;
    if (length > MAX_NAME) throw new DnsFormatError('name longer than 255 bytes', id);
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return { name: labels.join('.'), end };
}

/** Encodes `name` (dots separate labels; a trailing dot is allowed) uncompressed. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed === '') return Buffer.from([0]);
  const parts = trimmed.split('.').map((label) => Buffer.from(label, 'latin1'));
  const out = Buffer.alloc(parts.reduce((n, p) => n + p.length + 1, 1));
  let pos = 0;
  for (const p of parts) {
    if (p.length === 0 || p.length > MAX_LABEL) throw new DnsFormatError(`invalid label in ${JSON.stringify(name)}`);
    out[pos++] = p.length;
    p.copy(out, pos);
    pos += p.length;
  }
  out[pos] = 0;
  if (out.length > MAX_NAME + 1) throw new DnsFormatError(`name ${JSON.stringify(name)} longer than 255 bytes`);
  return out;
}

/** Skips one resource record at `offset`; returns its fields and where it ends. */
function readRecordHeader(buf: Buffer, offset: number, id: number): { name: string; type: number; class: number; ttlOffset: number; rdataOffset: number; end: number } {
  const { name, end: afterName } = readName(buf, offset, id);
  if (afterName + 10 > buf.length) throw new DnsFormatError('resource record header runs past the end', id);
  const type = buf.readUInt16BE(afterName);
  const klass = buf.readUInt16BE(afterName + 2);
  const rdLength = buf.readUInt16BE(afterName + 8);
  const rdataOffset = afterName + 10;
  if (rdataOffset + rdLength > buf.length) throw new DnsFormatError('resource record data runs past the end', id);
  return { name, type, class: klass, ttlOffset: afterName + 4, rdataOffset, end: rdataOffset + rdLength };
}

/** The fixed 12-byte header: id, flags and the four section counts (RFC 1035 §4.1.1). */
function readHeader(buf: Buffer, kind: string): { id: number; flags: number; qd: number; an: number; ns: number; ar: number } {
  if (buf.length < HEADER_LENGTH) throw new DnsFormatError(`${kind} of ${buf.length} bytes is shorter than a DNS header`);
  return {
    id: buf.readUInt16BE(0),
    flags: buf.readUInt16BE(2),
    qd: buf.readUInt16BE(4),
    an: buf.readUInt16BE(6),
    ns: buf.readUInt16BE(8),
    ar: buf.readUInt16BE(10),
  };
}

/** Reads a query: header, its question (one expected) and the EDNS OPT record of the additional section. */
export function parseQuery(buf: Buffer): DnsQuery {
  const { id, flags, qd, an, ns, ar } = readHeader(buf, 'message');
  let pos = HEADER_LENGTH;
  let question: DnsQuestion | undefined;
  for (let i = 0; i < qd; i++) {
    const { name, end } = readName(buf, pos, id);
    if (end + 4 > buf.length) throw new DnsFormatError('question runs past the end of the message', id);
    if (i === 0) question = { name: name.toLowerCase(), type: buf.readUInt16BE(end), class: buf.readUInt16BE(end + 2) };
    pos = end + 4;
  }
  let ednsUdpSize: number | undefined;
  for (let i = 0; i < an + ns + ar; i++) {
    const rr = readRecordHeader(buf, pos, id);
    // OPT's CLASS field carries the requester's UDP payload size (RFC 6891 §6.1.2).
    if (i >= an + ns && rr.type === TYPE_OPT) ednsUdpSize = rr.class;
    pos = rr.end;
  }
  return { id, flags, opcode: (flags >> 11) & 0xf, question, questionCount: qd, ednsUdpSize };
}

/** Whether `query` is a standard query (QR clear, opcode QUERY). */
export function isStandardQuery(query: DnsQuery): boolean {
  return (query.flags & 0x8000) === 0 && query.opcode === OPCODE_QUERY;
}

export interface AnswerRecord {
  readonly name: string;
  readonly type: typeof TYPE_A | typeof TYPE_AAAA | typeof TYPE_CNAME;
  readonly ttl: number;
  /** IPv4/IPv6 text for A/AAAA, the target name for CNAME. */
  readonly data: string;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Buffer {
  let text = address;
  const out = Buffer.alloc(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipv4Bytes(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function encodeRecord(record: AnswerRecord): Buffer {
  const name = encodeName(record.name);
  const rdata = record.type === TYPE_A ? ipv4Bytes(record.data) : record.type === TYPE_AAAA ? ipv6Bytes(record.data) : encodeName(record.data);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(record.type, 0);
  fixed.writeUInt16BE(CLASS_IN, 2);
  fixed.writeUInt32BE(record.ttl >>> 0, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([name, fixed, rdata]);
}

function encodeOpt(udpSize: number): Buffer {
  const opt = Buffer.alloc(11);
  opt[0] = 0; // root name
  opt.writeUInt16BE(TYPE_OPT, 1);
  opt.writeUInt16BE(udpSize, 3);
  // extended rcode, version 0, flags 0, rdlength 0
  return opt;
}

export interface ResponseOptions {
  readonly rcode: number;
  readonly authoritative?: boolean;
  readonly answers?: readonly AnswerRecord[];
  /** Sets TC and leaves answers out. */
  readonly truncated?: boolean;
}

/**
 * A response to `query`: its id, its question echoed (as asked, lower-cased), RD and CD copied, RA set (the proxy
 * recurses through its upstream), and an OPT record when the query had one.
 */
export function encodeResponse(query: DnsQuery, options: ResponseOptions): Buffer {
  const answers = options.truncated ? [] : (options.answers ?? []);
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt16BE(query.id, 0);
  let flags = 0x8000 | (query.opcode << 11) | (query.flags & 0x0100) /* RD */ | 0x0080 /* RA */ | (query.flags & 0x0010) /* CD */ | (options.rcode & 0xf);
  if (options.authoritative) flags |= 0x0400;
  if (options.truncated) flags |= 0x0200;
  header.writeUInt16BE(flags, 2);
  const parts: Buffer[] = [header];
  let qd = 0;
  if (query.question) {
    const q = Buffer.alloc(4);
    q.writeUInt16BE(query.question.type, 0);
    q.writeUInt16BE(query.question.class, 2);
    parts.push(encodeName(query.question.name), q);
    qd = 1;
  }
  for (const a of answers) parts.push(encodeRecord(a));
  const withOpt = query.ednsUdpSize !== undefined;
  if (withOpt) parts.push(encodeOpt(EDNS_UDP_SIZE));
  header.writeUInt16BE(qd, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(withOpt ? 1 : 0, 10);
  return Buffer.concat(parts);
}

/** What the cache needs of an upstream response. */
export interface ResponseSummary {
  readonly id: number;
  readonly rcode: number;
  readonly truncated: boolean;
  readonly answerCount: number;
  /** Offsets of every TTL field (answer and authority sections; not OPT), to age a cached copy. */
  readonly ttlOffsets: readonly number[];
  /**
   * How long the response may be cached, in seconds: the smallest TTL of its answer and authority records; for a
   * negative answer (NXDOMAIN, or no answers) the SOA's min(TTL, MINIMUM) (RFC 2308 §5); undefined when it must not be.
   */
  readonly cacheTtl: number | undefined;
}

/** Reads an upstream response far enough to cache and relay it. */
export function summarizeResponse(buf: Buffer): ResponseSummary {
  const { id, flags, qd, an, ns, ar } = readHeader(buf, 'response');
  let pos = HEADER_LENGTH;
  for (let i = 0; i < qd; i++) {
    const { end } = readName(buf, pos, id);
    if (end + 4 > buf.length) throw new DnsFormatError('question runs past the end of the response', id);
    pos = end + 4;
  }
  const ttlOffsets: number[] = [];
  let minTtl = Number.POSITIVE_INFINITY;
  let soaNegativeTtl: number | undefined;
  for (let i = 0; i < an + ns + ar; i++) {
    const rr = readRecordHeader(buf, pos, id);
    if (rr.type !== TYPE_OPT && i < an + ns) {
      const ttl = buf.readUInt32BE(rr.ttlOffset);
      ttlOffsets.push(rr.ttlOffset);
      minTtl = Math.min(minTtl, ttl);
      if (i >= an && rr.type === TYPE_SOA) {
        // SOA RDATA: mname, rname, then serial, refresh, retry, expire, minimum (32 bits each).
        const m = readName(buf, rr.rdataOffset, id);
        const r = readName(buf, m.end, id);
        if (r.end + 20 <= rr.end) soaNegativeTtl = Math.min(ttl, buf.readUInt32BE(r.end + 16));
      }
    } else if (rr.type !== TYPE_OPT) {
      ttlOffsets.push(rr.ttlOffset);
    }
    pos = rr.end;
  }
  const rcode = flags & 0xf;
  const truncated = (flags & 0x0200) !== 0;
  let cacheTtl: number | undefined;
  if (!truncated && rcode === RCODE_NOERROR && an > 0 && Number.isFinite(minTtl)) cacheTtl = minTtl;
  else if (!truncated && (rcode === RCODE_NXDOMAIN || (rcode === RCODE_NOERROR && an === 0))) cacheTtl = soaNegativeTtl;
  return { id, rcode, truncated, answerCount: an, ttlOffsets, cacheTtl: cacheTtl !== undefined && cacheTtl > 0 ? cacheTtl : undefined };
}

/** A copy of a message re-addressed to `id` (upstream queries carry the proxy's own ids, answers the client's). */
export function withId(message: Buffer, id: number): Buffer {
  const copy = Buffer.from(message);
  copy.writeUInt16BE(id, 0);
  return copy;
}
